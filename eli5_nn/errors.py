"""The one error hierarchy of eli5-nn.

Every error eli5-nn raises derives from :class:`Eli5NNError`. Bad values
(shapes, ranges, NaN, a layer that is not there, a method that cannot apply)
raise a subclass of :class:`Eli5NNValueError`, which is also a ``ValueError``;
wrong types raise :class:`Eli5NNTypeError`, also a ``TypeError``. Code written
against plain ``ValueError`` / ``TypeError`` keeps working.

This module imports nothing of eli5-nn.
"""

from __future__ import annotations


class Eli5NNError(Exception):
    """Base class of every error raised by eli5-nn."""


class Eli5NNValueError(Eli5NNError, ValueError):
    """A bad value: the message says what was expected and what to do."""


class Eli5NNTypeError(Eli5NNError, TypeError):
    """An argument of the wrong type: the message says which type was expected."""


class ExplanationError(Eli5NNValueError):
    """Bad input or arguments for an explanation; the message says what was expected."""


class DecompositionError(Eli5NNValueError):
    """A model, layer or input that contextual decomposition cannot handle."""


class InputError(Eli5NNValueError):
    """A model or input file the command line or a data loader cannot read."""


__all__ = [
    "DecompositionError",
    "Eli5NNError",
    "Eli5NNTypeError",
    "Eli5NNValueError",
    "ExplanationError",
    "InputError",
]
