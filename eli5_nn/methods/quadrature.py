"""Quadrature rules on [0, 1] for path integrals (Integrated Gradients).

Each rule returns ``(alphas, weights)`` with ``sum(weights) == 1``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

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
