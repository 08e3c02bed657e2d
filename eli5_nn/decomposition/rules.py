"""Which rule decomposes which operation: functions and tensor methods by their
target in the ``torch.fx`` graph (modules by type: :mod:`.module_rules`).

A rule receives the :class:`~eli5_nn.decomposition.parts.Context` and the
node's arguments (values that depend on the input are
:class:`~eli5_nn.decomposition.parts.Parts`, the rest plain) and returns the
result in the same form.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F

from .module_rules import Rule, linear_parts, module_rule, pool_parts
from .parts import (
    Context,
    DecompositionError,
    Parts,
    add_bias,
    product,
    relu_like,
    select_max,
    shapley_two,
)
from .token_ids import TokenIds, embed, plain
from .token_ids import plain_value as _plain

__all__ = ["FUNCTION_RULES", "METHOD_RULES", "TokenIds", "module_rule", "plain"]


class MaxResult(NamedTuple):
    """What ``torch.max(x, dim)`` returns, with the values as parts."""

    values: Any
    indices: Any


def _structural(fn: Callable[..., Any]) -> Rule:
    """Operations that only move or combine elements linearly with no offset:
    apply to both parts with the same arguments."""

    def rule(cx: Context, x: Parts, *args: Any, **kwargs: Any) -> Any:
        rel, irr = fn(x.rel, *args, **kwargs), fn(x.irr, *args, **kwargs)
        if isinstance(rel, (tuple, list)):
            return tuple(Parts(r, i) for r, i in zip(rel, irr, strict=True))
        return Parts(rel, irr)

    return rule


def _method(name: str) -> Callable[..., Any]:
    def call(t: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        return getattr(t, name)(*args, **kwargs)

    return call


def _split_const(cx: Context, x: Parts, const: Any) -> Parts:
    return add_bias(cx, x, const)


def _add(cx: Context, a: Any, b: Any, alpha: Any = 1) -> Parts:
    if isinstance(a, Parts) and isinstance(b, Parts):
        if a.shared is not None and b.shared is not None:
            shared = a.shared + alpha * b.shared
            rel = a.rel + alpha * b.rel
            if shared.shape[0] == 1 < rel.shape[0] and shared.shape[1:] == rel.shape[1:]:
                return Parts(rel, shared=shared)
        return Parts(a.rel + alpha * b.rel, a.irr + alpha * b.irr)
    if isinstance(a, Parts):
        return _split_const(cx, a, alpha * _plain(b))
    return _split_const(cx, b.map(lambda t: alpha * t), _plain(a))


def _sub(cx: Context, a: Any, b: Any, alpha: Any = 1) -> Parts:
    if isinstance(b, Parts):
        return _add(cx, a, b.map(lambda t: -t), alpha)
    return _add(cx, a, -_plain(b), alpha)


def _mul(cx: Context, a: Any, b: Any) -> Parts:
    if isinstance(a, Parts) and isinstance(b, Parts):
        return product(a, b, torch.mul)
    p, c = (a, _plain(b)) if isinstance(a, Parts) else (b, _plain(a))
    return p.map(lambda t: t * c)


def _div(cx: Context, a: Any, b: Any, **kwargs: Any) -> Parts:
    if isinstance(b, Parts):
        raise DecompositionError("division by a value that depends on the input")
    return a.map(lambda t: torch.div(t, _plain(b), **kwargs))


def _matmul(cx: Context, a: Any, b: Any) -> Parts:
    if isinstance(a, Parts) and isinstance(b, Parts):
        return product(a, b, torch.matmul)
    if isinstance(a, Parts):
        return a.map(lambda t: torch.matmul(t, _plain(b)))
    return b.map(lambda t: torch.matmul(_plain(a), t))


def _neg(cx: Context, a: Parts) -> Parts:
    return a.map(torch.neg)


def _getitem(cx: Context, obj: Any, idx: Any) -> Any:
    if isinstance(obj, Parts):
        return obj.map(lambda t: t[idx])
    return obj[idx]


def _getattr(cx: Context, obj: Any, name: str) -> Any:
    if isinstance(obj, Parts):
        if name in ("shape", "dtype", "device", "ndim", "is_cuda"):
            return getattr(obj.rel, name)
        if name in ("T", "mT"):
            return obj.map(lambda t: getattr(t, name))
        raise DecompositionError(f"attribute {name!r} of a decomposed tensor")
    return getattr(obj, name)


def _size(cx: Context, x: Parts, *args: Any) -> Any:
    return x.rel.size(*args)


def _dim(cx: Context, x: Parts) -> int:
    return x.rel.dim()


def _linear(cx: Context, x: Parts, weight: torch.Tensor, bias: torch.Tensor | None = None
            ) -> Parts:
    return linear_parts(cx, x, lambda t: F.linear(t, weight), bias)


def _conv_fn(conv: Callable[..., torch.Tensor], nd: int) -> Rule:
    def rule(cx: Context, x: Parts, weight: torch.Tensor, bias: torch.Tensor | None = None,
             *args: Any, **kwargs: Any) -> Parts:
        b = None if bias is None else bias.reshape(-1, *([1] * nd))
        return linear_parts(cx, x, lambda t: conv(t, weight, None, *args, **kwargs), b)

    return rule


def _activation(act: Callable[..., torch.Tensor], kind: str,
                inplace: Callable[..., torch.Tensor] | None = None) -> Rule:
    """``inplace``: the same activation, overwriting its argument."""

    def rule(cx: Context, x: Parts, *args: Any, **kwargs: Any) -> Parts:
        kwargs.pop("inplace", None)
        if args and isinstance(args[-1], bool):
            args = args[:-1]  # a positional inplace flag

        def f(t: torch.Tensor) -> torch.Tensor:
            return act(t, *args, **kwargs)

        def f_(t: torch.Tensor) -> torch.Tensor:
            assert inplace is not None
            return inplace(t, *args, **kwargs)

        if kind == "zero":
            return relu_like(x, f, cx, None if inplace is None else f_)
        return shapley_two(x, f, cx)

    return rule


def _dropout(cx: Context, x: Parts, p: float = 0.5, training: bool = True,
             inplace: bool = False) -> Parts:
    if not training or p == 0:
        return x
    keep = F.dropout(torch.ones_like(x.rel), p, True)
    return x.map(lambda t: t * keep)


def _max(cx: Context, x: Any, *args: Any, **kwargs: Any) -> Any:
    other = args[0] if args else kwargs.get("other")
    if isinstance(other, (Parts, torch.Tensor)):
        a = x if isinstance(x, Parts) else Parts(torch.zeros_like(x), x)
        b = other if isinstance(other, Parts) else Parts(torch.zeros_like(other), other)
        win = a.total() >= b.total()
        return Parts(torch.where(win, a.rel, b.rel), torch.where(win, a.irr, b.irr))
    dim = args[0] if args else kwargs.get("dim")
    keepdim = bool(args[1] if len(args) > 1 else kwargs.get("keepdim", False))
    if dim is None:
        flat = Parts(x.rel.reshape(-1), x.irr.reshape(-1))
        return select_max(flat, (0,), False)[0]
    parts, idx = select_max(x, (int(dim),), keepdim)
    return MaxResult(parts, idx)


def _amax(cx: Context, x: Parts, dim: Any = (), keepdim: bool = False) -> Parts:
    dims = (dim,) if isinstance(dim, int) else tuple(dim) or tuple(range(x.rel.dim()))
    return select_max(x, dims, keepdim)[0]


def _max_pool(fn: Callable[..., Any]) -> Rule:
    def rule(cx: Context, x: Parts, *args: Any, **kwargs: Any) -> Any:
        if kwargs.pop("return_indices", False):
            raise DecompositionError("max pooling with return_indices=True")

        def winners(t: torch.Tensor) -> torch.Tensor:
            return fn(t, *args, return_indices=True, **kwargs)[1]

        return pool_parts(cx, x, winners)

    return rule


def _cat(cx: Context, tensors: Any, dim: int = 0) -> Parts:
    items = list(tensors)
    parts = [t for t in items if isinstance(t, Parts)]
    share = cx.share(torch.cat([p.rel.reshape(p.rel.shape[0], -1) for p in parts], 1),
                     torch.cat([p.irr.reshape(p.irr.shape[0], -1) for p in parts], 1))
    rel, irr = [], []
    for t in items:
        if isinstance(t, Parts):
            rel.append(t.rel)
            irr.append(t.irr)
        else:
            c = _plain(t)
            w = share.reshape(-1, *([1] * (c.dim() - 1))) if share.dim() else share
            rel.append(w * c)
            irr.append((1 - w) * c)
    return Parts(torch.cat(rel, dim), torch.cat(irr, dim))


def _stack(cx: Context, tensors: Any, dim: int = 0) -> Parts:
    items = [t if isinstance(t, Parts) else _plain(t) for t in tensors]
    unsq = [t.map(lambda u: u.unsqueeze(dim)) if isinstance(t, Parts) else t.unsqueeze(dim)
            for t in items]
    return _cat(cx, unsq, dim)


def _embedding_fn(cx: Context, ids: Any, weight: torch.Tensor, *args: Any, **kwargs: Any
                  ) -> Any:
    if not isinstance(ids, TokenIds):
        raise DecompositionError("embedding of a value that depends on the input")
    e = F.embedding(ids.ids, weight, *args, **kwargs)
    return embed(e, ids.mask)


_STRUCTURAL_FUNCTIONS = (
    torch.flatten, torch.reshape, torch.permute, torch.transpose, torch.squeeze,
    torch.unsqueeze, torch.split, torch.chunk, torch.unbind, torch.flip, torch.narrow,
    torch.mean, torch.sum, torch.swapaxes, torch.movedim, torch.t,
    F.avg_pool1d, F.avg_pool2d, F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.pad,
    F.interpolate,
)
_STRUCTURAL_METHODS = (
    "flatten", "view", "reshape", "permute", "transpose", "squeeze", "unsqueeze",
    "contiguous", "t", "expand", "expand_as", "repeat", "flip", "split", "chunk", "unbind",
    "narrow", "mean", "sum", "float", "double", "half", "to", "type_as", "clone", "view_as",
    "reshape_as", "swapaxes", "movedim", "unflatten", "detach",
)

FUNCTION_RULES: dict[Any, Rule] = {
    **{fn: _structural(fn) for fn in _STRUCTURAL_FUNCTIONS},
    operator.add: _add, operator.iadd: _add, torch.add: _add,
    operator.sub: _sub, operator.isub: _sub, torch.sub: _sub,
    operator.mul: _mul, operator.imul: _mul, torch.mul: _mul,
    operator.truediv: _div, operator.itruediv: _div, torch.div: _div,
    operator.matmul: _matmul, torch.matmul: _matmul, torch.bmm: _matmul, torch.mm: _matmul,
    operator.neg: _neg, torch.neg: _neg,
    operator.getitem: _getitem, getattr: _getattr,
    torch.cat: _cat, torch.concat: _cat, torch.stack: _stack,
    F.linear: _linear,
    F.conv1d: _conv_fn(F.conv1d, 1), F.conv2d: _conv_fn(F.conv2d, 2),
    F.relu: _activation(F.relu, "zero", torch.relu_),
    torch.relu: _activation(torch.relu, "zero", torch.relu_),
    F.relu6: _activation(F.relu6, "zero", partial(F.relu6, inplace=True)),
    F.leaky_relu: _activation(F.leaky_relu, "zero", partial(F.leaky_relu, inplace=True)),
    F.elu: _activation(F.elu, "zero", partial(F.elu, inplace=True)),
    F.gelu: _activation(F.gelu, "zero"),
    F.silu: _activation(F.silu, "zero", partial(F.silu, inplace=True)),
    torch.tanh: _activation(torch.tanh, "shapley"), F.tanh: _activation(torch.tanh, "shapley"),
    torch.sigmoid: _activation(torch.sigmoid, "shapley"),
    F.sigmoid: _activation(torch.sigmoid, "shapley"),
    F.dropout: _dropout,
    torch.max: _max, torch.amax: _amax,
    F.max_pool1d: _max_pool(F.max_pool1d), F.max_pool2d: _max_pool(F.max_pool2d),
    F.adaptive_max_pool1d: _max_pool(F.adaptive_max_pool1d),
    F.adaptive_max_pool2d: _max_pool(F.adaptive_max_pool2d),
    F.embedding: _embedding_fn,
}

METHOD_RULES: dict[str, Rule] = {
    **{name: _structural(_method(name)) for name in _STRUCTURAL_METHODS},
    "add": _add, "add_": _add, "sub": _sub, "sub_": _sub, "mul": _mul, "mul_": _mul,
    "div": _div, "div_": _div, "matmul": _matmul, "neg": _neg,
    "relu": _activation(torch.relu, "zero", torch.relu_),
    "relu_": _activation(torch.relu, "zero", torch.relu_),
    "tanh": _activation(torch.tanh, "shapley"), "tanh_": _activation(torch.tanh, "shapley"),
    "sigmoid": _activation(torch.sigmoid, "shapley"),
    "sigmoid_": _activation(torch.sigmoid, "shapley"),
    "max": _max, "amax": _amax, "size": _size, "dim": _dim,
}

