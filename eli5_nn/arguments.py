"""Argument checks shared by every entry point (rank 2: imports only errors).

Pure functions: each takes the value (and, where names are looked up, the
list of valid names) and returns the normalised value or raises an error of
:mod:`eli5_nn.errors` that says what was expected.

- :func:`check_positive_int`, :func:`check_number`, :func:`check_optional_bool`;
- :func:`method_key`: a method name, case- and separator-insensitive
  (``"Grad-CAM"``, ``"grad_cam"``, ``"gradcam"`` → ``"grad-cam"``), with a
  "did you mean" suggestion when it is unknown;
- :func:`check_keywords` / :func:`unknown_keywords_message`: unknown keyword
  arguments, with the valid ones listed.
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Iterable
from typing import Any

from .errors import Eli5NNTypeError, ExplanationError

_SEPARATORS = str.maketrans("", "", "-_ .")


def check_positive_int(name: str, value: Any) -> int | None:
    """``value`` as an ``int`` when it is a positive integer, ``None`` when ``None``.

    Raises
    ------
    ExplanationError
        When ``value`` is not an integer >= 1 (``bool`` is refused).
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ExplanationError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_number(name: str, value: Any, *, minimum: float | None = None) -> float | None:
    """``value`` as a ``float`` when it is a finite real number (>= ``minimum``
    when one is given), ``None`` when ``None``."""
    if value is None:
        return None
    ok = (isinstance(value, numbers.Real) and not isinstance(value, bool)
          and math.isfinite(float(value)))
    if not ok or (minimum is not None and float(value) < minimum):
        bound = f" >= {minimum:g}" if minimum is not None else ""
        raise ExplanationError(f"{name} must be a finite number{bound}, got {value!r}")
    return float(value)


def check_optional_bool(name: str, value: Any) -> bool | None:
    """``value`` when it is ``True``, ``False`` or ``None``; else a type error."""
    if value is not None and not isinstance(value, bool):
        raise Eli5NNTypeError(f"{name} must be True, False or None, got {value!r}")
    return value


def canonical_name(name: str) -> str:
    """A name compared case- and separator-insensitively (``"Grad_CAM"`` → ``"gradcam"``)."""
    return name.lower().translate(_SEPARATORS)


def did_you_mean(name: str, valid: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest valid name, or ``""``."""
    names = list(valid)
    by_canon = {canonical_name(v): v for v in names}
    close = difflib.get_close_matches(canonical_name(name), list(by_canon), n=1, cutoff=0.6)
    return f" (did you mean {by_canon[close[0]]!r}?)" if close else ""


def method_key(name: Any, valid: Iterable[str]) -> str:
    """The valid method key that ``name`` spells, ignoring case and ``-``, ``_``,
    ``.`` and spaces: ``"Grad-CAM"``, ``"grad_cam"`` → ``"grad-cam"``.

    Raises
    ------
    Eli5NNTypeError
        When ``name`` is not a string.
    ExplanationError
        When no valid key matches; the message suggests the closest and lists all.
    """
    names = sorted(valid)
    if not isinstance(name, str):
        raise Eli5NNTypeError(
            f"method must be a string, got {type(name).__name__}; valid methods are: "
            + ", ".join(repr(k) for k in names)
        )
    wanted = canonical_name(name)
    for key in names:
        if canonical_name(key) == wanted:
            return key
    raise ExplanationError(
        f"unknown method {name!r}{did_you_mean(name, names)}; valid methods are: "
        + ", ".join(repr(k) for k in names)
    )


def unknown_keywords_message(
    unknown: Iterable[str], valid: Iterable[str], function: str = "explain_prediction"
) -> str:
    """The message for keyword arguments ``function`` does not take."""
    names = sorted(valid)
    bad = sorted(unknown)
    plural = "s" if len(bad) > 1 else ""
    listed = ", ".join(f"{k!r}{did_you_mean(k, names)}" for k in bad)
    return (
        f"{function}() got unexpected keyword argument{plural} {listed}. "
        "Valid arguments are: " + ", ".join(names)
    )


def check_keywords(
    given: Iterable[str], valid: Iterable[str], function: str = "explain_prediction"
) -> None:
    """Raise :class:`~eli5_nn.errors.Eli5NNTypeError` (a ``TypeError``, as Python
    raises for an unexpected keyword) when ``given`` holds a name not in ``valid``."""
    names = valid if isinstance(valid, (set, frozenset)) else set(valid)
    unknown = [k for k in given if k not in names]
    if unknown:
        raise Eli5NNTypeError(unknown_keywords_message(unknown, names, function))


__all__ = [
    "canonical_name",
    "check_keywords",
    "check_number",
    "check_optional_bool",
    "check_positive_int",
    "did_you_mean",
    "method_key",
    "unknown_keywords_message",
]
