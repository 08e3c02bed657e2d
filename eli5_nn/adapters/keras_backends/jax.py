"""JAX shim: ``jax.vjp`` over a stateless call, one vjp-function call per round.

A tapped layer output ``A`` is replaced by ``A + d`` with ``d = 0`` a primal of
the vjp, so the cotangent of ``d`` is the gradient with respect to ``A``.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ...errors import ExplanationError
from ..base import MAX_GRADIENT_ROWS, CotangentFn, Tensor
from . import GradientsResult, Rounds, Run, Slots

#: the CPU pass budget of this backend, as a multiple of the shared one
CPU_BUDGET_SCALE = 1.0
#: ``jax.vjp`` traces every operation of a pass, also those before a cut layer: the
#: adapter runs that part first without a trace, then differentiates a model of the
#: rest where the graph allows (Grad-CAM on a ResNet at 224x224: 20 ms less of 75)
HEAD_AFTER_CUT = True

#: the bytes of one automatic pass without a graph (rows x bytes_per_row) for a model
#: without recurrent layers: XLA's CPU convolutions slow down per row past a few tens
#: of MB a pass (text CNN occlusion: 117 ms in chunks of 256 rows of 130 kB, 210 ms in
#: one of 1900; with rows 4x wider the best chunk is about 4x smaller)
FORWARD_CHUNK_BYTES: int | None = 32 << 20

#: the rows of one automatic pass without a graph for a model with recurrent layers:
#: Keras runs them step by step with a fixed cost per step, so large chunks win (Keras
#: BiLSTM occlusion of 32 reviews, ~3800 variants: 2.2 s in one chunk of 4096, 10-12 s
#: in chunks of 256)
RECURRENT_FORWARD_ROWS = 4096

#: the most rows of one automatic pass with a graph (memory allowing)
GRADIENT_ROWS = MAX_GRADIENT_ROWS

def call(model: Any, x: Tensor) -> Any:
    """The model's output on ``x``, through ``model.stateless_call`` (inference mode)."""
    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]
    params = inspect.signature(model.call).parameters.values()
    takes_training = any(p.name == "training" or p.kind is p.VAR_KEYWORD for p in params)
    kwargs = {"training": False} if takes_training else {}
    out, _ = model.stateless_call(trainable, non_trainable, x, **kwargs)
    return out


@contextmanager
def no_grad() -> Iterator[None]:
    """Outside ``jax.vjp`` nothing is differentiated."""
    yield


def gradients(
    run: Run, x: Tensor, cotangents: CotangentFn, *, wrt_input: bool, slots: Slots, cut: bool
) -> GradientsResult:
    """One ``jax.vjp`` (forward pass) and one call of its vjp function per round."""
    deltas = [jnp.zeros(shape, dtype=dtype) for shape, dtype in slots]

    def f(xp: Tensor, ds: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
        acts: list[Tensor] = [None] * len(ds)

        def tap(slot: int, t: Tensor) -> Tensor:
            if tuple(t.shape) != tuple(ds[slot].shape):
                raise ExplanationError(
                    f"layer output of shape {tuple(t.shape)} where {tuple(ds[slot].shape)} "
                    "was recorded"
                )
            acts[slot] = t
            d = ds[slot]
            return t + (d if d.dtype == t.dtype else d.astype(t.dtype))

        return run(xp, tap), acts

    if wrt_input:
        scores, vjp_fn, acts = jax.vjp(f, x, deltas, has_aux=True)
    else:
        scores, vjp_fn, acts = jax.vjp(lambda ds: f(x, ds), deltas, has_aux=True)
    scores_np = np.asarray(scores, dtype=np.float64)
    out: Rounds = []
    for cot in cotangents(scores_np):
        grads = vjp_fn(jnp.asarray(cot, dtype=scores.dtype))
        if wrt_input:
            out.append((grads[0], list(grads[1])))
        else:
            out.append((None, list(grads[0])))
    return scores_np, out, list(acts)


def take(x: Tensor, indices: np.ndarray, axis: int) -> Tensor:
    """Rows ``indices`` (non-negative) of ``x`` along ``axis``."""
    return jnp.take(x, indices.astype(np.int32), axis=axis)


def host_view(x: Tensor) -> np.ndarray | None:
    """``x`` as numpy without a copy where it lives on the CPU, else None."""
    devices = getattr(x, "devices", None)
    if devices is None or not all(d.platform == "cpu" for d in devices()):
        return None
    return np.asarray(x)
