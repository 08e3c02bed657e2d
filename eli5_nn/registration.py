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
    _show_every_target()
    return list(_REGISTERED)


def _show_every_target() -> None:
    """Let ``eli5.show_prediction`` draw every target of an eli5-nn explanation.

    ``show_prediction`` draws image explanations with eli5's own
    ``format_as_image``, which handles one target only. Its module-level name
    is replaced by a function that sends eli5-nn explanations with several
    targets to :func:`eli5_nn.format_as_image` (one panel per target) and
    everything else to eli5's function, unchanged.
    """
    try:
        import eli5.ipython as eli5_ipython
    except ImportError:  # pragma: no cover - IPython is not installed
        return
    original = eli5_ipython.format_as_image
    if isinstance(original, ImportError) or getattr(original, "_eli5_nn", False):
        return

    def format_as_image(expl: Any, **kwargs: Any) -> Any:
        from .formatters import NNExplanation
        from .formatters import format_as_image as draw_every_target

        if isinstance(expl, NNExplanation) and len(expl.targets or []) > 1:
            return draw_every_target(expl, **kwargs)
        return original(expl, **kwargs)

    format_as_image.__doc__ = original.__doc__
    setattr(format_as_image, "_eli5_nn", True)  # noqa: B010
    eli5_ipython.format_as_image = format_as_image
