"""The rules for ``nn.Module`` calls, looked up by the module's type.

A module rule receives the :class:`~eli5_nn.decomposition.parts.Context`, the
module and its arguments (``Parts`` for values that depend on the input) and
returns the result in the same form.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .parts import (
    Context,
    DecompositionError,
    Parts,
    add_bias,
    gather_spatial,
    relu_like,
    shapley_two,
)
from .recurrent import recurrent
from .token_ids import TokenIds, embed

Rule = Callable[..., Any]


def linear_parts(cx: Context, x: Parts, fn: Callable[[torch.Tensor], torch.Tensor],
                 bias: torch.Tensor | None) -> Parts:
    """``fn`` (linear, no offset) on both parts, then ``bias`` split between them.

    With a shared sum (:class:`Parts`), ``fn`` runs on the relevant part and on
    the one shared row, not on the irrelevant part."""
    out = x.map(fn)
    if out.shared is not None:
        out = Parts(out.rel, shared=out.shared, fresh=True)  # fn's outputs are new tensors
    else:
        out = Parts(out.rel, out.irr, fresh=True)
    return out if bias is None else add_bias(cx, out, bias, fresh=True)


def _batch_norm(cx: Context, mod: nn.modules.batchnorm._BatchNorm, x: Parts) -> Parts:
    dims = [0] + list(range(2, x.rel.dim()))
    shape = [1, -1] + [1] * (x.rel.dim() - 2)
    if mod.training or mod.running_mean is None or mod.running_var is None:
        total = x.total()
        mean = total.mean(dims)
        var = total.var(dims, unbiased=False)
    else:
        mean, var = mod.running_mean, mod.running_var
    scale = torch.rsqrt(var + mod.eps)
    if mod.weight is not None:
        scale = scale * mod.weight
    shift = -mean * scale
    if mod.bias is not None:
        shift = shift + mod.bias
    scale, shift = scale.reshape(shape), shift.reshape(shape)
    out = x.map(lambda t: t * scale)
    return add_bias(cx, out, shift, fresh=True)


def _module_linear(cx: Context, mod: nn.Linear, x: Parts) -> Parts:
    return linear_parts(cx, x, lambda t: F.linear(t, mod.weight), mod.bias)


def _module_conv(cx: Context, mod: nn.modules.conv._ConvNd, x: Parts) -> Parts:
    nd = x.rel.dim() - 2
    b = None if mod.bias is None else mod.bias.reshape(-1, *([1] * nd))
    return linear_parts(cx, x, lambda t: mod._conv_forward(t, mod.weight, None), b)


def _module_both(cx: Context, mod: nn.Module, x: Parts) -> Parts:
    return x.map(mod)


def _module_dropout(cx: Context, mod: nn.Module, x: Parts) -> Parts:
    if not mod.training:
        return x
    keep = mod(torch.ones_like(x.rel))
    return x.map(lambda t: t * keep)


def _module_max_pool(cx: Context, mod: nn.Module, x: Parts) -> Parts:
    nd = x.rel.dim() - 2
    if isinstance(mod, (nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d)):
        fn: Callable[..., Any] = (F.adaptive_max_pool1d if nd == 1 else F.adaptive_max_pool2d)

        def winners(t: torch.Tensor) -> torch.Tensor:
            return fn(t, mod.output_size, return_indices=True)[1]
    else:
        assert isinstance(mod, (nn.MaxPool1d, nn.MaxPool2d))
        pool: Callable[..., Any] = F.max_pool1d if nd == 1 else F.max_pool2d

        def winners(t: torch.Tensor) -> torch.Tensor:
            return pool(t, mod.kernel_size, mod.stride, mod.padding,
                        mod.dilation, ceil_mode=mod.ceil_mode, return_indices=True)[1]
    return pool_parts(cx, x, winners)


def pool_parts(cx: Context, x: Parts, winners: Callable[[torch.Tensor], torch.Tensor]
               ) -> Parts:
    """Max pooling: both parts at the positions where the activation wins
    (``winners`` gives them as ``max_pool*d(..., return_indices=True)`` does);
    with a shared sum, the winners are found once, in the shared row."""
    if x.shared is not None and x.rel.dim() >= 3:  # (N, C, ...): pooled row by row
        return gather_spatial(x, winners(x.shared))
    return gather_spatial(x, winners(cx.total(x)))


def _module_activation(act: Callable[..., torch.Tensor], kind: str) -> Rule:
    def rule(cx: Context, mod: nn.Module, x: Parts) -> Parts:
        if isinstance(mod, nn.LeakyReLU):
            return relu_like(x, lambda t: F.leaky_relu(t, mod.negative_slope), cx,
                             lambda t: F.leaky_relu(t, mod.negative_slope, inplace=True))
        if isinstance(mod, nn.ELU):
            return relu_like(x, lambda t: F.elu(t, mod.alpha), cx,
                             lambda t: F.elu(t, mod.alpha, inplace=True))
        if isinstance(mod, nn.GELU):
            return relu_like(x, lambda t: F.gelu(t, approximate=mod.approximate), cx)
        if kind == "zero":
            return relu_like(x, act, cx, lambda t: act(t, inplace=True))
        return shapley_two(x, act, cx)

    return rule


def _module_embedding(cx: Context, mod: nn.Embedding, ids: Any) -> Parts:
    if not isinstance(ids, TokenIds):
        raise DecompositionError("embedding of a value that depends on the input")
    return embed(mod(ids.ids), ids.mask)


def _module_recurrent(cx: Context, mod: nn.Module, x: Parts, state: Any = None) -> Any:
    return recurrent(mod, x, state, cx)


MODULE_RULES: dict[type, Rule] = {
    nn.Linear: _module_linear,
    nn.Conv1d: _module_conv,
    nn.Conv2d: _module_conv,
    nn.Conv3d: _module_conv,
    nn.BatchNorm1d: _batch_norm,
    nn.BatchNorm2d: _batch_norm,
    nn.BatchNorm3d: _batch_norm,
    nn.Dropout: _module_dropout,
    nn.Dropout1d: _module_dropout,
    nn.Dropout2d: _module_dropout,
    nn.Identity: _module_both,
    nn.Flatten: _module_both,
    nn.Unflatten: _module_both,
    nn.AvgPool1d: _module_both,
    nn.AvgPool2d: _module_both,
    nn.AdaptiveAvgPool1d: _module_both,
    nn.AdaptiveAvgPool2d: _module_both,
    nn.ZeroPad2d: _module_both,
    nn.MaxPool1d: _module_max_pool,
    nn.MaxPool2d: _module_max_pool,
    nn.AdaptiveMaxPool1d: _module_max_pool,
    nn.AdaptiveMaxPool2d: _module_max_pool,
    nn.ReLU: _module_activation(F.relu, "zero"),
    nn.ReLU6: _module_activation(F.relu6, "zero"),
    nn.LeakyReLU: _module_activation(F.leaky_relu, "zero"),
    nn.ELU: _module_activation(F.elu, "zero"),
    nn.GELU: _module_activation(F.gelu, "zero"),
    nn.SiLU: _module_activation(F.silu, "zero"),
    nn.Tanh: _module_activation(torch.tanh, "shapley"),
    nn.Sigmoid: _module_activation(torch.sigmoid, "shapley"),
    nn.Embedding: _module_embedding,
    nn.LSTM: _module_recurrent,
    nn.GRU: _module_recurrent,
}


def module_rule(mod: nn.Module) -> Rule | None:
    """The rule for ``mod``'s type (or the closest base class that has one)."""
    for cls in type(mod).__mro__:
        if cls in MODULE_RULES:
            return MODULE_RULES[cls]
    return None
