"""torch shim: autograd, through the torch adapter's one autograd loop.

With ``cut`` the forward pass runs under ``torch.no_grad()`` up to the tapped
layer, whose output becomes a fresh leaf, so only the rest is recorded.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from ..base import MAX_GRADIENT_ROWS, CotangentFn, Tensor
from ..torch_autograd import autograd_rounds, leaf
from . import GradientsResult, Rounds, Run, Slots

#: the CPU pass budget of this backend, as a multiple of the shared one
CPU_BUDGET_SCALE = 1.0

#: the bytes of one automatic pass without a graph (rows x bytes_per_row) for a model
#: without recurrent layers: torch's CPU convolutions slow down per row past a few tens
#: of MB a pass (text CNN occlusion: 2.6x the floor's time in one chunk of 1900 rows of
#: 130 kB, 1.1x in chunks of 256)
FORWARD_CHUNK_BYTES: int | None = 32 << 20

#: the rows of one automatic pass without a graph for a model with recurrent layers:
#: torch's CPU LSTM kernels do better on smaller batches (Keras BiLSTM occlusion of 32
#: reviews, ~3800 variants: 1.0-1.5 s in chunks of 256, 1.9 s in one of 4096)
RECURRENT_FORWARD_ROWS = 256

#: the most rows of one automatic pass with a graph (memory allowing)
GRADIENT_ROWS = MAX_GRADIENT_ROWS

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
        acts[slot] = leaf(t, cut)
        return acts[slot]

    xi = x.detach().requires_grad_(True) if wrt_input else x
    scores_np, grads = autograd_rounds(
        lambda: run(xi, tap), lambda: ([xi] if wrt_input else []) + acts, cotangents, cut=cut
    )
    k = 1 if wrt_input else 0
    out: Rounds = [(g[0] if wrt_input else None, list(g[k:])) for g in grads]
    return scores_np, out, [a.detach() for a in acts]


def take(x: Tensor, indices: np.ndarray, axis: int) -> Tensor:
    """Rows ``indices`` (non-negative) of ``x`` along ``axis``."""
    idx = torch.as_tensor(indices, dtype=torch.long, device=x.device)
    return torch.index_select(x, axis % x.dim(), idx)


def host_view(x: Tensor) -> np.ndarray | None:
    """``x`` as numpy without a copy where it lives on the CPU, else None."""
    if not isinstance(x, torch.Tensor) or x.device.type != "cpu":
        return None
    return x.detach().numpy()
