"""Contextual decomposition by following the model's forward computation.

The model is traced with ``torch.fx`` (submodules of ``torch.nn`` stay whole,
user modules are traced through), then the graph is run once with every
value that depends on the input carried as two parts. Nodes that do not
depend on the input run as they are. Every other node needs a rule
(:mod:`eli5_nn.decomposition.rules`); one without a rule raises
:class:`~eli5_nn.decomposition.parts.DecompositionError` naming it. Nothing is
skipped.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np
import torch
import torch.fx as fx
from torch import nn

from .parts import Context, DecompositionError, Parts
from .rules import FUNCTION_RULES, METHOD_RULES, TokenIds, module_rule, plain

_INPLACE_FUNCTIONS = {operator.iadd, operator.isub, operator.imul, operator.itruediv}


def _trace(model: nn.Module) -> fx.GraphModule:
    try:
        return fx.symbolic_trace(model)
    except Exception as err:  # fx raises many kinds of errors; all mean the same here
        raise DecompositionError(
            f"contextual decomposition follows the forward computation traced with torch.fx, "
            f"and {type(model).__name__} could not be traced ({type(err).__name__}: {err}). "
            "Models whose control flow depends on the input values cannot be decomposed."
        ) from err


def _has_parts(value: Any) -> bool:
    if isinstance(value, Parts):
        return True
    if isinstance(value, (tuple, list)):
        return any(_has_parts(v) for v in value)
    if isinstance(value, dict):
        return any(_has_parts(v) for v in value.values())
    return False


def _op_name(node: fx.Node, gm: fx.GraphModule) -> str:
    if node.op == "call_module":
        mod = gm.get_submodule(str(node.target))
        return f"module {node.target!r} ({type(mod).__module__}.{type(mod).__name__})"
    if node.op == "call_method":
        return f"tensor method .{node.target}()"
    target = node.target
    name = getattr(target, "__qualname__", None) or getattr(target, "__name__", str(target))
    module = getattr(target, "__module__", None) or "builtins"
    return f"function {module}.{name}"


def _is_inplace(node: fx.Node, mod: nn.Module | None) -> bool:
    if node.target in _INPLACE_FUNCTIONS or node.kwargs.get("inplace") is True:
        return True
    if node.op == "call_method" and str(node.target).endswith("_") \
            and not str(node.target).startswith("_"):
        return True
    return mod is not None and getattr(mod, "inplace", False) is True


def _as_tensor(value: Any, like: torch.Tensor | None, name: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        t = value
    elif isinstance(value, np.ndarray) or isinstance(value, (list, tuple)):
        t = torch.as_tensor(np.asarray(value))
    else:
        raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(value).__name__}")
    if like is not None:
        t = t.to(like.device)
    return t


def _model_device(model: nn.Module, x: torch.Tensor) -> torch.device:
    for p in model.parameters():
        return p.device
    for b in model.buffers():
        return b.device
    return x.device


def _all_finite(t: torch.Tensor) -> bool:
    """No NaN or infinity in ``t``: a finite sum says so in one pass without a
    temporary (NaN and infinities carry into the sum); only a sum that overflows
    or cancels to NaN needs the element-wise check."""
    return bool(torch.isfinite(t.sum())) or bool(torch.isfinite(t).all())


def _prepare(model: nn.Module, x: Any, relevant_mask: Any
             ) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"contextual decomposition needs a torch.nn.Module, got {type(model).__name__}"
        )
    xt = _as_tensor(x, None, "x")
    xt = xt.to(_model_device(model, xt))
    mask = _as_tensor(relevant_mask, xt, "relevant_mask")
    if mask.dtype == torch.bool or not mask.is_floating_point():
        mask = mask.to(torch.float32)
    if xt.dim() < 1 or mask.dim() != xt.dim():
        raise ValueError(
            "relevant_mask must have the input's shape (batch axis first): input "
            f"{tuple(xt.shape)}, mask {tuple(mask.shape)}"
        )
    if mask.shape[1:] != xt.shape[1:]:
        raise ValueError(
            f"relevant_mask must have the input's shape: input {tuple(xt.shape)}, mask "
            f"{tuple(mask.shape)} (for token ids: one value per token)"
        )
    n = max(xt.shape[0], mask.shape[0])
    for what, t in (("input", xt), ("relevant_mask", mask)):
        if t.shape[0] not in (1, n):
            raise ValueError(
                f"batch sizes differ: input {xt.shape[0]}, relevant_mask {mask.shape[0]}; "
                f"the {what} must have batch size {n} or 1 (broadcast)"
            )
    if xt.is_floating_point():
        if not _all_finite(xt):
            raise ValueError("the input contains NaN or infinite values")
        mask = mask.to(xt.dtype)
    if not _all_finite(mask):
        raise ValueError("relevant_mask contains NaN or infinite values")
    return xt.expand(n, *xt.shape[1:]), mask.expand(n, *mask.shape[1:])


def contextual_decomposition(
    model: nn.Module, x: Any, relevant_mask: Any, *, extra_inputs: tuple[Any, ...] = ()
) -> tuple[torch.Tensor, torch.Tensor]:
    """Split the model's output into the part due to a region of the input and the rest.

    Contextual decomposition (Murdoch et al., ICLR 2018; Singh et al., ICLR
    2019) carries every activation as ``relevant + irrelevant``: linear layers
    act on both parts and share their bias in proportion to the parts'
    magnitudes; ReLU-like activations give ``f(rel)`` to the relevant part;
    tanh/sigmoid average each part's marginal effect over both orders; max
    pooling takes both parts at the winning positions; LSTM/GRU gates are
    decomposed as in Murdoch et al.; embeddings are split by position. At
    every step ``relevant + irrelevant`` equals the activation, so
    ``relevant + irrelevant == model(x)``.

    Parameters
    ----------
    model : torch.nn.Module
        The network; followed through its ``torch.fx`` trace, so residual
        additions, concatenations and functional calls are decomposed too.
        Its training/eval mode is used as it is (Dropout in training mode
        applies one mask to both parts; BatchNorm in training mode uses the
        batch statistics, without updating the running ones).
    x : torch.Tensor or numpy.ndarray
        The input, batch axis first: floating-point features, or integer token
        ids (N, T) for a model that starts with an embedding.
    relevant_mask : tensor or array
        The region, with the input's shape (for token ids one value per
        token); 1 = relevant, 0 = not (fractions scale the split). ``x`` or
        the mask may have batch size 1 and is then broadcast, so one input
        with M masks is decomposed in one pass.
    extra_inputs : tuple
        Further positional inputs of the model (e.g. lengths), used as they are.

    Returns
    -------
    (relevant, irrelevant) : tuple of torch.Tensor
        Each shaped like the model's output; differentiable in the weights.

    Raises
    ------
    DecompositionError
        For an operation with no decomposition rule (the message names it) or
        a model that cannot be traced.
    """
    xt, mask = _prepare(model, x, relevant_mask)
    gm = _trace(model)
    n = xt.shape[0]
    share = mask.reshape(n, -1).to(torch.float32).mean(1)
    cx = Context(batch=n, mask_share=share.to(xt.dtype) if xt.is_floating_point() else share)
    if xt.is_floating_point() and n > 1 and xt.stride(0) == 0 and not torch.is_grad_enabled():
        # one input, many masks: the activations are the same in every row, so
        # the parts carry them once (Parts.shared) instead of an irrelevant part
        source: Any = Parts(xt * mask, shared=xt[:1], fresh=True)
    elif xt.is_floating_point():
        rel = xt * mask
        source = Parts(rel, xt - rel, fresh=True)
    else:
        source = TokenIds(xt, mask)
    extras = [_as_tensor(e, xt, "extra_inputs") if isinstance(e, np.ndarray) else e
              for e in extra_inputs]
    env: dict[fx.Node, Any] = {}
    stored: set[int] = set()  # every Parts object held in env, by id
    placeholders = 0
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            if placeholders == 0:
                env[node] = source
            elif placeholders - 1 < len(extras):
                env[node] = extras[placeholders - 1]
            elif node.args:
                env[node] = node.args[0]
            else:
                raise ValueError(
                    f"the model takes input {node.target!r}; pass it in extra_inputs"
                )
            placeholders += 1
            continue
        if node.op == "output":
            return _result(env, node)
        args = fx.node.map_arg(node.args, lambda a: env[a])
        kwargs = fx.node.map_arg(node.kwargs, lambda a: env[a])
        env[node] = _run_node(gm, node, args, kwargs, cx, env)
        _mark_stored(env[node], stored)
    raise DecompositionError("the traced graph has no output")


def _run_node(gm: fx.GraphModule, node: fx.Node, args: Any, kwargs: Any, cx: Context,
              env: dict[fx.Node, Any]) -> Any:
    if node.op == "get_attr":
        obj: Any = gm
        for part in str(node.target).split("."):
            obj = getattr(obj, part)
        return obj
    mod = gm.get_submodule(str(node.target)) if node.op == "call_module" else None
    involves_ids = any(isinstance(a, TokenIds) for a in list(args) + list(kwargs.values()))
    if not _has_parts(args) and not _has_parts(kwargs) and not (
            involves_ids and mod is not None and isinstance(mod, nn.Embedding)):
        a, k = plain(args), plain(kwargs)
        if node.op == "call_module":
            assert mod is not None
            return mod(*a, **k)
        if node.op == "call_method":
            return getattr(a[0], str(node.target))(*a[1:], **k)
        return node.target(*a, **k)  # type: ignore[operator]
    cx.consumable = _consumable(node, env)
    if node.op == "call_module":
        assert mod is not None
        rule = module_rule(mod)
        if rule is None:
            raise DecompositionError(
                f"contextual decomposition has no rule for {_op_name(node, gm)} (node "
                f"{node.name!r}); it cannot be decomposed, so the model cannot be explained by CD"
            )
        out = rule(cx, mod, *args, **kwargs)
    else:
        table: dict[Any, Any] = METHOD_RULES if node.op == "call_method" else FUNCTION_RULES
        key = node.target
        found = table.get(key) if node.op == "call_method" else _function_rule(key)
        if found is None:
            raise DecompositionError(
                f"contextual decomposition has no rule for {_op_name(node, gm)} (node "
                f"{node.name!r}); it cannot be decomposed, so the model cannot be explained by CD"
            )
        out = found(cx, *args, **kwargs)
    cx.consumable = None
    if _is_inplace(node, mod) and node.args and isinstance(node.args[0], fx.Node):
        env[node.args[0]] = out
        if isinstance(out, Parts) and len(node.args[0].users) > 1:
            out.fresh = False  # the argument's other users read it too
    return out


def _mark_stored(value: Any, stored: set[int]) -> None:
    """A ``Parts`` object that env holds a second time (a pass-through rule such
    as Identity returned its argument) is no longer fresh: two nodes share it."""
    if isinstance(value, Parts):
        if id(value) in stored:
            value.fresh = False
        stored.add(id(value))
    elif isinstance(value, (tuple, list)):
        for v in value:
            _mark_stored(v, stored)
    elif isinstance(value, dict):
        for v in value.values():
            _mark_stored(v, stored)


def _consumable(node: fx.Node, env: dict[fx.Node, Any]) -> Parts | None:
    """The node's first argument when the node is its only user and it is a
    fresh ``Parts``: nothing else reads it, so its rule may overwrite it."""
    first = node.args[0] if node.args else None
    if not isinstance(first, fx.Node) or len(first.users) != 1:
        return None
    value = env.get(first)
    return value if isinstance(value, Parts) and value.fresh else None


def _function_rule(target: Any) -> Any:
    try:
        return FUNCTION_RULES.get(target)
    except TypeError:  # unhashable target
        return None


def _result(env: dict[fx.Node, Any], node: fx.Node) -> tuple[torch.Tensor, torch.Tensor]:
    out = fx.node.map_arg(node.args[0], lambda a: env[a])
    if isinstance(out, Parts):
        return out.rel, out.irr
    if isinstance(out, torch.Tensor):
        return torch.zeros_like(out), out
    raise DecompositionError(
        f"the model must return one tensor of class scores to be decomposed, got "
        f"{type(out).__name__}"
    )
