"""The one torch autograd loop, shared by the torch adapter and the Keras torch shim.

A forward pass is run once (under ``torch.no_grad()`` up to the tapped layer when
the pass is cut there); each cotangent round is then one ``torch.autograd.grad``
on the same graph, retained between rounds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from ..errors import ExplanationError
from .base import CotangentFn


def leaf(t: torch.Tensor, cut: bool) -> torch.Tensor:
    """The tapped tensor to differentiate with respect to: a fresh leaf where the
    pass is cut at it (the graph starts here) or where it needs no gradient."""
    if cut:
        torch.set_grad_enabled(True)  # the rest of the forward pass records a graph
    if cut or not t.requires_grad:
        return t.detach().requires_grad_(True)
    return t


def autograd_rounds(
    run: Callable[[], torch.Tensor],
    sources: Callable[[], Sequence[torch.Tensor]],
    cotangents: CotangentFn,
    *,
    cut: bool,
    double: bool = True,
) -> tuple[np.ndarray, list[list[torch.Tensor]]]:
    """Scores of ``run()`` as numpy and, per cotangent round, the gradients of
    ``sum(scores * cotangent)`` with respect to ``sources()`` (read after the
    forward pass; a source the scores do not depend on gets zeros).

    ``run`` returns the (N, C) scores; with ``cut`` it runs under
    ``torch.no_grad()`` and its tap turns grad mode on (:func:`leaf`). Scores
    come back as float64 (``double``) or float32 numpy.
    """
    with torch.enable_grad():
        if cut:
            with torch.no_grad():
                scores = run()
        else:
            scores = run()
    detached = scores.detach().cpu()
    scores_np = (detached.double() if double else detached.float()).numpy()
    rounds = cotangents(scores_np)
    wrt = list(sources())
    if not scores.requires_grad:
        raise ExplanationError(
            "the model's output does not depend on anything that can be differentiated; "
            "check that the model is not run under torch.no_grad() and that its "
            "parameters or input reach the output"
        )
    out: list[list[torch.Tensor]] = []
    for j, cot in enumerate(rounds):
        g = torch.as_tensor(cot, dtype=scores.dtype, device=scores.device)
        grads = torch.autograd.grad(
            scores, wrt, grad_outputs=g, retain_graph=j < len(rounds) - 1, allow_unused=True
        )
        out.append([
            torch.zeros_like(w) if gr is None else gr.detach()
            for w, gr in zip(wrt, grads, strict=True)
        ])
    return scores_np, out


__all__ = ["autograd_rounds", "leaf"]
