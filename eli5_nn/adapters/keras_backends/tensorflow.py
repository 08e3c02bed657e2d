"""TensorFlow shim: one ``GradientTape`` per call.

The tape watches only the input (when asked) and the tapped layer outputs, not
the model's variables, so with ``cut`` the part of the network before the layer
is not recorded at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import tensorflow as tf

from ..base import CotangentFn, Tensor
from . import GradientsResult, Rounds, Run, Slots

#: the CPU pass budget of this backend, as a multiple of the shared one: eager
#: TensorFlow pays a fixed cost per op, so larger chunks win on the CPU (IG at 112×112:
#: 50 rows per pass beat the shared budget's 21 in two runs)
CPU_BUDGET_SCALE = 2.0

#: the bytes of one automatic pass without a graph for a model without recurrent
#: layers: no limit (only the adapter's row cap), as eager TensorFlow pays a fixed cost
#: per op and larger chunks win (text CNN occlusion: 104 ms in one chunk of 1900 rows
#: of 130 kB, 129 ms in chunks of 512)
FORWARD_CHUNK_BYTES: int | None = None

#: the rows of one automatic pass without a graph for a model with recurrent layers:
#: Keras runs them step by step with a fixed cost per step, so large chunks win (BiLSTM
#: occlusion 2x slower at 512 rows than at 4096)
RECURRENT_FORWARD_ROWS = 4096

#: the most rows of one automatic pass with a graph (memory allowing): eager TensorFlow
#: pays a fixed cost per op, so one pass beats two where rows are small (Keras text CNN
#: IG of 32 reviews x 10 steps: 91 ms in one pass of 320 rows, 109 ms in 256 + 64)
GRADIENT_ROWS = 1024

def call(model: Any, x: Tensor) -> Any:
    """The model's output on ``x`` in inference mode."""
    return model(x, training=False)


@contextmanager
def no_grad() -> Iterator[None]:
    """Eager TensorFlow records nothing outside a tape."""
    yield


def gradients(
    run: Run, x: Tensor, cotangents: CotangentFn, *, wrt_input: bool, slots: Slots, cut: bool
) -> GradientsResult:
    """One forward pass under a persistent tape, one ``tape.gradient`` per round."""
    acts: list[Tensor] = [None] * len(slots)

    with tf.GradientTape(persistent=True, watch_accessed_variables=False) as tape:
        if wrt_input:
            tape.watch(x)

        def tap(slot: int, t: Tensor) -> Tensor:
            tape.watch(t)
            acts[slot] = t
            return t

        scores = run(x, tap)
    scores_np = np.asarray(scores.numpy(), dtype=np.float64)
    sources = ([x] if wrt_input else []) + acts
    k = 1 if wrt_input else 0
    out: Rounds = []
    for cot in cotangents(scores_np):
        grads = tape.gradient(
            scores, sources, output_gradients=tf.constant(cot, dtype=scores.dtype),
            unconnected_gradients=tf.UnconnectedGradients.ZERO,
        )
        out.append((grads[0] if wrt_input else None, list(grads[k:])))
    return scores_np, out, acts


def take(x: Tensor, indices: np.ndarray, axis: int) -> Tensor:
    """Rows ``indices`` (non-negative) of ``x`` along ``axis``."""
    return tf.gather(x, indices.astype(np.int32), axis=axis)


def host_view(x: Tensor) -> np.ndarray | None:
    """``x`` as numpy where it lives on the CPU (eager), else None."""
    if "CPU" not in str(getattr(x, "device", "")) or not hasattr(x, "numpy"):
        return None
    return np.asarray(x.numpy())
