"""All of eli5-nn's registrations with eli5's dispatchers, in one place."""

from __future__ import annotations

import sys
from typing import Any

import eli5

from .explain import explain_prediction_nn

_REGISTERED: list[str] = []


def register_all() -> list[str]:
    """Register the handlers for the frameworks that are installed.

    Returns the names of the registered model types. Safe to call twice.
    """
    if _REGISTERED:
        return list(_REGISTERED)
    try:
        import torch
    except ImportError:
        torch = None  # type: ignore[assignment]
    if torch is not None:

        @eli5.explain_prediction.register(torch.nn.Module)
        def _explain_torch(model: Any, doc: Any, **kwargs: Any) -> Any:
            return explain_prediction_nn(model, doc, **kwargs)

        _REGISTERED.append("torch.nn.Module")
    # eli5 0.16 imports Keras itself when it is installed and registers its own
    # Grad-CAM for keras.Model; this registration replaces it. Keras is only
    # used when already imported, so importing eli5_nn never starts a backend.
    keras = sys.modules.get("keras")
    keras_model = getattr(keras, "Model", None) if keras is not None else None
    if isinstance(keras_model, type):

        @eli5.explain_prediction.register(keras_model)
        def _explain_keras(model: Any, doc: Any, **kwargs: Any) -> Any:
            return explain_prediction_nn(model, doc, **kwargs)

        _REGISTERED.append("keras.Model")
    return list(_REGISTERED)
