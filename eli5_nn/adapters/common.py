"""What every adapter needs once: the model lock, the score check, ``find_layer``,
the guard of the randomisation check, and how layouts are stated.

Nothing here imports a framework: each adapter hands in what is framework
specific (how to tell a layer object, what a tensor's shape is).
"""

from __future__ import annotations

import difflib
import math
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from ..errors import Eli5NNTypeError, ExplanationError
from ..layout import Layout
from . import architectures
from .base import LayerRef

_LOCKS: weakref.WeakKeyDictionary[Any, threading.RLock] = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()
_CACHES: weakref.WeakKeyDictionary[Any, dict[Any, Any]] = weakref.WeakKeyDictionary()
_COPIES: weakref.WeakSet[Any] = weakref.WeakSet()


def model_lock(model: Any) -> threading.RLock:
    """The lock that serialises explanation calls on ``model`` (one per model, kept
    as long as the model lives)."""
    with _LOCKS_GUARD:
        lock = _LOCKS.get(model)
        if lock is None:
            lock = _LOCKS[model] = threading.RLock()
        return lock


_HELD = threading.local()


@contextmanager
def hold(model: Any) -> Iterator[bool]:
    """Hold ``model``'s lock for the block; yields whether this is the outermost
    hold of this thread (a nested session then changes nothing)."""
    held: set[int] = getattr(_HELD, "models", None) or set()
    _HELD.models = held
    with model_lock(model):
        if id(model) in held:
            yield False
            return
        held.add(id(model))
        try:
            yield True
        finally:
            held.discard(id(model))


def model_cache(model: Any) -> dict[Any, Any]:
    """A dict that lives as long as ``model`` (what is traced once per model)."""
    with _LOCKS_GUARD:
        cache = _CACHES.get(model)
        if cache is None:
            cache = _CACHES[model] = {}
        return cache


def check_scores_shape(out: Any, shape: tuple[int, ...] | None) -> bool:
    """Whether scores of ``shape`` need a class axis added (a vector of one score
    per row); raises when ``out`` is not a tensor (``shape`` None) or has more axes."""
    if shape is None:
        raise Eli5NNTypeError(
            f"the model returned {type(out).__name__}; expected a tensor of class scores "
            "of shape (batch, n_classes)"
        )
    if len(shape) not in (1, 2):
        raise ExplanationError(
            f"the model's output has shape {tuple(shape)}; expected class scores of shape "
            "(batch, n_classes)"
        )
    return len(shape) == 1


def find_layer(
    refs: Sequence[LayerRef],
    spec: Any,
    *,
    is_layer: Callable[[Any], bool],
    model_name: str,
    index_refs: Sequence[LayerRef] | None = None,
    names_from: str,
) -> LayerRef:
    """Resolve ``layer=``: a layer object of the model, an index (into
    ``index_refs``, default ``refs``; negative from the end) or a name (with
    close names suggested). ``names_from`` says where names come from."""
    if is_layer(spec):
        for ref in refs:
            if ref.handle is spec:
                return ref
        name = getattr(spec, "name", None)
        what = f"{name!r} ({type(spec).__name__})" if isinstance(name, str) else type(spec).__name__
        raise ExplanationError(
            f"the layer object {what} is not a layer of {model_name}: it is not a submodule "
            f"of the model (see {names_from})"
        )
    if isinstance(spec, (bool, np.bool_)):
        raise Eli5NNTypeError("layer must be a name, an index or a layer object, not a bool")
    if isinstance(spec, (int, np.integer)):
        pool = list(refs if index_refs is None else index_refs)
        i, n = int(spec), len(pool)
        if not -n <= i < n:
            raise ExplanationError(
                f"layer index {i} is out of range: the model has {n} layers "
                f"(indices 0..{n - 1}, or negative from the end)"
            )
        return pool[i]
    if isinstance(spec, str):
        for ref in refs:
            if ref.name == spec:
                return ref
        close = difflib.get_close_matches(spec, [r.name for r in refs], n=5)
        hint = f" Did you mean one of {close}?" if close else ""
        raise ExplanationError(
            f"no layer named {spec!r} in {model_name}.{hint} Layer names are those of "
            f"{names_from}."
        )
    raise Eli5NNTypeError(
        f"layer must be a name (str), an index (int) or a layer object of the model, "
        f"got {type(spec).__name__}"
    )


# -- copies with randomised layers (eli5_nn.metrics.randomization_check) ----------------
def register_copy(copy: Any) -> Any:
    """Remember ``copy`` as made by ``copy_model`` (the only models randomised)."""
    _COPIES.add(copy)
    return copy


def check_copy(copy: Any, model: Any) -> None:
    """Raise unless ``copy`` is a copy made by ``copy_model`` (never the user's model)."""
    if copy is model or copy not in _COPIES:
        raise ExplanationError(
            "randomize_layer changes only copies made by copy_model(), never the user's model"
        )


# -- layouts ---------------------------------------------------------------------------------
_FIRST = {1: "C", 2: "CT", 3: "CHW", 4: "CDHW"}
_LAST = {1: "C", 2: "TC", 3: "HWC", 4: "DHWC"}
#: prefix tokens (class, distillation, register tokens) a guessed grid may leave over
MAX_PREFIX = 16


def numeric_array(doc: Any, tensor_name: str) -> np.ndarray:
    """``doc`` (numpy, nested lists) as a numeric numpy array; ``Eli5NNTypeError``
    naming what is accepted (numpy or ``tensor_name``) otherwise."""
    try:
        arr = np.asarray(doc)
    except Exception as exc:  # pragma: no cover - numpy raises many kinds
        raise Eli5NNTypeError(
            f"expected a numpy array or {tensor_name} as input, got {type(doc).__name__}"
        ) from exc
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise Eli5NNTypeError(
            f"expected a numeric numpy array or {tensor_name} as input, got dtype {arr.dtype}"
        )
    return arr


def axes_for(rank: int, channel: int | None) -> str | None:
    """The axis letters of a row of ``rank`` axes whose channel axis is ``channel``
    (0 = first, ``rank - 1`` = last, None = no channel axis known)."""
    if channel is None or rank not in _FIRST:
        return None
    if channel == 0:
        return _FIRST[rank]
    if channel == rank - 1:
        return _LAST[rank]
    rest = _FIRST[rank][1:]
    return rest[:channel] + "C" + rest[channel:]


def layout_error(what: str, model_name: str, shape: tuple[int, ...]) -> ExplanationError:
    """The error for a tensor whose layout cannot be stated: it names ``layout=``."""
    return ExplanationError(
        f"the axes of {what} (shape (N, {', '.join(map(str, shape))})) in {model_name} "
        "cannot be stated: which axis holds channels is not known. Pass layout=, e.g. "
        "layout='NCHW', 'NHWC', 'NTC', or for a token sequence over an image "
        "layout={'axes': 'NTC', 'prefix_tokens': 1, 'grid': (rows, cols)}"
    )


def _guessed_grid(tokens: int, image_hw: tuple[int, int]) -> tuple[tuple[int, int], int] | None:
    """The grid with the input's aspect ratio holding the most tokens, the rest
    being prefix tokens (at most :data:`MAX_PREFIX`)."""
    h, w = image_hw
    for prefix in range(0, min(MAX_PREFIX, tokens - 1) + 1):
        n = tokens - prefix
        for cols in range(1, math.isqrt(n * max(w, 1)) + 2):
            if n % cols == 0 and (n // cols) * w == cols * h:
                return (n // cols, cols), prefix
    return None


def token_grid(
    model: Any, tokens: int, image_hw: tuple[int, int]
) -> tuple[int, tuple[int, int]] | None:
    """``(prefix_tokens, grid)`` for a sequence of ``tokens`` tokens in an image model
    whose input is ``image_hw``: from the model where it states it
    (:func:`eli5_nn.adapters.architectures.token_grid`: timm, Hugging Face), else
    the grid with the input's aspect ratio holding the most tokens, the remaining
    ones being prefix tokens. None where nothing fits."""
    stated = architectures.token_grid(model, tokens, image_hw)
    if stated is not None:
        return stated
    guess = _guessed_grid(tokens, image_hw)
    return None if guess is None else (guess[1], guess[0])


def image_layout(axes: str, model: Any, row_shape: tuple[int, ...],
                 image_hw: tuple[int, int] | None) -> Layout | None:
    """The :class:`Layout` of a row of ``row_shape`` with axis letters ``axes``; a
    token axis in an image model (``image_hw`` given) gets its prefix and grid."""
    if "T" not in axes or image_hw is None:
        return Layout(axes)
    found = token_grid(model, row_shape[axes.index("T")], image_hw)
    if found is None:
        return None
    return Layout(axes, prefix_tokens=found[0], grid=found[1])


__all__ = [
    "numeric_array",
    "MAX_PREFIX",
    "axes_for",
    "check_copy",
    "check_scores_shape",
    "find_layer",
    "hold",
    "image_layout",
    "layout_error",
    "model_cache",
    "model_lock",
    "register_copy",
    "token_grid",
]
