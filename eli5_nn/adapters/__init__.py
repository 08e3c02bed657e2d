"""Framework adapters; :func:`get_adapter` picks the one for a model."""

from __future__ import annotations

import sys
from typing import Any

from ..errors import Eli5NNTypeError
from .base import Adapter, BiasSite, ExplanationError, GradPass, LayerRef, Ops

__all__ = ["Adapter", "BiasSite", "ExplanationError", "GradPass", "LayerRef", "Ops", "get_adapter",
           "is_keras_model", "torch_module_class"]


def get_adapter(model: Any) -> Adapter:
    """The adapter for ``model`` (a ``keras.Model`` or a ``torch.nn.Module``).

    Keras is checked first: a Keras model on the torch backend is also a
    ``torch.nn.Module``. Keras is only looked at when it is already imported
    (a Keras model cannot exist otherwise), so torch users never import it.
    An object that is already an adapter (its class sets
    ``__eli5_nn_adapter__ = True``, e.g. the test suite's numpy adapter) is
    returned as it is. Raises ``TypeError`` for a model of a framework eli5-nn
    does not know.
    """
    if getattr(type(model), "__eli5_nn_adapter__", False) is True:
        return model
    if is_keras_model(model):
        from .keras import KerasAdapter

        return KerasAdapter(model)
    module_cls = torch_module_class()
    if module_cls is not None and isinstance(model, module_cls):
        from .torch import TorchAdapter

        return TorchAdapter(model)  # type: ignore[arg-type]
    raise Eli5NNTypeError(
        f"eli5-nn explains torch.nn.Module and keras.Model models; got {type(model).__module__}."
        f"{type(model).__name__}"
    )


def is_keras_model(model: Any) -> bool:
    """Whether ``model`` is a ``keras.Model``, without importing Keras."""
    keras = sys.modules.get("keras")
    model_cls = getattr(keras, "Model", None) if keras is not None else None
    return isinstance(model_cls, type) and isinstance(model, model_cls)


def torch_module_class() -> type | None:
    """``torch.nn.Module`` where PyTorch can be imported, else None (registration
    asks this, so that it imports no framework itself)."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is an optional dependency
        return None
    module: type = torch.nn.Module
    return module
