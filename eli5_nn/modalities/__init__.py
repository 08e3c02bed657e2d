"""Kinds of input: how each prepares the method's input and builds the results.

:func:`choose` picks the modality of a model input: token ids
(:class:`~eli5_nn.modalities.tokens.TokenInput`) or dense input
(:class:`~eli5_nn.modalities.dense.DenseInput`: images and the rest).
"""

from __future__ import annotations

from typing import Any

from ..adapters.base import Adapter
from ..errors import ExplanationError
from .base import MethodTraits, Modality, Prepared, RowMaps
from .dense import DenseInput
from .tokens import EmbeddingSpace, TokenInput, is_token_input

_TEXT_ONLY = ("tokens", "pad_value", "pad_token", "document", "tokenizer")


def choose(adapter: Adapter, model_in: Any, single: bool, *, image: Any = None,
           notes: tuple[str, ...] = (), **text: Any) -> Modality:
    """The modality of ``model_in`` (``text`` holds the text options: ``tokens``,
    ``pad_value``, ``pad_token``, ``document``, ``tokenizer``)."""
    if is_token_input(adapter, model_in, text.get("tokens")):
        if image is not None:
            raise ExplanationError("image= applies to image models; this input is token ids")
        return TokenInput(adapter, model_in, single, **text)
    given = [k for k in _TEXT_ONLY if text.get(k) is not None]
    if given:
        raise ExplanationError(
            ", ".join(f"{k}=" for k in given) + " apply to text models (token ids in, an "
            "embedding layer inside)"
        )
    return DenseInput(adapter, model_in, single, image=image, notes=notes)


__all__ = [
    "DenseInput",
    "EmbeddingSpace",
    "MethodTraits",
    "Modality",
    "Prepared",
    "RowMaps",
    "TokenInput",
    "choose",
]
