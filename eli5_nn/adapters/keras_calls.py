"""Reaching Keras layer outputs: each layer's ``call`` wrapped for one call only.

The wrapper hands the layer's output to a callback and passes on what the
callback returns; it acts only for the thread that installed it, and every
wrapper is removed on exit, also on error. This works alike for Sequential,
Functional and subclassed models.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import keras
from keras import ops as K

from ..errors import ExplanationError
from .base import LayerRef, Tensor

#: ``on_output(position, call_no, tensor) -> tensor``: what flows on
OnOutput = Callable[[int, int, Tensor], Tensor]


@dataclass(frozen=True, eq=False)
class PreActivation:
    """The pre-activation output of a Dense/Conv layer with a fused activation.

    FullGrad needs the gradient where the bias is added, before the activation.
    """

    layer: Any


def layer_of(ref: LayerRef) -> Any:
    """The Keras layer of ``ref`` (also for a :class:`PreActivation` handle)."""
    h = ref.handle
    return h.layer if isinstance(h, PreActivation) else h


@contextmanager
def swapped_call(layer: Any, wrapped: Callable[..., Any]) -> Iterator[None]:
    """``layer.call`` is ``wrapped`` for the ``with`` block, restored on exit (also on
    error): the instance attribute is put back, or removed if there was none."""
    had_own = "call" in layer.__dict__
    original = layer.call
    object.__setattr__(layer, "call", wrapped)
    try:
        yield
    finally:
        if had_own:
            object.__setattr__(layer, "call", original)
        else:
            object.__delattr__(layer, "call")


def _split(out: Any) -> tuple[Any, Callable[[Any], Any]] | None:
    """The first tensor of a layer output and how to put a replacement back."""
    if isinstance(out, (list, tuple)):
        if not out:
            return None
        first = out[0]
        return first, lambda new: type(out)([new, *out[1:]])
    if isinstance(out, dict):
        return None
    return out, lambda new: new


@contextmanager
def intercept(watch: Sequence[tuple[Any, bool]], on_output: OnOutput) -> Iterator[None]:
    """Wrap the ``call`` of each layer in ``watch`` (``(layer, pre_activation)``).

    ``on_output(position, call_no, tensor)`` receives each output (the
    pre-activation one where asked) and returns what flows on. The wrappers
    act only for this thread and are removed on exit, also on error.
    """
    owner = threading.get_ident()
    counters = [0] * len(watch)
    with ExitStack() as stack:
        for pos, (layer, pre) in enumerate(watch):
            stack.enter_context(_wrap(layer, pre, pos, owner, counters, on_output))
        yield


@contextmanager
def _wrap(
    layer: Any, pre: bool, pos: int, owner: int, counters: list[int], on_output: OnOutput
) -> Iterator[None]:
    original = layer.call
    activation = getattr(layer, "activation", None) if pre else None
    if pre and activation is None:
        pre = False

    def identity(t: Any) -> Any:
        return t if threading.get_ident() == owner else activation(t)  # type: ignore[misc]

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        out = original(*args, **kwargs)
        if threading.get_ident() != owner:
            return out
        parts = _split(out)
        if parts is None or not K.is_tensor(parts[0]):
            raise ExplanationError(
                f"layer {layer.name!r} returns {type(out).__name__}, not a tensor; "
                "choose another layer"
            )
        n = counters[pos]
        counters[pos] += 1
        new = on_output(pos, n, parts[0])
        if pre:
            new = activation(new)  # type: ignore[misc]
        return parts[1](new)

    with swapped_call(layer, wrapped):
        if pre:
            object.__setattr__(layer, "activation", identity)
        try:
            yield
        finally:
            if pre:
                object.__setattr__(layer, "activation", activation)


@contextmanager
def substituted(layer: Any, value: Any, check: Callable[[Any], None]) -> Iterator[None]:
    """While active, ``layer`` (called by this thread) returns ``value`` without
    running: ``check(inputs)`` sees the call's first input and raises where
    ``value`` does not fit it. For a layer with one tensor output (an embedding
    lookup) whose output is replaced anyway."""
    owner = threading.get_ident()
    original = layer.call

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if threading.get_ident() != owner:
            return original(*args, **kwargs)
        check(args[0] if args else next(iter(kwargs.values())))
        return value

    with swapped_call(layer, wrapped):
        yield


@contextmanager
def reading_attention(
    layer: Any, ref: LayerRef, ask: bool, found: list[tuple[LayerRef, Tensor]]
) -> Iterator[None]:
    """While active, calls of ``layer`` (by this thread) append their attention
    weights to ``found``: asked for with ``return_attention_scores=True`` where
    ``ask``, else the last element of a tuple output."""
    owner = threading.get_ident()
    original = layer.call

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if threading.get_ident() != owner:
            return original(*args, **kwargs)
        if ask:
            out, weights = original(*args, **{**kwargs, "return_attention_scores": True})
            found.append((ref, weights))
            return out
        out = original(*args, **kwargs)
        if isinstance(out, (tuple, list)) and len(out) >= 2 and K.is_tensor(out[-1]):
            found.append((ref, out[-1]))
        return out

    with swapped_call(layer, wrapped):
        yield


def attention_calls(refs: Sequence[LayerRef], call: Callable[[], Any]
                    ) -> list[tuple[LayerRef, Tensor]]:
    """The attention weights of every attention layer call in ``call()``: Keras
    ``Attention``/``AdditiveAttention``/``MultiHeadAttention`` are called with
    ``return_attention_scores=True``; another layer whose class name contains
    "Attention" and that returns a tuple gives its last element."""
    asked_types = tuple(getattr(keras.layers, n) for n in (
        "Attention", "AdditiveAttention", "MultiHeadAttention"))
    found: list[tuple[LayerRef, Tensor]] = []
    with ExitStack() as stack:
        for ref in refs:
            layer = ref.handle
            if isinstance(layer, keras.Model):
                continue
            asked = isinstance(layer, asked_types)
            if asked or "attention" in type(layer).__name__.lower():
                stack.enter_context(reading_attention(layer, ref, asked, found))
        call()
    return found


def unreachable(name: str, model_name: str) -> str:
    """Why the output of layer ``name`` cannot be tapped, and what to do."""
    return (
        f"the output of layer {name!r} cannot be reached in {model_name}'s "
        "forward pass (the model does not call it through Layer.__call__, e.g. a "
        "subclassed model that uses its weights directly or never calls it). CAM methods "
        "need a reachable layer: pass another layer=, or build the model with the "
        "Sequential/functional API. Gradient methods (method='gradient', "
        "'gradient-x-input', 'smoothgrad', 'integrated-gradients') work on any model."
    )


__all__ = ["OnOutput", "PreActivation", "attention_calls", "intercept", "layer_of",
           "reading_attention", "substituted", "swapped_call", "unreachable"]
