"""The matched trapezoid rule of Integrated Gradients, streamed over the passes.

:func:`eli5_nn.methods.quadrature.matched_weights` gives each node of a row
its weight from the target's scores and path slopes at the nodes. Here the
nodes arrive chunk by chunk (rows contiguous, nodes ascending), so the weights
are found segment by segment: a node's weight is final once the segments on
both sides of it are known, and per row only the last node's gradient waits
for the next chunk. Memory stays bounded by the chunk size.
"""

from __future__ import annotations

import numpy as np

from ..adapters.base import Tensor
from .batching import row_runs
from .context import MethodContext


def segment_shares(f: np.ndarray, d: np.ndarray, h: float) -> np.ndarray:
    """For consecutive nodes with scores ``f`` and slopes ``d`` (spacing ``h``), the
    share ``t`` of each segment carried by its left node's gradient, so that
    ``t * d_left + (1 - t) * d_right`` is the segment's measured mean slope
    (clamped to [0, 1]; 0.5 where both slopes agree). The rule of
    :func:`~eli5_nn.methods.quadrature.matched_weights`."""
    rise = (f[1:] - f[:-1]) / h
    left, right = d[:-1], d[1:]
    gap = left - right
    safe = np.where(np.abs(gap) > 1e-12 * (np.abs(left) + np.abs(right) + 1e-30), gap, np.inf)
    t = np.where(np.isfinite(safe), (rise - right) / safe, 0.5)
    return np.clip(t, 0.0, 1.0)


class MatchedSum:
    """:class:`~eli5_nn.methods.batching.Accumulator` of the matched rule on
    ``n_nodes`` equally spaced nodes; ``delta`` (R, ...) is ``x - baseline`` per row."""

    def __init__(self, ctx: MethodContext, delta: Tensor, n_rows: int, n_nodes: int) -> None:
        self.ops, self.delta = ctx.adapter.ops, delta
        self.n_nodes, self.h = n_nodes, 1.0 / (n_nodes - 1)
        self.acc: list[Tensor | None] = [None] * n_rows
        #: per row, the last node seen: (score, slope, gradient (1, ...), its weight so far)
        self.pending: list[tuple[float, float, Tensor, float] | None] = [None] * n_rows

    def add(self, r_u: np.ndarray, s_u: np.ndarray, scores: np.ndarray, grad: Tensor) -> None:
        ops = self.ops
        axes = tuple(range(1, len(ops.shape(grad))))
        slopes = ops.to_numpy(ops.sum(ops.take(self.delta, r_u) * grad, axis=axes))
        for r, start, stop in row_runs(r_u):
            f, d, g = scores[start:stop], np.asarray(slopes[start:stop], np.float64), \
                grad[start:stop]
            carry = 0.0
            before = self.pending[r]
            if before is not None:
                f, d = np.r_[before[0], f], np.r_[before[1], d]
                g, carry = ops.concat([before[2], g], axis=0), before[3]
            t = segment_shares(np.asarray(f, np.float64), d, self.h)
            w = np.zeros(len(f))
            w[:-1] += self.h * t
            w[1:] += self.h * (1.0 - t)
            w[0] += carry
            done = len(f) if int(s_u[stop - 1]) == self.n_nodes - 1 else len(f) - 1
            self.pending[r] = None if done == len(f) else (
                float(f[-1]), float(d[-1]), g[len(f) - 1:], float(w[-1]))
            if done:
                self._add(r, w[:done], g[:done])

    def _add(self, r: int, w: np.ndarray, g: Tensor) -> None:
        ops = self.ops
        shape = (len(w),) + (1,) * (len(ops.shape(g)) - 1)
        part = ops.sum(ops.asarray(w.reshape(shape), like=g) * g, axis=0, keepdims=True)
        prev = self.acc[r]
        self.acc[r] = part if prev is None else prev + part

    def result(self) -> Tensor:
        return self.ops.concat([a for a in self.acc if a is not None], axis=0)
