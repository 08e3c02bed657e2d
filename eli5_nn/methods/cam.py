"""Class activation maps: Grad-CAM and Grad-CAM++.

Both weight the channels of a layer's output ``A`` (channels ``k``) by
statistics of the gradient ``G = dy_c / dA`` over the map axes (which axes
those are is the layer's layout; prefix tokens such as a class token are left
out) and return the signed per-channel map
``w_k * A_k`` as attribution; the heatmap is ``ReLU(sum_k w_k A_k)`` resized
to the input. Only the channel weights differ, so each variant is one
small function.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..adapters.base import Ops, Tensor
from ..errors import ExplanationError
from .batching import gradient_pass
from .context import MethodContext, MethodResult
from .registry import register

WeightFn = Callable[[Ops, Tensor, Tensor, tuple[int, ...]], Tensor]


def _cam(ctx: MethodContext, weights: WeightFn) -> MethodResult:
    layer = ctx.layer
    if layer is None:  # the pipeline resolves it; guard for direct calls
        raise ExplanationError("CAM methods need a layer")
    res = gradient_pass(ctx, wrt_input=False, layers=[layer], cut_at_layer=True)
    acts, grads = res.layer_acts[layer], res.layer_grads[layer]
    if len(acts) != 1:
        raise ExplanationError(
            f"layer {layer.name!r} is called {len(acts)} times in one forward pass; "
            "CAM needs a layer that runs once - choose another layer"
        )
    a, g = acts[0], grads[0]
    ndim = len(ctx.adapter.ops.shape(a))
    if ndim < 3:
        raise ExplanationError(
            f"layer {layer.name!r} outputs shape {ctx.adapter.ops.shape(a)[1:]} with no spatial "
            "or temporal axes; CAM methods need a convolutional or recurrent map. Choose such "
            "a layer, or use a gradient method (method='gradient' or 'integrated-gradients')."
        )
    layout = ctx.layout_of(layer)
    layout.check(ctx.adapter.ops.shape(a)[1:], f"the output of layer {layer.name!r}")
    spatial = tuple(i + 1 for i in layout.map_axes)  # batch axis first
    ops = ctx.adapter.ops
    if layout.prefix_tokens:  # class / register tokens are not part of the map
        axis = layout.axes.index("T") + 1
        keep = np.arange(layout.prefix_tokens, ops.shape(a)[axis])
        w = weights(ops, ops.take(a, keep, axis=axis), ops.take(g, keep, axis=axis), spatial)
    else:
        w = weights(ops, a, g, spatial)
    return MethodResult(scores=res.scores, rows=res.rows, attribution=w * a)


def grad_cam_weights(ops: Ops, a: Tensor, g: Tensor, spatial: tuple[int, ...]) -> Tensor:
    """Grad-CAM (Selvaraju et al. 2017, eq. 1): ``w_k = mean_ij G_kij``."""
    return ops.mean(g, axis=spatial, keepdims=True)


def grad_cam_pp_weights(ops: Ops, a: Tensor, g: Tensor, spatial: tuple[int, ...]) -> Tensor:
    """Grad-CAM++ (Chattopadhyay et al. 2018, eq. 19 with the exponential trick).

    ``alpha_kij = G^2 / (2 G^2 + sum_ab A_kab G^3)``; ``w_k = sum_ij alpha_kij ReLU(G_kij)``.
    """
    g2 = g * g
    denom = 2.0 * g2 + ops.sum(a, axis=spatial, keepdims=True) * g2 * g
    nonzero = denom != 0
    alpha = ops.where(nonzero, g2 / ops.where(nonzero, denom, 1.0), 0.0)
    return ops.sum(alpha * ops.relu(g), axis=spatial, keepdims=True)


@register("grad-cam", "Grad-CAM", space="layer", params=("layer",), text="layer")
def grad_cam(ctx: MethodContext) -> MethodResult:
    """Grad-CAM: channels weighted by their spatially averaged gradient."""
    return _cam(ctx, grad_cam_weights)


@register("grad-cam++", "Grad-CAM++", space="layer", params=("layer",), text="layer")
def grad_cam_pp(ctx: MethodContext) -> MethodResult:
    """Grad-CAM++: channels weighted by positive gradients with pixel-wise alphas."""
    return _cam(ctx, grad_cam_pp_weights)
