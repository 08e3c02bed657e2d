"""One small gradient shim per Keras backend, with the same functions in each.

Every module here defines:

* ``call(model, x)`` - run the model in inference mode (the JAX shim makes a
  stateless call with the model's variable values);
* ``no_grad()`` - a context in which a forward pass builds no graph;
* ``CPU_BUDGET_SCALE`` - this backend's CPU pass budget as a multiple of the shared one;
* ``FORWARD_CHUNK_BYTES`` - the bytes of one automatic pass without a graph for a
  model without recurrent layers (``None``: no limit but the adapter's row cap);
* ``GRADIENT_ROWS`` - the most rows of one automatic pass with a graph (memory
  allowing);
* ``RECURRENT_FORWARD_ROWS`` - the rows of one automatic pass (without a graph, and
  at least the shared cap of a pass with one) for a model with recurrent layers;
* ``take(x, indices, axis)`` - the backend's own gather (non-negative numpy indices);
* ``host_view(x)`` - ``x`` as numpy where it lives on the CPU (no copy where the
  backend allows), else None;
* ``gradients(run, x, cotangents, *, wrt_input, slots, cut)`` - one forward
  pass through ``run(x, tap)``, then one backward round per cotangent. ``tap``
  is handed every intercepted layer output (``tap(slot, tensor) -> tensor``)
  and returns what flows on; the shim returns the scores as numpy, per round
  ``(input_grad, [grad of each slot])``, and the slot activations.

A shim with ``HEAD_AFTER_CUT`` set (JAX) also defines ``head_gradients(head, a,
cotangents, scores)``: the scores of a functional model of the network after a
cut layer on that layer's output ``a``, and per round the gradient with respect to ``a``.

:func:`load` picks the module of the active backend.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from types import ModuleType

import numpy as np

from ...errors import Eli5NNTypeError
from ..base import CotangentFn, Tensor

#: ``tap(slot, tensor) -> tensor``: what a layer output is replaced with.
Tap = Callable[[int, Tensor], Tensor]
#: ``run(x, tap) -> scores``: a forward pass with the taps installed.
Run = Callable[[Tensor, "Tap | None"], Tensor]
#: shape (batch axis included) and dtype of each slot, in slot order
Slots = Sequence[tuple[tuple[int, ...], str]]
Rounds = list[tuple["Tensor | None", list[Tensor]]]
GradientsResult = tuple[np.ndarray, Rounds, list[Tensor]]

_MODULES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}


def load(backend: str) -> ModuleType:
    """The shim module for Keras backend ``backend``."""
    if backend not in _MODULES:
        raise Eli5NNTypeError(
            f"eli5-nn supports Keras on the tensorflow, jax and torch backends; "
            f"this Keras runs on {backend!r}"
        )
    return importlib.import_module(f"{__name__}.{_MODULES[backend]}")


__all__ = ["CotangentFn", "GradientsResult", "Rounds", "Run", "Slots", "Tap", "load"]
