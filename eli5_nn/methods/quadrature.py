"""Quadrature rules on [0, 1] for path integrals (Integrated Gradients).

Fixed rules (:data:`RULES`) return ``(alphas, weights)`` with
``sum(weights) == 1``: the attribution is ``delta * sum_s weights[s] * grad(b +
alphas[s] * delta)``.

The *matched* rule (:data:`MATCHED`, ``quadrature="matched_trapezoid"``) also
uses what each pass already computes: the target's score ``f(alpha_s)`` and the
derivative along the path ``f'(alpha_s) = <delta, grad(alpha_s)>``. For a ReLU
network the score along the path is piecewise linear, so its derivative jumps
where a unit switches; a fixed rule's error then falls only as 1/steps. Between
two neighbouring nodes the matched rule assumes one switch: the gradient is
``g_i`` up to a point and ``g_{i+1}`` after it, and that point is the one for
which the segment's integral equals the score difference ``f(alpha_{i+1}) -
f(alpha_i)``, which the forward passes measured exactly. Each segment's weight
is thus split between its two end nodes (:func:`matched_weights`). Where a
segment holds one switch the result is exact; with more it is a convex
combination of the end gradients that reproduces the segment's change of
score, so the attributions sum to ``f(x) - f(baseline)`` up to the clamping of
the split to the segment. Memory stays bounded by the chunk size: a node's
weight needs only its own and its neighbours' scalars, so a pass over nodes in
order keeps one gradient per row from the previous chunk.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..errors import ExplanationError

Rule = Callable[[int], tuple[np.ndarray, np.ndarray]]


def gauss_legendre(steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Legendre nodes and weights mapped from [-1, 1] to [0, 1]."""
    nodes, weights = np.polynomial.legendre.leggauss(steps)
    return (nodes + 1.0) / 2.0, weights / 2.0


def riemann_trapezoid(steps: int) -> tuple[np.ndarray, np.ndarray]:
    """The trapezoid rule on ``steps`` equally spaced points including both ends."""
    if steps == 1:
        return np.array([1.0]), np.array([1.0])
    alphas = np.linspace(0.0, 1.0, steps)
    weights = np.full(steps, 1.0 / (steps - 1))
    weights[[0, -1]] /= 2.0
    return alphas, weights


def riemann_middle(steps: int) -> tuple[np.ndarray, np.ndarray]:
    """The midpoint rule."""
    return (np.arange(steps) + 0.5) / steps, np.full(steps, 1.0 / steps)


RULES: dict[str, Rule] = {
    "gausslegendre": gauss_legendre,
    "riemann_trapezoid": riemann_trapezoid,
    "riemann_middle": riemann_middle,
}

#: the name of the matched rule (nodes of the trapezoid rule, weights from the passes)
MATCHED = "matched_trapezoid"


def matched_weights(scores: np.ndarray, slopes: np.ndarray) -> np.ndarray:
    """Per-row node weights of the matched rule on equally spaced nodes.

    Parameters
    ----------
    scores : numpy.ndarray
        (R, S) the target's score at each node ``alpha_s = s / (S - 1)`` of each
        row (``S >= 2``; node 0 is the baseline, node S-1 the input).
    slopes : numpy.ndarray
        (R, S) the derivative along the path at each node,
        ``<x - baseline, grad f(alpha_s)>``.

    Returns
    -------
    numpy.ndarray
        (R, S) weights: the attribution of row ``r`` is
        ``(x - baseline) * sum_s w[r, s] * grad f(alpha_s)``. Each row's weights
        sum to 1; on a segment where the slope does not change they are the
        trapezoid rule's.
    """
    f = np.asarray(scores, dtype=np.float64)
    d = np.asarray(slopes, dtype=np.float64)
    if f.ndim != 2 or f.shape != d.shape or f.shape[1] < 2:
        raise ExplanationError(f"scores and slopes must both be (rows, nodes >= 2), got "
                         f"{f.shape} and {d.shape}")
    h = 1.0 / (f.shape[1] - 1)
    rise = (f[:, 1:] - f[:, :-1]) / h  # the segment's mean slope, measured
    left, right = d[:, :-1], d[:, 1:]
    gap = left - right
    # share t of the segment on the left node's gradient: t*left + (1-t)*right = rise
    safe = np.where(np.abs(gap) > 1e-12 * (np.abs(left) + np.abs(right) + 1e-30), gap, np.inf)
    t = np.where(np.isfinite(safe), (rise - right) / safe, 0.5)
    t = np.clip(t, 0.0, 1.0)
    w = np.zeros_like(f)
    w[:, :-1] += h * t
    w[:, 1:] += h * (1.0 - t)
    return w


def nodes(name: str, steps: int) -> np.ndarray:
    """The nodes of rule ``name`` (fixed or matched) for ``steps`` passes."""
    if name == MATCHED:
        return np.linspace(0.0, 1.0, max(2, steps))
    return RULES[name](steps)[0]
