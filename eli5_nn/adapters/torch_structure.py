"""What the torch adapter reads from a model's modules: token embeddings, bias
sites for FullGrad, the modules a forward pass runs, randomised copies."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack
from typing import Any

import torch
from torch import nn

from ..errors import ExplanationError
from .base import BiasSite, LayerRef, randomized
from .torch_hooks import forward_hook, hooks


def embedding_info(m: nn.Module) -> tuple[int, int | None] | None:
    """(vocabulary size, padding id) of a token embedding: ``nn.Embedding``, or a
    module unflattened from ``torch.export`` whose graph calls ``aten.embedding``."""
    if isinstance(m, nn.Embedding):
        return int(m.num_embeddings), m.padding_idx
    graph = getattr(m, "graph", None)
    weight = getattr(m, "weight", None)
    if not isinstance(graph, torch.fx.Graph) or not isinstance(weight, torch.Tensor) \
            or weight.ndim != 2:
        return None
    for node in graph.nodes:
        if node.op == "call_function" and "aten.embedding" in str(node.target):
            pad = node.args[2] if len(node.args) > 2 else -1
            return int(weight.shape[0]), None if pad in (-1, None) else int(pad)
    return None


def attention_calls(refs: Sequence[LayerRef], run: Callable[[], Any]
                    ) -> list[tuple[LayerRef, torch.Tensor]]:
    """The attention weights of every call of an attention module in ``run()``:
    ``nn.MultiheadAttention`` asked for its head-averaged weights, a module whose
    class name contains "Attention" and returns a tuple giving its last element."""
    found: list[tuple[LayerRef, torch.Tensor]] = []

    def ask(_m: nn.Module, args: Any, kwargs: Any) -> Any:
        return args, {**kwargs, "need_weights": True, "average_attn_weights": True}

    def make_hook(ref: LayerRef) -> Any:
        def hook(_m: nn.Module, _i: Any, out: Any) -> None:
            if isinstance(out, tuple) and len(out) >= 2:
                w = out[-1]
                if isinstance(w, torch.Tensor) and w.ndim >= 2:
                    found.append((ref, w.detach()))

        return hook

    with ExitStack() as stack:
        for ref in refs:
            m = ref.handle
            assert isinstance(m, nn.Module)
            if isinstance(m, nn.MultiheadAttention):
                stack.enter_context(m.register_forward_pre_hook(ask, with_kwargs=True))
            elif "attention" not in type(m).__name__.lower():
                continue
            stack.enter_context(forward_hook(m, make_hook(ref)))
        # with gradients enabled PyTorch takes the module path of
        # TransformerEncoderLayer (its fused fast path skips the hooks)
        with torch.enable_grad():
            run()
    return found


def bias_sites(refs: Sequence[LayerRef]) -> list[BiasSite]:
    """Linear/Conv layers with a bias and BatchNorm layers with their effective
    inference bias ``beta - gamma * mean / sqrt(var + eps)``."""
    sites = []
    conv_like = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
    for ref in refs:
        m = ref.handle
        if isinstance(m, conv_like) and m.bias is not None:
            sites.append(BiasSite(ref, m.bias.detach()))
        elif (
            isinstance(m, nn.modules.batchnorm._BatchNorm)
            and m.running_mean is not None
            and m.running_var is not None
        ):
            scale = torch.rsqrt(m.running_var.detach() + m.eps)
            if m.weight is not None:
                scale = scale * m.weight.detach()
            bias = -m.running_mean.detach() * scale
            if m.bias is not None:
                bias = bias + m.bias.detach()
            sites.append(BiasSite(ref, bias))
    return sites


def parameter_layers(refs: Sequence[LayerRef], run: Callable[[], Any]) -> list[LayerRef]:
    """Modules with parameters of their own, in reverse order of their first call
    in the forward pass ``run()`` (modules never called are left out)."""
    owners = [
        ref for ref in refs
        if isinstance(ref.handle, nn.Module)
        and any(True for _ in ref.handle.parameters(recurse=False))
    ]
    called: list[LayerRef] = []

    def make_hook(ref: LayerRef) -> Any:
        def hook(_m: nn.Module, _i: Any, _o: Any) -> None:
            if ref not in called:
                called.append(ref)

        return hook

    with hooks(owners, make_hook), torch.no_grad():
        run()
    return called[::-1]


def randomize(copy: nn.Module, layer: LayerRef, seed: int) -> None:
    """Overwrite the parameters of ``copy``'s submodule named ``layer.name``."""
    try:
        module = copy.get_submodule(layer.name)
    except AttributeError as exc:
        raise ExplanationError(f"the copy has no layer named {layer.name!r}") from exc
    with torch.no_grad():
        for i, p in enumerate(module.parameters(recurse=False)):
            values = randomized(p.detach().float().cpu().numpy(), seed * 1009 + i)
            p.copy_(torch.as_tensor(values, device=p.device))


__all__ = ["attention_calls", "bias_sites", "embedding_info", "parameter_layers", "randomize"]
