"""Forward hooks on torch modules, for one call only.

Every hook registered here is removed when its ``with`` block ends, also when
the block raises.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import Any

import torch
from torch import nn

from ..errors import ExplanationError
from .base import LayerRef, Replacement


def forward_hook(module: nn.Module, hook: Any, with_kwargs: bool = False) -> Any:
    """``module.register_forward_hook(hook, with_kwargs=...)`` (a removable handle,
    usable in ``with``); a clear error for TorchScript modules, which take no hooks."""
    check_hookable(module)
    return module.register_forward_hook(hook, with_kwargs=with_kwargs)


def check_hookable(module: nn.Module) -> None:
    """Raise for a TorchScript module, which takes no hooks, saying what to do."""
    if isinstance(module, torch.jit.ScriptModule):
        raise ExplanationError(
            "this is a TorchScript model, whose layers cannot be hooked: methods that read a "
            "layer (CAM methods, text models' embedding, attention, FullGrad) cannot apply. "
            "Use an input-gradient method (method='gradient', 'gradient-x-input', "
            "'smoothgrad', 'integrated-gradients'), or save the model with torch.export "
            "(.pt2) or as a plain nn.Module."
        )


@contextmanager
def hooks(refs: Sequence[LayerRef], make_hook: Callable[[LayerRef], Any]) -> Iterator[None]:
    """``make_hook(ref)`` registered as forward hook of every layer in ``refs``, for
    the ``with`` block (removed also on error, also when registration fails halfway)."""
    with ExitStack() as stack:
        for ref in refs:
            module = ref.handle
            assert isinstance(module, nn.Module)
            stack.enter_context(forward_hook(module, make_hook(ref)))
        yield


def first_tensor(out: Any) -> torch.Tensor | None:
    """A module's output tensor: itself, or the first item of a tuple/list."""
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    return None


def replace_first(out: Any, new: torch.Tensor) -> Any:
    """``out`` with its output tensor (see :func:`first_tensor`) replaced by ``new``."""
    if isinstance(out, torch.Tensor):
        return new
    return type(out)([new, *out[1:]])


def replacing(
    replace: Replacement | None, value: torch.Tensor | None = None
) -> AbstractContextManager[Any]:
    """A context that makes ``replace``'s layer output ``value`` (default: its tensor)."""
    if replace is None:
        return ExitStack()
    ref, t = replace
    new = t if value is None else value
    module = ref.handle
    assert isinstance(module, nn.Module)

    def mismatch(shape: tuple[int, ...] | None) -> ExplanationError:
        return ExplanationError(
            f"layer {ref.name!r} outputs shape {shape}; its replacement has shape "
            f"{tuple(new.shape)}"
        )

    if type(module).forward is nn.Embedding.forward:
        return _skipping_lookup(module, new, mismatch)

    def hook(_m: nn.Module, _i: Any, out: Any) -> Any:
        old = first_tensor(out)
        if old is None or tuple(old.shape) != tuple(new.shape):
            raise mismatch(None if old is None else tuple(old.shape))
        return replace_first(out, new)

    return forward_hook(module, hook)


@contextmanager
def _skipping_lookup(module: nn.Module, new: torch.Tensor,
                     mismatch: Callable[[tuple[int, ...]], ExplanationError]) -> Iterator[None]:
    """An ``nn.Embedding`` whose output is replaced does not look its ids up: its
    ``forward`` returns the replacement for the ``with`` block (the module's hooks
    still run), and the class's own ``forward`` is back afterwards."""
    dim = int(getattr(module, "embedding_dim", -1))

    def forward(ids: torch.Tensor) -> torch.Tensor:
        shape = (*ids.shape, dim)
        if shape != tuple(new.shape):
            raise mismatch(shape)
        return new

    own = module.__dict__.get("forward")
    module.forward = forward
    try:
        yield
    finally:
        if own is None:
            del module.forward
        else:
            module.forward = own


__all__ = ["check_hookable", "first_tensor", "forward_hook", "hooks", "replace_first",
           "replacing"]
