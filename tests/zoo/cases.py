"""Build the PyTorch zoo's models and inputs, and check that a call leaves a model as found."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import nn

from . import hf_models, timm_like
from .table import TORCH_ZOO, ZooCase, layer_names

CASES = {c.name: c for c in TORCH_ZOO}


def small_cnn() -> nn.Module:
    """``Conv → ReLU → AdaptiveAvgPool2d(2) → Flatten → Linear`` on 8×8 images."""
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
        nn.Linear(16, 5),
    )


def nonzero_init(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every all-zero parameter (``transformers`` initialises biases, position
    embeddings and class tokens to zero) small random values, as training does.

    With zero biases a black image makes every patch token the zero vector; the
    first LayerNorm then maps ``alpha * x`` to the same output for every
    ``alpha > 0``, so the model jumps at the baseline and no quadrature can
    make Integrated Gradients complete there. Trained models have biases.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.is_floating_point() and not bool(p.detach().abs().max() > 0):
                p.copy_(torch.randn(p.shape, generator=g).to(p) * 0.02)
    return model


def build(name: str, device: str = "cpu") -> tuple[nn.Module, Any]:
    """``(model, doc)`` for one explanation of the named zoo case."""
    g = torch.Generator().manual_seed(1)
    if name.startswith("hf-"):
        model, inputs = hf_models.build(name[3:], device)
        nonzero_init(model)
        doc: Any = inputs["pixel_values"] if "pixel_values" in inputs else inputs
        return model, doc
    torch.manual_seed(0)
    if name == "timm-vit":
        model = timm_like.vit_tiny()
    elif name == "timm-deit":
        model = timm_like.deit_tiny()
    elif name == "small-cnn":
        model = small_cnn()
        return model.eval().to(device), torch.rand(1, 3, 8, 8, generator=g).to(device)
    else:
        raise KeyError(name)
    nonzero_init(model)
    x = torch.rand(1, 3, hf_models.IMAGE, hf_models.IMAGE, generator=g) * 2 - 1
    return model.eval().to(device), x.to(device)


def chosen_layer(description: str) -> str | None:
    """The layer an explanation's description names."""
    m = re.search(r"layer '([^']+)'", description or "")
    return m.group(1) if m else None


def expected_layer(case: ZooCase, model: nn.Module) -> str:
    """The expected layer's name in this library version."""
    names = dict(model.named_modules())
    for name in layer_names(case):
        if name in names:
            return name
    raise AssertionError(f"none of {layer_names(case)} is a module of {type(model).__name__}")


def _state(model: nn.Module) -> dict[str, Any]:
    configs = {
        id(m.config): m.config for m in model.modules()
        if hasattr(getattr(m, "config", None), "_attn_implementation")
    }
    return {
        "training": [m.training for m in model.modules()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "grads": [p.grad is None for p in model.parameters()],
        "hooks": [
            (len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks))
            for m in model.modules()
        ],
        "params": float(sum(p.detach().double().abs().sum() for p in model.parameters())),
        "configs": [
            (c._attn_implementation, c.output_attentions, c.output_hidden_states,
             getattr(c, "return_dict", None))
            for c in configs.values()
        ],
        "fused": [getattr(m, "fused_attn", None) for m in model.modules()],
    }


@contextmanager
def left_as_found(model: nn.Module) -> Iterator[None]:
    """Assert that the block leaves ``model`` as it found it (also when it raises)."""
    before = _state(model)
    try:
        yield
    finally:
        after = _state(model)
        for key, value in before.items():
            assert after[key] == value, f"the call changed the model's {key}"


def scores(model: nn.Module, doc: Any) -> np.ndarray:
    """The model's output scores for ``doc`` as numpy (N, C)."""
    with torch.no_grad():
        out = model(**doc) if isinstance(doc, dict) else model(doc)
    out = getattr(out, "logits", out)
    return out.detach().double().cpu().numpy()


def assert_complete(total: float, delta: float, what: str = "") -> None:
    """Completeness: ``total`` equals ``delta`` within 2 % (or 1e-3 where tiny)."""
    err = abs(total - delta)
    assert err <= 1e-3 or err <= 0.02 * abs(delta), (
        f"{what} sum of attributions {total:.6g} but f(x) - f(baseline) = {delta:.6g}"
    )
