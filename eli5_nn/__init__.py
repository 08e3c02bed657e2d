"""eli5-nn: explain the predictions of neural networks with eli5.

Importing this package registers its handlers with ``eli5.explain_prediction``::

    import eli5, eli5_nn
    expl = eli5.explain_prediction(model, doc, method="integrated-gradients")
"""

from __future__ import annotations

from .adapters.base import ExplanationError
from .base import NNTargetExplanation
from .explain import explain_prediction_nn, explain_predictions
from .formatters import (
    Comparison,
    NNExplanation,
    compare,
    format_as_html,
    format_as_image,
    save_html,
)
from .methods import METHODS
from .registration import register_all

__version__ = "0.1.0"

__all__ = [
    "Comparison",
    "NNExplanation",
    "compare",
    "format_as_html",
    "format_as_image",
    "save_html",
    "METHODS",
    "ExplanationError",
    "NNTargetExplanation",
    "explain_prediction_nn",
    "explain_predictions",
]

register_all()
