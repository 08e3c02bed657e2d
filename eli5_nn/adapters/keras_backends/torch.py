"""torch shim: autograd, with ``torch.autograd.grad`` per round on one graph.

With ``cut`` the forward pass runs under ``torch.no_grad()`` up to the tapped
layer, whose output becomes a fresh leaf, so only the rest is recorded.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from ..base import CotangentFn, Tensor
from . import GradientsResult, Rounds, Run, Slots


def call(model: Any, x: Tensor) -> Any:
    """The model's output on ``x`` in inference mode."""
    return model(x, training=False)


@contextmanager
def no_grad() -> Iterator[None]:
    """``torch.no_grad()``."""
    with torch.no_grad():
        yield


def gradients(
    run: Run, x: Tensor, cotangents: CotangentFn, *, wrt_input: bool, slots: Slots, cut: bool
) -> GradientsResult:
    """One forward pass, one ``torch.autograd.grad`` per round (graph retained between)."""
    acts: list[Tensor] = [None] * len(slots)

    def tap(slot: int, t: Tensor) -> Tensor:
        if cut:
            torch.set_grad_enabled(True)
        if cut or not t.requires_grad:
            t = t.detach().requires_grad_(True)
        acts[slot] = t
        return t

    xi = x.detach().requires_grad_(True) if wrt_input else x
    with torch.enable_grad():
        if cut:
            with torch.no_grad():
                scores = run(xi, tap)
        else:
            scores = run(xi, tap)
    scores_np = scores.detach().cpu().double().numpy()
    rounds = cotangents(scores_np)
    sources = ([xi] if wrt_input else []) + acts
    if not scores.requires_grad:
        raise ValueError(
            "the model's output does not depend on anything that can be differentiated"
        )
    out: Rounds = []
    for j, cot in enumerate(rounds):
        g = torch.as_tensor(cot, dtype=scores.dtype, device=scores.device)
        grads = torch.autograd.grad(
            scores, sources, grad_outputs=g, retain_graph=j < len(rounds) - 1, allow_unused=True
        )
        grads = tuple(
            torch.zeros_like(s) if gr is None else gr for s, gr in zip(sources, grads, strict=True)
        )
        k = 1 if wrt_input else 0
        out.append((grads[0] if wrt_input else None, list(grads[k:])))
    return scores_np, out, [a.detach() for a in acts]
