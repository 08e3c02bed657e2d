"""The automatic CAM layer of a PyTorch model, from its traced forward pass.

DESIGN.md §1 (``layer``): the map that enters the head's first parameter-free
reduction (global or k×k pooling, flatten, a mean or max over positions); where
the head reads one token (a class token), the input of the last block's
attention.

One forward pass runs under a :class:`torch.overrides.TorchFunctionMode` that
records every torch function call (its tensor inputs, its outputs, whether a
parameter takes part), while forward hooks record which module returned which
tensor. From the model's output the dataflow is walked back: through the head's
parameterised and element-wise operations to its last reduction, then through
the chain of reductions and pure reshapes that precede it; the tensor where the
chain starts is the map, named by the outermost module that returned it.
The caller caches the answer per model and input signature.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves

from . import architectures

#: tensor methods that select along an axis (a class token: ``x[:, 0]``)
_SELECT = {torch.Tensor.__getitem__, torch.select, torch.Tensor.select}


@dataclass
class _Op:
    name: str
    inputs: list[torch.Tensor]
    outputs_ids: set[int]
    has_param: bool
    select: bool


def _row(t: torch.Tensor) -> int:
    return math.prod(t.shape[1:]) if t.ndim else 1


class _Recorder(TorchFunctionMode):
    """Records torch function calls and which call produced each tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.produced: dict[int, tuple[weakref.ref[torch.Tensor], _Op]] = {}

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None
                           ) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        leaves = tree_leaves((args, kwargs))
        tensors = [a for a in leaves if isinstance(a, torch.Tensor)]
        outs = [o for o in tree_leaves(out) if isinstance(o, torch.Tensor)]
        if not outs or not tensors:
            return out
        in_ids = {id(t) for t in tensors}
        op = _Op(
            name=getattr(func, "__name__", str(func)),
            inputs=[t for t in tensors if not isinstance(t, nn.Parameter)],
            outputs_ids={id(o) for o in outs},
            has_param=any(isinstance(t, nn.Parameter) for t in tensors),
            select=func in _SELECT,
        )
        for o in outs:
            if id(o) not in in_ids:  # an op returning its input (eval Dropout) is no producer
                self.produced[id(o)] = (weakref.ref(o), op)
        return out


def _producer(rec: _Recorder, t: torch.Tensor) -> _Op | None:
    entry = rec.produced.get(id(t))
    return entry[1] if entry is not None and entry[0]() is t else None


def _main_input(op: _Op, batch: int) -> torch.Tensor | None:
    """The input a head's chain runs through: the largest of the op's non-parameter
    tensor inputs that keep the batch axis."""
    cands = [t for t in op.inputs if t.ndim >= 1 and t.shape[0] == batch]
    return max(cands, key=_row) if cands else None


def _kind(op: _Op, t_in: torch.Tensor, t_out: torch.Tensor) -> str:
    """``"reduce"`` (fewer values per row, or flattened map axes), ``"reshape"``
    (same values, other shape), ``"select"`` (one token of a sequence) or ``"other"``."""
    single = len(op.inputs) == 1 and not op.has_param
    if not single or t_in.ndim < 2:
        return "other"
    if op.select and t_in.ndim >= 3 and t_out.ndim == t_in.ndim - 1:
        return "select"
    if _row(t_out) < _row(t_in) and t_in.ndim >= 3:
        return "reduce"
    if _row(t_out) == _row(t_in) and t_out.shape != t_in.shape:
        return "reduce" if t_in.ndim >= 3 and t_out.ndim == 2 else "reshape"
    return "other"


def _walk(rec: _Recorder, out: torch.Tensor) -> tuple[torch.Tensor, str, str] | None:
    """(the map, the reduction's name, "pool" or "token") from the model's output back."""
    batch = out.shape[0] if out.ndim else 1
    t, reduction, kind = out, "", ""
    for _ in range(10_000):
        op = _producer(rec, t)
        prev = _main_input(op, batch) if op is not None else None
        if op is None or prev is None:
            break
        k = _kind(op, prev, t)
        if reduction and k not in ("reduce", "reshape"):
            return t, reduction, kind
        if not reduction and k in ("reduce", "select"):
            reduction, kind = op.name, "token" if k == "select" else "pool"
        elif reduction and k == "reduce":
            reduction = op.name  # an earlier reduction of the same chain (pool before flatten)
        t = prev
    return (t, reduction, kind) if reduction and t is not out else None


def _scores(out: Any) -> torch.Tensor | None:
    if isinstance(out, dict) and "logits" in out:
        out = out["logits"]
    elif isinstance(getattr(out, "logits", None), torch.Tensor):
        out = out.logits
    leaves = [o for o in tree_leaves(out) if isinstance(o, torch.Tensor)]
    return leaves[0] if leaves else None


def _module_of(rec: _Recorder, named: dict[int, tuple[weakref.ref[torch.Tensor], str]],
               t: torch.Tensor) -> str | None:
    """The outermost module that returned ``t``, or that returned the tensor ``t``
    was copied from by shape-keeping parameter-free steps (contiguous, clone...)."""
    batch = t.shape[0] if t.ndim else 1
    for _ in range(100):
        entry = named.get(id(t))
        if entry is not None and entry[0]() is t:
            return entry[1]
        op = _producer(rec, t)
        prev = _main_input(op, batch) if op is not None else None
        if op is None or prev is None or op.has_param or len(op.inputs) != 1 \
                or prev.shape != t.shape:
            return None
        t = prev
    return None


def automatic_layer(model: nn.Module, run: Callable[[], Any]) -> tuple[str, str] | None:
    """``(name, why)`` of the automatic CAM layer, from one forward pass ``run()``
    (which the caller runs under ``torch.no_grad()`` on one row); None where the
    head shows no reduction of a map (the caller keeps its fallback rule).

    Class-token heads (:func:`~eli5_nn.adapters.architectures.reads_class_token`, or a
    traced ``x[:, 0]`` in the head) give the input of the last block's attention
    (:func:`~eli5_nn.adapters.architectures.attention_input_layer`); otherwise the
    outermost module whose output enters the head's first parameter-free reduction.
    """
    rec = _Recorder()
    named: dict[int, tuple[weakref.ref[torch.Tensor], str]] = {}

    def make_hook(name: str) -> Any:
        def hook(_m: nn.Module, _i: Any, out: Any) -> None:
            t = out if isinstance(out, torch.Tensor) else None
            if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
                t = out[0]
            if t is not None:
                named[id(t)] = (weakref.ref(t), name)

        return hook

    outputs: list[Any] = []

    def traced() -> Any:
        with rec:
            outputs.append(run())
        return outputs[-1]

    attention_input = None
    handles = [m.register_forward_hook(make_hook(n)) for n, m in model.named_modules() if n]
    try:
        token_head = architectures.reads_class_token(model)
        if token_head is not False:
            attention_input = architectures.attention_input_layer(model, traced)
        if not outputs:  # no attention module: nothing ran yet
            traced()
    finally:
        for h in handles:
            h.remove()
    return _answer(rec, named, _scores(outputs[-1]), token_head, attention_input)


def _answer(rec: _Recorder, named: dict[int, tuple[weakref.ref[torch.Tensor], str]],
            scores: torch.Tensor | None, token_head: bool | None, attention_input: str | None
            ) -> tuple[str, str] | None:
    found = _walk(rec, scores) if scores is not None else None
    if attention_input is not None and (token_head or (found is not None and found[2] == "token")):
        return attention_input, ("the input of the last block's attention: the head reads "
                                 "one token (a class token)")
    if found is None:
        return None
    name = _module_of(rec, named, found[0])
    if name is None:
        return None
    return name, f"the map entering the head's first parameter-free reduction ({found[1]})"
