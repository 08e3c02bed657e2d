"""Layouts of torch tensors, read from what produced them.

One traced forward pass (hooks on every module, once per model and input
signature, cached weakly on the model) records, for every module call, its
output's row shape and the last *layout-producing* leaf module that ran before
the call returned: inside the module where it has one, else what produced its
input. Leaves that do not change what the axes mean (activations, Dropout,
Identity, Flatten and other parameter-free modules) are transparent.

A producer is channels first (convolutions, batch/instance/group norm,
pooling, padding, upsampling) or channels last (Linear, LayerNorm, RMSNorm,
MultiheadAttention, Embedding, RNNs, Hugging Face's ``Conv1D``), with its
channel count. The channel axis of a module's output is the producer's side
where the count sits there, else the one axis with that count (a module that
permutes back after its last Linear, as ConvNeXt blocks do); otherwise the
layout cannot be stated.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import torch
from torch import nn

from ..layout import Layout
from .base import LayerRef
from .common import axes_for, image_layout, model_lock
from .torch_hooks import first_tensor, forward_hook
from .torch_structure import embedding_info


def _classes(module: Any, names: Sequence[str]) -> tuple[type, ...]:
    return tuple(c for c in (getattr(module, n, None) for n in names) if isinstance(c, type))


_M = nn.modules
CHANNELS_FIRST = (
    _classes(_M.conv, ["_ConvNd"]) + _classes(_M.batchnorm, ["_BatchNorm"])
    + _classes(_M.instancenorm, ["_InstanceNorm"])
    + _classes(nn, ["GroupNorm", "LocalResponseNorm", "Upsample", "PixelShuffle",
                    "PixelUnshuffle", "ChannelShuffle"])
    + _classes(_M.pooling, ["_MaxPoolNd", "_AvgPoolNd", "_AdaptiveAvgPoolNd",
                            "_AdaptiveMaxPoolNd", "_LPPoolNd", "_MaxUnpoolNd"])
    + _classes(_M.padding, ["_ConstantPadNd", "_ReflectionPadNd", "_ReplicationPadNd",
                            "_CircularPadNd"])
)
CHANNELS_LAST = _classes(nn, [
    "Linear", "Bilinear", "LayerNorm", "RMSNorm", "MultiheadAttention", "Embedding",
    "EmbeddingBag", "RNNBase", "RNNCellBase",
])

#: (side, channel count or None): side 0 = channels first, -1 = channels last,
#: None = wherever the one axis of that count is
Producer = tuple[int | None, int | None]


def _first_size(m: nn.Module) -> int | None:
    for attr in ("out_channels", "num_features", "num_channels"):
        value = getattr(m, attr, None)
        if isinstance(value, int):
            return value
    return None


def _last_size(m: nn.Module) -> int | None:
    if isinstance(m, nn.RNNBase):
        return (m.proj_size or m.hidden_size) * (2 if m.bidirectional else 1)
    shape = getattr(m, "normalized_shape", None)
    if isinstance(shape, (tuple, list)) and shape:
        return int(shape[-1])
    for attr in ("out_features", "embed_dim", "embedding_dim", "hidden_size", "nf"):
        value = getattr(m, attr, None)
        if isinstance(value, int):
            return value
    return None


def producer_of(m: nn.Module) -> Producer | None:
    """What a leaf module says about the layout of its output; None = transparent.
    A ``data_format`` attribute (Hugging Face's channels-first LayerNorm) is obeyed."""
    fmt = getattr(m, "data_format", None)
    if fmt in ("channels_first", "channels_last") and isinstance(m, CHANNELS_FIRST + CHANNELS_LAST):
        return (0, _first_size(m) or _last_size(m)) if fmt == "channels_first" \
            else (-1, _last_size(m))
    if isinstance(m, CHANNELS_FIRST):
        return 0, _first_size(m)
    if isinstance(m, CHANNELS_LAST) or (type(m).__name__ == "Conv1D" and hasattr(m, "nf")):
        return -1, _last_size(m)
    return _by_weight(m)


def _by_weight(m: nn.Module) -> Producer | None:
    """A module of unknown type with a ``weight`` (e.g. unflattened from
    ``torch.export``): an embedding, a convolution (weight of rank >= 3, channels
    first), a linear map (rank 2, channels last) or a per-channel scale (rank 1,
    the axis of that size); None (transparent) without one."""
    weight = getattr(m, "weight", None)
    if not isinstance(weight, torch.Tensor) or weight.ndim == 0:
        return None
    if embedding_info(m) is not None:
        return -1, int(weight.shape[1])
    if weight.ndim >= 3:
        return 0, int(weight.shape[0])
    return (-1 if weight.ndim == 2 else None), int(weight.shape[0])


def axes_from(producer: Producer | None, row_shape: tuple[int, ...]) -> str | None:
    """The axis letters of a row of ``row_shape`` produced by ``producer``, or None."""
    rank = len(row_shape)
    if rank == 1:
        return "C"
    if producer is None or rank == 0:
        return None
    side, size = producer
    preferred = None if side is None else side % rank
    if preferred is not None and (size is None or row_shape[preferred] == size):
        return axes_for(rank, preferred)
    hits = [i for i, s in enumerate(row_shape) if s == size]
    return axes_for(rank, hits[0]) if len(hits) == 1 else None


@dataclass(frozen=True)
class Call:
    """One module call of the traced forward pass."""

    index: int  # the position of the module in the adapter's layer listing
    row_shape: tuple[int, ...]
    axes: str | None


@dataclass(frozen=True)
class Trace:
    """What one forward pass on a row of an input says about layouts."""

    calls: tuple[Call, ...]  # in the order the calls end
    input_axes: str | None  # what the input's row reads as (None: token ids)
    image_hw: tuple[int, int] | None  # the input image's size, for token grids

    @cached_property
    def input_layout(self) -> Layout:
        """``input_axes`` as a :class:`Layout` (made once per trace)."""
        if self.input_axes is None:
            raise ValueError("token ids have no input layout")
        return Layout(self.input_axes)


def _input_axes(x: torch.Tensor, first: Producer | None) -> str | None:
    """PyTorch convention: images channels first; a float sequence as its first
    layer reads it; integer input is token ids (no channel axis)."""
    rank = x.ndim - 1
    if not torch.is_floating_point(x):
        return None
    if rank == 2 and first is not None:
        return axes_for(2, 0 if first[0] == 0 else 1)
    return axes_for(rank, 0) if rank >= 1 else None


class _Tracer:
    """The hooks of one traced forward pass and what they saw."""

    def __init__(self, x1: torch.Tensor) -> None:
        self.producer: Producer | None = None
        self.first: Producer | None = None
        if torch.is_floating_point(x1) and x1.ndim >= 3:
            self.producer = (0, int(x1.shape[1]))
        self.calls: list[Call] = []
        #: axes of the tensors seen so far, by id (weakly: ids are reused once freed)
        self.seen: dict[int, tuple[weakref.ref[torch.Tensor], str]] = {}
        axes = _input_axes(x1, None)
        if axes is not None and x1.ndim != 3:
            self._remember(x1, axes)

    def _remember(self, t: torch.Tensor, axes: str) -> None:
        self.seen[id(t)] = (weakref.ref(t), axes)

    def _axes_of(self, t: torch.Tensor | None) -> str | None:
        entry = None if t is None else self.seen.get(id(t))
        return entry[1] if entry is not None and entry[0]() is t else None

    def axes(self, inp: torch.Tensor | None, out: torch.Tensor) -> str | None:
        """The output's axes: as the input's where the module keeps its shape and
        the producer's channel count sits on the input's channel axis (residual
        blocks, element-wise layers), else from the producer."""
        row = tuple(int(s) for s in out.shape[1:])
        in_axes = self._axes_of(inp)
        if in_axes is not None and inp is not None and tuple(inp.shape[1:]) == row \
                and len(in_axes) == len(row):
            size = None if self.producer is None else self.producer[1]
            ch = in_axes.find("C")
            if ch >= 0 and (size is None or row[ch] == size):
                return in_axes
        return axes_from(self.producer, row)

    def hook(self, ref: LayerRef) -> Any:
        module = ref.handle
        leaf = not any(True for _ in module.children())  # type: ignore[attr-defined]
        produced = producer_of(module) if leaf else None  # type: ignore[arg-type]

        def hook(_m: nn.Module, args: Any, kwargs: Any, out: Any) -> None:
            t = first_tensor(out)
            if t is None or t.ndim < 2:
                return
            if produced is not None:
                side, size = produced
                self.producer = (side, size if size is not None else int(t.shape[side or 1]))
                self.first = self.first or self.producer
            inp = next((a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)),
                       None)
            axes = self.axes(inp, t)
            if axes is not None:
                self._remember(t, axes)
            self.calls.append(Call(ref.index, tuple(int(s) for s in t.shape[1:]), axes))

        return hook


def trace(model: nn.Module, refs: Sequence[LayerRef], x: Any, run: Any) -> Trace:
    """Run ``run(x1)`` on the first row ``x1`` of ``x`` with a hook on every layer,
    recording each call's row shape and layout."""
    x1 = x[:1]
    tensor = getattr(x1, "ids", x1)
    tracer = _Tracer(tensor)
    hookable = not isinstance(model, torch.jit.ScriptModule)  # else: the input's layout only
    with model_lock(model), ExitStack() as stack, torch.no_grad():
        for ref in refs if hookable else ():
            module = ref.handle
            assert isinstance(module, nn.Module)
            stack.enter_context(forward_hook(module, tracer.hook(ref), with_kwargs=True))
        if hookable:
            run(x1)
    input_axes = _input_axes(tensor, tracer.first)
    image_hw = None
    if input_axes in ("CHW", "HWC"):
        row = tuple(int(s) for s in tensor.shape[1:])
        image_hw = (row[1], row[2]) if input_axes == "CHW" else (row[0], row[1])
    return Trace(calls=tuple(tracer.calls), input_axes=input_axes, image_hw=image_hw)


def call_layout(model: nn.Module, tr: Trace, call: Call) -> Layout | None:
    """The :class:`Layout` of one call's output, token grids included; None where
    it cannot be stated."""
    if call.axes is None:
        return None
    return image_layout(call.axes, model, call.row_shape, tr.image_hw)


__all__ = ["CHANNELS_FIRST", "CHANNELS_LAST", "Call", "Trace", "axes_from", "call_layout",
           "producer_of", "trace"]
