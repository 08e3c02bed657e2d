"""FullGrad (Srinivas & Fleuret, NeurIPS 2019).

For a network with ReLU-like (piecewise-linear) activations,
``y_c(x) = x · dy_c/dx + sum_l b_l · dy_c/db_l`` (the full-gradient
decomposition, eq. 2). The bias term of a layer is ``sum_k G_k b_k`` over its
channels, where ``G`` is the gradient at the layer's output; it has the
layer's spatial shape.

``attribution`` keeps this completeness: the input term ``x ⊙ dy/dx`` plus
each bias map spread over the input with a mass-preserving resize (so it sums
to ``y_c`` exactly on piecewise-linear nets). The heatmap follows the paper's
saliency map (eq. 4): ``ψ(|x ⊙ dy/dx|) + sum_l sum_k ψ(|G_k b_k|)`` with ψ a
per-map min-max normalisation followed by bilinear resizing.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..adapters.base import Ops, Tensor
from ..modalities.image import resize_map
from .batching import gradient_pass
from .context import MethodContext, MethodResult
from .registry import register

COMPLETENESS_TOLERANCE = 1e-3


def mass_matrix(n_out: int, n_in: int) -> np.ndarray:
    """(n_out, n_in) matrix spreading each source cell over the target cells it
    overlaps, in proportion; every column sums to 1 (mass is preserved)."""
    edges_out = np.linspace(0.0, 1.0, n_out + 1)
    edges_in = np.linspace(0.0, 1.0, n_in + 1)
    lo = np.maximum(edges_out[:-1, None], edges_in[None, :-1])
    hi = np.minimum(edges_out[1:, None], edges_in[None, 1:])
    return np.clip(hi - lo, 0.0, None) * n_in


def _spread(ops: Ops, m: Tensor, target: tuple[int, ...], like: Tensor) -> Tensor:
    """Resize a (R, *s) map to (R, *target) preserving each row's sum."""
    shape = ops.shape(m)
    if len(shape) - 1 != len(target):
        total = ops.sum(m, axis=tuple(range(1, len(shape)))) if len(shape) > 1 else m
        size = int(np.prod(target)) if target else 1
        return ops.reshape(total, (shape[0],) + (1,) * len(target)) / float(size)
    out = m
    for axis, (n_in, n_out) in enumerate(zip(shape[1:], target, strict=True), start=1):
        if n_in == n_out:
            continue
        mat = ops.asarray(mass_matrix(n_out, n_in), like=like)
        out = ops.moveaxis(ops.matmul(mat, ops.moveaxis(out, axis, -2)), -2, axis)
    return out


def _psi(ops: Ops, t: Tensor, ch: int) -> np.ndarray:
    """Per-row ``sum_k normalise(|t_k|)`` as numpy (R, *spatial): the paper's ψ
    summed over channels (min-max over the whole row, then the channel sum)."""
    ndim = len(ops.shape(t))
    a = ops.abs(t)
    axes = tuple(range(1, ndim))
    mn = ops.amin(a, axis=axes, keepdims=True)
    mx = ops.amax(a, axis=axes, keepdims=True)
    s = ops.to_numpy(ops.sum(a - mn, axis=ch % ndim))
    scale = ops.to_numpy(mx - mn).reshape(len(s), *([1] * (s.ndim - 1)))
    return np.where(scale > 0, s / np.where(scale > 0, scale, 1.0), 0.0)


@register("fullgrad", "FullGrad", space="input")
def fullgrad(ctx: MethodContext) -> MethodResult:
    """FullGrad: input-gradient and bias-gradient terms; sums to the logit on ReLU nets."""
    adapter, ops = ctx.adapter, ctx.adapter.ops
    sites = adapter.bias_sites()
    res = gradient_pass(ctx, wrt_input=True, layers=[s.layer for s in sites])
    x_rows = res.rows_x(ctx)
    assert res.input_grad is not None
    input_term = res.input_grad * x_rows
    xshape = ops.shape(x_rows)
    layout = ctx.input_layout()
    # inputs without map axes (a vector of F features) are one channel of F cells
    ch_row = layout.channel_axis if layout.map_axes else None
    has_channels = ch_row is not None
    ch = ch_row + 1 if ch_row is not None else len(xshape)  # batch axis first
    spatial = tuple(s for i, s in enumerate(xshape) if i not in (0, ch))
    n_channels = xshape[ch] if has_channels else 1
    attribution = input_term
    display = (
        _psi(ops, input_term, ch) if has_channels else _psi(ops, input_term[:, None], 1)
    )
    for site in sites:
        gch = (ctx.layout_of(site.layer).channel_axis or 0) + 1  # batch axis first
        for g in res.layer_grads[site.layer]:
            gshape = ops.shape(g)
            bshape = [1] * len(gshape)
            bshape[gch] = gshape[gch]
            per_channel = g * ops.reshape(site.bias, tuple(bshape))
            bias_map = ops.sum(per_channel, axis=gch)
            spread = _spread(ops, bias_map, spatial, x_rows)
            if has_channels:
                spread = ops.reshape(spread, _insert_axis(ops.shape(spread), ch))
            attribution = attribution + spread / float(n_channels)
            # spatial bias maps enter the display map
            if has_channels and len(gshape) == len(xshape):
                psi = _psi(ops, per_channel, gch)
                display = display + np.stack([resize_map(p, spatial) for p in psi])
    total = ops.to_numpy(ops.sum(attribution, axis=tuple(range(1, len(xshape)))))
    expected = ctx.sign * res.scores[res.rows.doc, res.rows.cls]
    err = np.abs(total - expected) / np.maximum(np.abs(expected), 1e-6)
    notes = [f"{len(sites)} bias layers"]
    if len(err) and float(np.max(err)) > COMPLETENESS_TOLERANCE:
        warnings.warn(
            f"FullGrad completeness does not hold (relative error {float(np.max(err)):.2g}): "
            "the model has non-piecewise-linear activations or biases outside "
            "Linear/Conv/BatchNorm layers; the map is still FullGrad's, but its sum is "
            "not the logit",
            stacklevel=2,
        )
        notes.append(f"completeness error {float(np.max(err)):.2g} (relative)")
    return MethodResult(
        scores=res.scores, rows=res.rows, attribution=attribution, display=display, notes=notes
    )


def _insert_axis(shape: tuple[int, ...], axis: int) -> tuple[int, ...]:
    return shape[:axis] + (1,) + shape[axis:]
