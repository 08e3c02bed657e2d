"""Turning a ``doc`` into the tensors a Keras model takes, with the shape check."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops as K

from ..errors import ExplanationError
from . import common
from .base import Tensor


def input_dtype(model: Any) -> str:
    """The dtype of the model's (first) input."""
    inputs = getattr(model, "inputs", None)
    if inputs:
        try:
            return str(keras.backend.standardize_dtype(inputs[0].dtype))
        except (AttributeError, ValueError):  # pragma: no cover - odd input specs
            pass
    return str(getattr(model, "compute_dtype", None) or keras.config.floatx())


def expected_shape(model: Any) -> tuple[Any, ...] | None:
    """``model.input_shape`` for a model with one input, else None."""
    try:
        shape = model.input_shape
    except (AttributeError, ValueError):
        return None
    if not isinstance(shape, tuple) or not all(s is None or isinstance(s, int) for s in shape):
        return None  # several inputs: not checked here
    return shape


def check_shape(arr: np.ndarray, expected: tuple[Any, ...] | None, model_name: str) -> None:
    """Raise where ``arr`` does not fit ``expected`` (``model.input_shape``)."""
    if expected is None:
        return
    want = tuple(expected[1:])

    def fits(shape: tuple[int, ...]) -> bool:
        return len(shape) == len(want) and all(
            w is None or w == g for w, g in zip(want, shape, strict=True)
        )

    if not fits(tuple(arr.shape[1:])):
        example = "(1, " + ", ".join("?" if w is None else str(w) for w in want) + ")"
        hint = " The batch axis seems missing: pass x[None]." if fits(arr.shape) else ""
        raise ExplanationError(
            f"{model_name} expects input of shape {example} "
            f"(model.input_shape is {expected}), got shape {tuple(arr.shape)}.{hint}"
        )


def convert(arr: np.ndarray, dtype: str) -> Tensor:
    """A tensor of ``arr``: floats follow the model's float input dtype; floats are
    never cast to an integer input dtype (float token ids are refused later)."""
    if np.issubdtype(arr.dtype, np.floating) and "float" in dtype:
        return K.convert_to_tensor(arr, dtype=dtype)
    return K.convert_to_tensor(arr)


def to_numpy(doc: Any) -> np.ndarray:
    """``doc`` (numpy, a tensor of any backend, nested lists) as a numeric array."""
    if K.is_tensor(doc) or hasattr(doc, "__array__") and not isinstance(doc, np.ndarray):
        try:
            arr = np.asarray(K.convert_to_numpy(doc))
        except Exception:  # noqa: BLE001 - a tensor of another framework
            arr = np.asarray(doc)
    else:
        arr = doc
    return common.numeric_array(arr, "a tensor")


__all__ = ["check_shape", "convert", "expected_shape", "input_dtype", "to_numpy"]
