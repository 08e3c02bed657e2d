"""Framework adapters; :func:`get_adapter` picks the one for a model."""

from __future__ import annotations

import sys
from typing import Any

from .base import Adapter, BiasSite, ExplanationError, GradPass, LayerRef, Ops

__all__ = ["Adapter", "BiasSite", "ExplanationError", "GradPass", "LayerRef", "Ops", "get_adapter",
           "is_keras_model"]


def get_adapter(model: Any) -> Adapter:
    """The adapter for ``model`` (a ``keras.Model`` or a ``torch.nn.Module``).

    Keras is checked first: a Keras model on the torch backend is also a
    ``torch.nn.Module``. Keras is only looked at when it is already imported
    (a Keras model cannot exist otherwise), so torch users never import it.
    Raises ``TypeError`` for a model of a framework eli5-nn does not know.
    """
    if is_keras_model(model):
        from .keras import KerasAdapter

        return KerasAdapter(model)
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is an optional dependency
        torch = None  # type: ignore[assignment]
    if torch is not None and isinstance(model, torch.nn.Module):
        from .torch import TorchAdapter

        return TorchAdapter(model)
    raise TypeError(
        f"eli5-nn explains torch.nn.Module and keras.Model models; got {type(model).__module__}."
        f"{type(model).__name__}"
    )


def is_keras_model(model: Any) -> bool:
    """Whether ``model`` is a ``keras.Model``, without importing Keras."""
    keras = sys.modules.get("keras")
    model_cls = getattr(keras, "Model", None) if keras is not None else None
    return isinstance(model_cls, type) and isinstance(model, model_cls)
