"""Method arguments, each declared once: its check, its default and its documentation.

:data:`ARGUMENTS` declares every argument a method may take (``steps=``,
``baseline=``...); :func:`eli5_nn.methods.register` names the ones a method
takes. The pipeline accepts exactly these (plus its own arguments), warns
about one given to a method that does not take it, and builds the
``explain_prediction`` documentation from the same table.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..arguments import check_number, check_positive_int
from ..errors import Eli5NNTypeError, ExplanationError
from .quadrature import MATCHED, RULES


def _any(_name: str, value: Any) -> Any:
    return value


#: every quadrature= value: the fixed rules and the matched one
QUADRATURES = (*sorted(RULES), MATCHED)


def _quadrature(name: str, value: Any) -> Any:
    if value is None or value in QUADRATURES:
        return value
    if not isinstance(value, str):
        raise Eli5NNTypeError(f"{name} must be a string naming a rule, got {value!r}")
    raise ExplanationError(
        f"{name}={value!r} is not a quadrature rule; use one of "
        + ", ".join(repr(k) for k in QUADRATURES)
    )


def _non_negative(name: str, value: Any) -> Any:
    return check_number(name, value, minimum=0.0)


def _query(name: str, value: Any) -> Any:
    if value is None or value == "mean":
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise Eli5NNTypeError(f"{name} must be a token position (int) or 'mean', got {value!r}")
    if value < 0:
        raise ExplanationError(f"{name} must be a token position >= 0 or 'mean', got {value}")
    return int(value)


@dataclass(frozen=True)
class Argument:
    """A keyword argument of one or more methods.

    ``check(name, value)`` validates a given value (``None`` = not given) and
    returns it normalised; ``default`` is what methods use when it is not
    given; ``doc`` is its numpydoc entry (type line, then the description).
    """

    name: str
    doc: str
    check: Callable[[str, Any], Any] = _any
    default: Any = None


ARGUMENTS: dict[str, Argument] = {
    a.name: a
    for a in (
        Argument(
            "layer",
            "str, int or layer object, optional\n"
            "    CAM methods: the layer whose map is weighted (name, index in the\n"
            "    model's layer listing, or the module / layer itself); default: the\n"
            "    last layer with a spatial or token map. ``attention``: the\n"
            "    attention layer to read.",
        ),
        Argument(
            "baseline",
            "number, array or tensor, optional\n"
            "    Integrated Gradients: the reference input (default zeros; for text,\n"
            "    the padding embedding, or token ids of the same shape as ``doc``).",
        ),
        Argument(
            "steps",
            "int, optional\n    Integrated Gradients: number of quadrature nodes (default 50).",
            check_positive_int, 50,
        ),
        Argument(
            "quadrature",
            "str, optional\n"
            "    Integrated Gradients: the quadrature rule (default ``'gausslegendre'``),\n"
            "    one of " + ", ".join(f"``{k!r}``" for k in QUADRATURES) + "; the matched rule\n"
            "    weighs equally spaced nodes by the scores and slopes the passes measure.",
            _quadrature, "gausslegendre",
        ),
        Argument(
            "samples",
            "int, optional\n    SmoothGrad: number of noisy samples (default 25).",
            check_positive_int, 25,
        ),
        Argument(
            "noise",
            "float, optional\n"
            "    SmoothGrad: noise level relative to the input's range (default 0.15).",
            _non_negative, 0.15,
        ),
        Argument(
            "random_state",
            "int or numpy.random.Generator, optional\n    SmoothGrad: the seed of the noise.",
        ),
        Argument(
            "query",
            "int or 'mean', optional\n"
            "    ``method='attention-rollout'``: the token whose rollout row is shown\n"
            "    (default 0, the class token, where the head reads one; ``'mean'``:\n"
            "    the mean of the tokens' rows, for heads that pool over positions).",
            _query,
        ),
        Argument(
            "patch_size",
            "int or tuple of int, optional\n"
            "    ``method='cd'`` on images: the block size of the grid whose blocks are\n"
            "    decomposed one by one (default: an 8×8 grid); each cell of the\n"
            "    attribution holds its block's CD score divided by the block's number\n"
            "    of values, so a block's attribution sums to its CD score.",
        ),
    )
}


def arguments_doc() -> str:
    """The numpydoc entries of every method argument, for docstrings."""
    return "\n".join(f"{a.name} : {a.doc}" for a in ARGUMENTS.values())
