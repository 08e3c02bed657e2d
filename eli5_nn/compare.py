"""``eli5_nn.compare``: several methods on the same input, side by side (rank 8).

Runs the pipeline once per method and returns a
:class:`~eli5_nn.results.Comparison` (data); the formatters draw it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .errors import ExplanationError
from .explain import explain_prediction_nn
from .methods import METHODS, get_method
from .results import Comparison

#: methods compare() runs when none are named
DEFAULT_METHODS = ("grad-cam", "gradient", "integrated-gradients")


def _method_kwargs(key: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` without the method-specific arguments that ``key`` does not take."""
    specific = {p for spec in METHODS.values() for p in spec.params}
    spec = get_method(key)
    return {k: v for k, v in kwargs.items() if k not in specific or k in spec.params}


def compare(model: Any, doc: Any, methods: Sequence[str] = DEFAULT_METHODS,
            scale: str | float = "explanation", **kwargs: Any) -> Comparison:
    """Explain one prediction with several methods and show them side by side.

    Parameters
    ----------
    model, doc
        As for :func:`eli5_nn.explain_prediction_nn`.
    methods : list of str
        Method names (see ``eli5_nn.METHODS``); default Grad-CAM, gradient and
        Integrated Gradients.
    scale : {"explanation", "target", "shared"} or float
        Colour scale of the view. The default gives each method one scale over
        its targets, all drawn with the same colour bar relative to each
        method's peak (methods measure in different units); ``"shared"`` puts
        every map on one scale in raw units, meaningful for methods with the
        same units (e.g. gradient and SmoothGrad).
    **kwargs
        Arguments of :func:`eli5_nn.explain_prediction_nn` (``targets``,
        ``steps``, ``layer``...); a method-specific one goes only to the
        methods that take it.

    Returns
    -------
    Comparison
        Displays as HTML in notebooks; see :meth:`Comparison.format_as_image`.
    """
    if isinstance(methods, str) or not methods:
        raise ExplanationError("methods must be a non-empty list of method names, e.g. "
                               "['grad-cam', 'integrated-gradients']")
    keys = [get_method(m).key for m in methods]
    expls = [explain_prediction_nn(model, doc, method=k, **_method_kwargs(k, kwargs))
             for k in keys]
    return Comparison(expls, [str(e.method or k) for e, k in zip(expls, keys, strict=True)],
                      scale=scale)


__all__ = ["DEFAULT_METHODS", "compare"]
