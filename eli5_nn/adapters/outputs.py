"""What a model's outputs are, where the model shows it (``output=None``).

- a final softmax or sigmoid (a ``torch.nn.Softmax`` / ``nn.Sigmoid`` module
  that returns the model's output; a Keras output layer with a softmax or
  sigmoid activation, or a ``Softmax`` / ``Activation`` layer):
  ``"probabilities"`` (the values are the probabilities, one distribution or
  one per label);
- a Hugging Face config's ``problem_type`` / ``num_labels``
  (:func:`eli5_nn.adapters.architectures.output_kind`);
- else ``None``: the pipeline decides from the scores.

The kinds are those of :func:`eli5_nn.targets.proba`. Frameworks are
imported only inside the functions that need them.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from . import architectures, common
from .base import Adapter, ModelInput, Tensor

#: final activations whose outputs are probabilities, by lower-case name
_PROBABILITY_ACTIVATIONS = frozenset({"softmax", "sigmoid"})


def output_kind(adapter: Adapter, x: Tensor) -> str | None:
    """``"probabilities"``, ``"multilabel"``, ``"regression"``, ``"logits"`` as
    ``adapter``'s model shows it (see the module docstring), or None."""
    model = getattr(adapter, "model", None)
    if model is None:
        return None
    if _ends_in_probabilities(adapter, model, x):
        return "probabilities"
    return architectures.output_kind(model)


def _ends_in_probabilities(adapter: Adapter, model: Any, x: Tensor) -> bool:
    keras = sys.modules.get("keras")  # a Keras model exists only once Keras is imported
    if keras is not None and isinstance(model, keras.Model):
        return _keras_final_activation(model) in _PROBABILITY_ACTIVATIONS
    if callable(getattr(model, "modules", None)):
        return _torch_final_module(adapter, model, x) in _PROBABILITY_ACTIVATIONS
    return False


def _keras_final_activation(model: Any) -> str:
    """The activation of the layer that makes a functional/Sequential Keras model's
    (single) output: its ``activation``, or a ``Softmax`` layer; "" when unknown."""
    outputs = getattr(model, "outputs", None) or []
    if len(outputs) != 1:
        return ""
    history = getattr(outputs[0], "_keras_history", None)
    layer = getattr(history, "operation", None) or (model.layers[-1] if model.layers else None)
    if layer is None:
        return ""
    if type(layer).__name__ == "Softmax":
        return "softmax"
    activation = getattr(layer, "activation", None)
    return str(getattr(activation, "__name__", "")).lower()


def _torch_final_module(adapter: Adapter, model: Any, x: Tensor) -> str:
    """The class name (lower case) of the leaf module called last in one forward pass
    of the first doc, where its output is the model's output; "" otherwise."""
    if not (hasattr(adapter, "modules") and hasattr(adapter, "structure_key")):
        return ""  # only the torch adapter lists a model's modules
    # the torch adapter's module list and structure key, walked once per call
    modules, structure = adapter.modules(), adapter.structure_key()
    cache = common.model_cache(model)  # one pass per model structure and input signature
    leaves_key = ("probability-leaves", structure)
    if leaves_key not in cache:
        leaves = [m for m in modules if not m._modules]
        found = {type(m).__name__.lower() for m in leaves} & _PROBABILITY_ACTIVATIONS
        cache[leaves_key] = leaves if found else None
    leaves = cache[leaves_key]
    if leaves is None:
        return ""  # nothing to look for: no pass needed
    first = x[:1] if not isinstance(x, ModelInput) else x.rows(adapter.ops, np.zeros(1, int))
    parts = first.values if isinstance(first, ModelInput) else (first,)
    key = ("output-kind", structure,
           tuple((tuple(getattr(v, "shape", ())), str(getattr(v, "dtype", ""))) for v in parts))
    if key not in cache:
        cache[key] = _last_module_called(adapter, leaves, first)
    return str(cache[key])


def _last_module_called(adapter: Adapter, leaves: list[Any], first: Tensor) -> str:
    import torch

    last: list[Any] = [None, None]

    def hook(m: torch.nn.Module, _i: Any, out: Any) -> None:
        last[0], last[1] = m, out

    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        scores = adapter.forward(first)
    finally:
        for h in handles:
            h.remove()
    module, out = last
    if module is None or not isinstance(out, torch.Tensor):
        return ""
    values = out.detach().float().cpu().numpy().reshape(scores.shape[0], -1)
    if values.shape != scores.shape or not np.allclose(values, scores, rtol=1e-5, atol=1e-7):
        return ""
    return type(module).__name__.lower()


__all__ = ["output_kind"]
