"""eli5-nn: explain the predictions of neural networks with eli5.

Importing this package registers its handlers with ``eli5.explain_prediction``::

    import eli5_nn, eli5          # eli5_nn first: eli5 then does not load TensorFlow
    expl = eli5.explain_prediction(model, doc, method="integrated-gradients")

Importing eli5-nn imports no deep-learning framework. Imported before eli5, it
also keeps eli5 0.16 from importing Keras (and TensorFlow or JAX with it) at
start: see :mod:`eli5_nn._eli5_keras`.
"""

from __future__ import annotations

from typing import Any

from . import _eli5_keras

_eli5_keras.install()  # before anything below imports eli5

import eli5  # noqa: E402

from . import metrics  # noqa: E402,F401  (registers faithfulness= with the pipeline)
from .compare import compare  # noqa: E402
from .errors import ExplanationError  # noqa: E402
from .explain import explain_prediction_nn, explain_predictions  # noqa: E402
from .formatters import format_as_html, format_as_image, save_html  # noqa: E402
from .methods import METHODS  # noqa: E402
from .registration import register_all  # noqa: E402
from .results import Comparison, NNExplanation, NNTargetExplanation  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "Comparison",
    "NNExplanation",
    "compare",
    "dataset_report",
    "explain_dataset",
    "format_as_html",
    "format_as_image",
    "save_html",
    "METHODS",
    "ExplanationError",
    "NNTargetExplanation",
    "explain_prediction_nn",
    "explain_predictions",
]

_LAZY = {"explain_dataset": "datasets", "dataset_report": "datasets"}


def __getattr__(name: str) -> Any:
    """Names from subpackages that are imported on first use."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_eli5_keras.attach(eli5)
register_all()
