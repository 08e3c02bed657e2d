"""JAX shim: ``jax.vjp`` over a stateless call, one vjp-function call per round.

A tapped layer output ``A`` is replaced by ``A + d`` with ``d = 0`` a primal of
the vjp, so the cotangent of ``d`` is the gradient with respect to ``A``.
"""

from __future__ import annotations

import inspect
import threading
import weakref
from collections.abc import Callable, Iterator
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

def _values(model: Any) -> tuple[list[Tensor], list[Tensor]]:
    """The values of ``model``'s trainable and non-trainable variables, as now."""
    return ([v.value for v in model.trainable_variables],
            [v.value for v in model.non_trainable_variables])


def _stateless(model: Any, trainable: list[Tensor], non_trainable: list[Tensor], x: Any
               ) -> Any:
    """``model.stateless_call`` in inference mode (``training=False`` where taken)."""
    params = inspect.signature(model.call).parameters.values()
    takes_training = any(p.name == "training" or p.kind is p.VAR_KEYWORD for p in params)
    kwargs = {"training": False} if takes_training else {}
    out, _ = model.stateless_call(trainable, non_trainable, x, **kwargs)
    return out


def call(model: Any, x: Tensor) -> Any:
    """The model's output on ``x``, through ``model.stateless_call`` (inference mode)."""
    return _stateless(model, *_values(model), x)


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


class _CompiledHead:
    """A head's scores and their vjp, each one compiled function of the variables'
    values and the head's input (the values are arguments, not constants: weights
    changed between calls are used as they are). The backward function recomputes
    what it needs of the forward pass (for a pooling + dense head: the pooling's
    argmax only; XLA drops the rest)."""

    def __init__(self, head: Any) -> None:
        ref = weakref.ref(head)  # the cache is weak on the head: do not hold it here

        def scores(trainable: list[Tensor], non_trainable: list[Tensor], a: Tensor) -> Tensor:
            out = _stateless(ref(), trainable, non_trainable, a)
            return out[:, None] if out.ndim == 1 else out

        def grad(trainable: list[Tensor], non_trainable: list[Tensor], a: Tensor,
                 cot: Tensor) -> Tensor:
            _, pull = jax.vjp(lambda b: scores(trainable, non_trainable, b), a)
            return pull(cot)[0]

        self.scores = jax.jit(scores)
        self.grad = jax.jit(grad)
        #: (shape, dtype) of the inputs the head has run on uncompiled
        self.seen: set[tuple[tuple[int, ...], str]] = set()
        #: whether compiling failed (a layer that reads values in Python, say): the
        #: head then always runs op by op
        self.failed = False


#: Grad-CAM's head (the network after the layer, ``KerasAdapter._head``) per head
_HEADS: weakref.WeakKeyDictionary[Any, _CompiledHead] = weakref.WeakKeyDictionary()
_HEADS_GUARD = threading.Lock()


def head_gradients(
    head: Any, a: Tensor, cotangents: CotangentFn, scores: Callable[[Any], Tensor]
) -> tuple[np.ndarray, list[Tensor]]:
    """The scores of ``head`` on its input ``a`` (numpy) and, per cotangent round,
    the gradient with respect to ``a``. ``scores`` reads the head's output as class
    scores (and checks it).

    The first call on inputs of a shape runs ``jax.vjp`` op by op; later calls on
    that shape run the head compiled (``jax.jit``): traced op by op, a text CNN's
    pooling + dense head cost ~3.8 ms of Python per Grad-CAM call of 32 reviews,
    compiled ~1 ms. A one-off call does not pay for compiling (tens of ms, more for
    a deep head), repeated calls (a data set in batches) do once.
    """
    with _HEADS_GUARD:
        compiled = _HEADS.get(head)
        if compiled is None:
            compiled = _HEADS[head] = _CompiledHead(head)
    sig = (tuple(int(d) for d in a.shape), str(a.dtype))
    if sig in compiled.seen and not compiled.failed:
        trainable, non_trainable = _values(head)
        try:
            out = compiled.scores(trainable, non_trainable, a)
        except Exception:  # noqa: BLE001 - not compilable: op by op, as before
            compiled.failed = True
        else:
            scores_np = np.asarray(out, dtype=np.float64)
            grads = [compiled.grad(trainable, non_trainable, a,
                                   jnp.asarray(cot, dtype=out.dtype))
                     for cot in cotangents(scores_np)]
            return scores_np, grads
    scores_np, rounds, _ = gradients(
        lambda xa, _tap: scores(call(head, xa)), a, cotangents,
        wrt_input=True, slots=[], cut=False,
    )
    compiled.seen.add(sig)
    return scores_np, [g for g, _slot_grads in rounds]
