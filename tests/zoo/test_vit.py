"""Vision transformers: the token sequence as a patch grid, Grad-CAM as pytorch-grad-cam
computes it, layout overrides, attention rollout."""

from __future__ import annotations

from typing import Any

import eli5
import numpy as np
import pytest
import torch

import eli5_nn
from eli5_nn.adapters import architectures

from .cases import CASES, build, expected_layer, left_as_found

pytest.importorskip("transformers")


def module(model: torch.nn.Module, name: str) -> torch.nn.Module:
    return dict(model.named_modules())[name]


def recipe_grad_cam(
    model: torch.nn.Module, x: torch.Tensor, layer: torch.nn.Module, target: int,
    prefix: int, grid: tuple[int, int],
) -> np.ndarray:
    """Grad-CAM as pytorch-grad-cam computes it for a ViT (its tutorial's
    ``reshape_transform``: drop the prefix tokens, tokens to the grid, channels first),
    signed, before the ReLU."""
    taken: dict[str, torch.Tensor] = {}
    handle = layer.register_forward_hook(lambda _m, _i, out: taken.setdefault("a", out))
    try:
        out = model(x)
    finally:
        handle.remove()
    logits = getattr(out, "logits", out)
    a = taken["a"]
    (g,) = torch.autograd.grad(logits[0, target], a)

    def reshape_transform(t: torch.Tensor) -> torch.Tensor:
        result = t[:, prefix:, :].reshape(t.size(0), grid[0], grid[1], t.size(2))
        return result.transpose(2, 3).transpose(1, 2)

    acts, grads = reshape_transform(a), reshape_transform(g)
    weights = grads.mean(dim=(2, 3), keepdim=True)
    return (weights * acts).sum(dim=1)[0].detach().cpu().numpy()


def signed_map(t: Any) -> np.ndarray:
    """The signed CAM map of a result, read through the layout it carries."""
    assert t.layout is not None, "the result carries no layout"
    return t.layout.channel_sum(t.attribution)


VITS = {"timm-vit": 1, "timm-deit": 2, "hf-vit": 1, "hf-deit": 2}


@pytest.mark.parametrize("name", sorted(VITS))
def test_grad_cam_equals_the_pytorch_grad_cam_recipe(name: str, device: str) -> None:
    model, x = build(name, device)
    layer = expected_layer(CASES[name], model)
    with left_as_found(model):
        expl = eli5.explain_prediction(model, x, method="grad-cam", layer=layer)
    t = expl.targets[0]
    assert t.layout.prefix_tokens == VITS[name] and t.layout.grid == (4, 4)
    hand = recipe_grad_cam(model, x, module(model, layer), t.target, VITS[name], (4, 4))
    np.testing.assert_allclose(signed_map(t), hand, rtol=1e-4, atol=1e-6)
    assert t.heatmap.shape == tuple(x.shape[2:])


@pytest.mark.parametrize("name", sorted(VITS))
def test_default_grad_cam_is_the_recipe_at_the_class_token_layer(name: str, device: str) -> None:
    model, x = build(name, device)
    t = eli5.explain_prediction(model, x).targets[0]
    layer = module(model, expected_layer(CASES[name], model))
    hand = recipe_grad_cam(model, x, layer, t.target, VITS[name], (4, 4))
    np.testing.assert_allclose(signed_map(t), hand, rtol=1e-4, atol=1e-6)


def test_swin_tokens_form_the_last_stage_grid(device: str) -> None:
    model, x = build("hf-swin", device)
    t = eli5.explain_prediction(model, x, method="grad-cam", layer="swin.layernorm").targets[0]
    assert t.layout.prefix_tokens == 0 and t.layout.grid == (4, 4)
    hand = recipe_grad_cam(model, x, model.swin.layernorm, t.target, 0, (4, 4))
    np.testing.assert_allclose(signed_map(t), hand, rtol=1e-4, atol=1e-6)


def test_the_grid_is_read_from_the_model() -> None:
    model, _ = build("timm-deit")
    assert architectures.token_grid(model, 18) == (2, (4, 4))
    model.patch_embed.grid_size = (2, 8)  # a model that states a non-square grid
    assert architectures.token_grid(model, 18) == (2, (2, 8))
    vit, _ = build("hf-vit")
    assert architectures.token_grid(vit, 17) == (1, (4, 4))
    assert architectures.token_grid(vit, 65, input_hw=(64, 64)) == (1, (8, 8))


def test_layout_override(device: str) -> None:
    model, x = build("timm-vit", device)
    layout = {"axes": "NTC", "prefix_tokens": 1, "grid": (2, 8)}
    t = eli5.explain_prediction(model, x, layer="blocks.1.norm1", layout=layout).targets[0]
    assert t.layout.grid == (2, 8) and signed_map(t).shape == (2, 8)
    hand = recipe_grad_cam(model, x, model.blocks[1].norm1, t.target, 1, (2, 8))
    np.testing.assert_allclose(signed_map(t), hand, rtol=1e-4, atol=1e-6)
    with pytest.raises(eli5_nn.errors.ExplanationError, match="layout"):
        eli5.explain_prediction(
            model, x, layer="blocks.1.norm1",
            layout={"axes": "NTC", "prefix_tokens": 1, "grid": (3, 3)},
        )


def hand_rollout(attentions: list[torch.Tensor]) -> np.ndarray:
    """Attention rollout (Abnar & Zuidema 2020): per layer the head-averaged weights
    with the residual added (0.5 W + 0.5 I, rows renormalised), multiplied from the
    first layer up; returns the (T, T) rollout of the first doc."""
    rollout = None
    for a in attentions:
        w = a[0].double().mean(dim=0)
        w = 0.5 * w + 0.5 * torch.eye(w.shape[-1], dtype=w.dtype, device=w.device)
        w = w / w.sum(dim=-1, keepdim=True)
        rollout = w if rollout is None else w @ rollout
    assert rollout is not None
    return rollout.cpu().numpy()


def eager_attentions(model: torch.nn.Module, **inputs: Any) -> list[torch.Tensor]:
    with architectures.eager_attention(model), torch.no_grad():
        return list(model(**inputs, output_attentions=True).attentions)


@pytest.mark.parametrize(("name", "prefix"), [("hf-vit", 1), ("hf-deit", 2)])
def test_attention_rollout_on_a_vision_transformer(name: str, prefix: int, device: str) -> None:
    model, x = build(name, device)
    with left_as_found(model):
        expl = eli5.explain_prediction(model, x, method="attention-rollout")
    assert model.config._attn_implementation == "sdpa"
    t = expl.targets[0]
    row = hand_rollout(eager_attentions(model, pixel_values=x))[0]
    assert t.layout.prefix_tokens == prefix and t.layout.grid == (4, 4)
    got = t.layout.channel_sum(t.attribution)
    np.testing.assert_allclose(got, row[prefix:].reshape(4, 4), rtol=1e-4, atol=1e-7)
    assert t.heatmap.shape == tuple(x.shape[2:])


def test_rollout_needs_attention_weights(device: str) -> None:
    model, x = build("hf-resnet", device)
    with pytest.raises(eli5_nn.errors.ExplanationError, match="ResNetForImageClassification"):
        eli5.explain_prediction(model, x, method="attention-rollout")
