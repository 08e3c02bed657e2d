"""The PyTorch adapter: hooks and autograd for :class:`torch.nn.Module` models.

Everything that touches PyTorch's autograd or module hooks is here. Hooks live
for one call only and are removed in ``finally`` blocks; the model's
train/eval flags are restored on the way out; calls on the same model from
several threads are serialised by a per-model lock, so a hook never fires for
another thread's forward pass.
"""

from __future__ import annotations

import difflib
import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

import numpy as np
import torch
from torch import nn

from .base import (
    ACCELERATOR_PASS_BUDGET,
    CPU_PASS_BUDGET,
    BiasSite,
    CotangentFn,
    ExplanationError,
    GradPass,
    LayerRef,
    ModelInput,
    Replacement,
    StopForward,
    Tensor,
    pack_input,
)

_LOCKS: weakref.WeakKeyDictionary[nn.Module, threading.RLock] = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()
_CACHE: weakref.WeakKeyDictionary[nn.Module, dict[Any, Any]] = weakref.WeakKeyDictionary()


def _model_lock(model: nn.Module) -> threading.RLock:
    with _LOCKS_GUARD:
        lock = _LOCKS.get(model)
        if lock is None:
            lock = _LOCKS[model] = threading.RLock()
        return lock


def _forward_hook(module: nn.Module, hook: Any) -> Any:
    """``module.register_forward_hook(hook)``; a clear error for TorchScript modules,
    which take no hooks."""
    if isinstance(module, torch.jit.ScriptModule):
        raise ExplanationError(
            "this is a TorchScript model, whose layers cannot be hooked: methods that read a "
            "layer (CAM methods, text models' embedding, attention, FullGrad) cannot apply. "
            "Use an input-gradient method (method='gradient', 'gradient-x-input', "
            "'smoothgrad', 'integrated-gradients'), or save the model with torch.export "
            "(.pt2) or as a plain nn.Module."
        )
    return module.register_forward_hook(hook)


@contextmanager
def _hooks(refs: Sequence[LayerRef], make_hook: Any) -> Iterator[None]:
    """``make_hook(ref)`` registered as forward hook of every layer in ``refs``, for
    the ``with`` block (removed also on error)."""
    with ExitStack() as stack:
        for ref in refs:
            module = ref.handle
            assert isinstance(module, nn.Module)
            stack.enter_context(_forward_hook(module, make_hook(ref)))
        yield


def _embedding_info(m: nn.Module) -> tuple[int, int | None] | None:
    """(vocabulary size, padding id) of a token embedding: ``nn.Embedding``, or a
    module unflattened from ``torch.export`` whose graph calls ``aten.embedding``."""
    if isinstance(m, nn.Embedding):
        return int(m.num_embeddings), m.padding_idx
    graph = getattr(m, "graph", None)
    weight = getattr(m, "weight", None)
    if not isinstance(graph, torch.fx.Graph) or not isinstance(weight, torch.Tensor) \
            or weight.ndim != 2:
        return None
    for node in graph.nodes:
        if node.op == "call_function" and "aten.embedding" in str(node.target):
            pad = node.args[2] if len(node.args) > 2 else -1
            return int(weight.shape[0]), None if pad in (-1, None) else int(pad)
    return None


def _signature(x: Any) -> tuple[Any, ...]:
    if isinstance(x, ModelInput):
        return x.signature()
    return (tuple(x.shape[1:]), str(x.dtype))


def _first_tensor(out: Any) -> torch.Tensor | None:
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    return None


def _replace_first(out: Any, new: torch.Tensor) -> Any:
    if isinstance(out, torch.Tensor):
        return new
    return type(out)([new, *out[1:]])


_CHANNELS_LAST = (
    nn.RNNBase, nn.Embedding, nn.MultiheadAttention, nn.TransformerEncoderLayer,
    nn.TransformerEncoder, nn.Linear, nn.LayerNorm,
)
_CHANNELS_FIRST = (nn.modules.conv._ConvNd, nn.modules.batchnorm._BatchNorm)


class TorchOps:
    """:class:`~eli5_nn.adapters.base.Ops` in PyTorch."""

    def asarray(self, value: np.ndarray, like: Tensor) -> Tensor:
        return torch.as_tensor(np.asarray(value), dtype=like.dtype, device=like.device)

    def to_numpy(self, x: Tensor) -> np.ndarray:
        return x.detach().cpu().numpy()

    def sum(self, x: Tensor, axis: int | tuple[int, ...], keepdims: bool = False) -> Tensor:
        return torch.sum(x, dim=axis, keepdim=keepdims)

    def mean(self, x: Tensor, axis: int | tuple[int, ...], keepdims: bool = False) -> Tensor:
        return torch.mean(x, dim=axis, keepdim=keepdims)

    def relu(self, x: Tensor) -> Tensor:
        return torch.relu(x)

    def abs(self, x: Tensor) -> Tensor:
        return torch.abs(x)

    def amax(self, x: Tensor, axis: int | tuple[int, ...], keepdims: bool = False) -> Tensor:
        return torch.amax(x, dim=axis, keepdim=keepdims)

    def amin(self, x: Tensor, axis: int | tuple[int, ...], keepdims: bool = False) -> Tensor:
        return torch.amin(x, dim=axis, keepdim=keepdims)

    def where(self, cond: Tensor, x: Tensor, y: Tensor) -> Tensor:
        return torch.where(cond, x, y)

    def zeros_like(self, x: Tensor) -> Tensor:
        return torch.zeros_like(x)

    def concat(self, xs: Sequence[Tensor], axis: int = 0) -> Tensor:
        return torch.cat(list(xs), dim=axis)

    def take(self, x: Tensor, indices: np.ndarray, axis: int = 0) -> Tensor:
        idx = torch.as_tensor(np.asarray(indices, dtype=np.int64), device=x.device)
        return torch.index_select(x, axis, idx)

    def reshape(self, x: Tensor, shape: tuple[int, ...]) -> Tensor:
        return torch.reshape(x, shape)

    def matmul(self, a: Tensor, b: Tensor) -> Tensor:
        return torch.matmul(a, b)

    def moveaxis(self, x: Tensor, source: int, destination: int) -> Tensor:
        return torch.movedim(x, source, destination)

    def normal(self, like: Tensor, std: Tensor, seed: int) -> Tensor:
        gen = torch.Generator(device=like.device)
        gen.manual_seed(int(seed))
        noise = torch.randn(like.shape, generator=gen, dtype=like.dtype, device=like.device)
        return noise * std

    def all_finite(self, x: Tensor) -> bool:
        if not torch.is_floating_point(x):
            return True
        return bool(torch.isfinite(x).all())

    def shape(self, x: Tensor) -> tuple[int, ...]:
        return tuple(int(s) for s in x.shape)


class TorchAdapter:
    """:class:`~eli5_nn.adapters.base.Adapter` for a ``torch.nn.Module``."""

    framework = "torch"
    channel_axis = 1

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.ops = TorchOps()
        self._named = [(name, m) for name, m in model.named_modules() if name]

    # -- identity, device, state ----------------------------------------------------------
    def model_name(self) -> str:
        return type(self.model).__name__

    def _device_dtype(self) -> tuple[torch.device, torch.dtype]:
        for p in self.model.parameters():
            if p.is_floating_point():
                return p.device, p.dtype
        for b in self.model.buffers():
            if b.is_floating_point():
                return b.device, b.dtype
        return torch.device("cpu"), torch.get_default_dtype()

    @contextmanager
    def session(self) -> Iterator[None]:
        lock = _model_lock(self.model)
        with lock:
            modes = [(m, m.training) for m in self.model.modules()]
            try:
                self.model.eval()
                yield
            finally:
                for m, mode in modes:
                    m.training = mode

    # -- inputs -----------------------------------------------------------------------------
    def as_batch(self, doc: Any) -> Tensor:
        return pack_input(doc, self._as_tensor)

    def _as_tensor(self, doc: Any) -> torch.Tensor:
        if isinstance(doc, torch.Tensor):
            x = doc.detach()
        else:
            try:
                arr = np.asarray(doc)
            except Exception as exc:  # pragma: no cover - numpy raises many kinds
                raise TypeError(
                    f"expected a numpy array or torch.Tensor as input, got {type(doc).__name__}"
                ) from exc
            if arr.dtype == object or not (
                np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_
            ):
                raise TypeError(
                    f"expected a numeric array or torch.Tensor as input, got dtype {arr.dtype}"
                )
            x = torch.from_numpy(np.ascontiguousarray(arr))
        device, dtype = self._device_dtype()
        if x.is_floating_point():
            return x.to(device=device, dtype=dtype)
        return x.to(device=device)

    def is_floating(self, x: Tensor) -> bool:
        if isinstance(x, ModelInput):
            x = x.ids
        return bool(torch.is_floating_point(x))

    # -- forward / backward ---------------------------------------------------------------
    def _scores(self, out: Any) -> torch.Tensor:
        if isinstance(out, dict) and "logits" in out:
            out = out["logits"]
        elif hasattr(out, "logits") and isinstance(out.logits, torch.Tensor):
            out = out.logits
        t = _first_tensor(out)
        if t is None:
            raise TypeError(
                f"the model returned {type(out).__name__}; expected a tensor of class scores "
                "of shape (batch, n_classes)"
            )
        if t.ndim == 1:
            t = t[:, None]
        if t.ndim != 2:
            raise ValueError(
                f"the model's output has shape {tuple(t.shape)}; expected class scores of "
                "shape (batch, n_classes)"
            )
        return t

    def _run(self, x: Any) -> Any:
        try:
            if isinstance(x, ModelInput):
                if x.keys is None:
                    return self.model(*x.values)
                return self.model(**dict(zip(x.keys, x.values, strict=True)))
            return self.model(x)
        except (RuntimeError, ValueError, IndexError) as exc:
            t = x.ids if isinstance(x, ModelInput) else x
            raise ExplanationError(
                f"the model could not run on an input of shape {tuple(t.shape)} "
                f"and dtype {t.dtype}: {exc}. Pass one input with a leading batch axis, "
                "shaped as the model expects (e.g. (1, C, H, W) for an image model)."
            ) from exc

    @staticmethod
    def _replacing(replace: Replacement | None, value: torch.Tensor | None = None) -> Any:
        """A context that makes ``replace``'s layer output ``value`` (default: its tensor)."""
        if replace is None:
            return ExitStack()
        ref, t = replace
        new = t if value is None else value
        module = ref.handle
        assert isinstance(module, nn.Module)

        def hook(_m: nn.Module, _i: Any, out: Any) -> Any:
            old = _first_tensor(out)
            if old is None or tuple(old.shape) != tuple(new.shape):
                raise ExplanationError(
                    f"layer {ref.name!r} outputs shape "
                    f"{None if old is None else tuple(old.shape)}; its replacement has shape "
                    f"{tuple(new.shape)}"
                )
            return _replace_first(out, new)

        return _forward_hook(module, hook)

    def forward(self, x: Tensor, replace: Replacement | None = None) -> np.ndarray:
        with torch.no_grad(), self._replacing(replace):
            return self._scores(self._run(x)).float().cpu().numpy()

    def activations(
        self, x: Tensor, layers: Sequence[LayerRef], first_only: bool = False
    ) -> dict[LayerRef, list[Tensor]]:
        out: dict[LayerRef, list[Tensor]] = {ref: [] for ref in layers}

        def make_hook(ref: LayerRef) -> Any:
            def hook(_m: nn.Module, _i: Any, o: Any) -> None:
                if first_only and out[ref]:
                    return
                out[ref].append(o)
                if first_only and all(out.values()):
                    raise StopForward

            return hook

        with _hooks(layers, make_hook), torch.no_grad():
            try:
                self._run(x)
            except StopForward:
                pass
        return out

    def attention_weights(self, x: Tensor) -> list[tuple[LayerRef, Tensor]]:
        """``nn.MultiheadAttention`` is asked for its (head-averaged) weights; a
        module whose class name contains "Attention" and that returns a tuple
        gives its last element."""
        found: list[tuple[LayerRef, Tensor]] = []

        def ask(_m: nn.Module, args: Any, kwargs: Any) -> Any:
            return args, {**kwargs, "need_weights": True, "average_attn_weights": True}

        def make_hook(ref: LayerRef) -> Any:
            def hook(_m: nn.Module, _i: Any, out: Any) -> None:
                if isinstance(out, tuple) and len(out) >= 2:
                    w = out[-1]
                    if isinstance(w, torch.Tensor) and w.ndim >= 2:
                        found.append((ref, w.detach()))

            return hook

        with ExitStack() as stack:
            for ref in self.layers():
                m = ref.handle
                assert isinstance(m, nn.Module)
                if isinstance(m, nn.MultiheadAttention):
                    stack.enter_context(m.register_forward_pre_hook(ask, with_kwargs=True))
                elif "attention" not in type(m).__name__.lower():
                    continue
                stack.enter_context(_forward_hook(m, make_hook(ref)))
            # with gradients enabled PyTorch takes the module path of
            # TransformerEncoderLayer (its fused fast path skips the hooks)
            with torch.enable_grad():
                self._run(x)
        return found

    def embedding_layers(self) -> list[tuple[LayerRef, int, int | None]]:
        found = []
        for ref in self.layers():
            assert isinstance(ref.handle, nn.Module)
            info = _embedding_info(ref.handle)
            if info is not None:
                found.append((ref, *info))
        return found

    def gradients(
        self,
        x: Tensor,
        cotangents: CotangentFn,
        *,
        wrt_input: bool,
        layers: Sequence[LayerRef] = (),
        cut_at_layer: bool = False,
        replace: Replacement | None = None,
    ) -> tuple[np.ndarray, list[GradPass]]:
        cut = cut_at_layer and not wrt_input and len(layers) == 1
        acts: dict[LayerRef, list[torch.Tensor]] = {ref: [] for ref in layers}

        def make_hook(ref: LayerRef) -> Any:
            def hook(_module: nn.Module, _inp: Any, out: Any) -> Any:
                t = _first_tensor(out)
                if t is None:
                    raise ExplanationError(
                        f"layer {ref.name!r} returns {type(out).__name__}, not a tensor; "
                        "choose another layer"
                    )
                if cut:
                    torch.set_grad_enabled(True)
                if cut or not t.requires_grad:
                    t = t.detach().requires_grad_(True)
                acts[ref].append(t)
                # downstream gets a copy, so in-place ops after the layer
                # (ReLU(inplace=True)) cannot change what we differentiate at
                return _replace_first(out, t.clone())

            return hook

        if replace is not None:
            # differentiate with respect to the replacement, not the model input
            xi = replace[1].detach().requires_grad_(wrt_input)
            x_in = x
        else:
            xi = x.detach().requires_grad_(True) if wrt_input else x
            x_in = xi
        with _hooks(layers, make_hook), self._replacing(replace, xi):
            with torch.enable_grad():
                if cut:
                    with torch.no_grad():
                        out = self._run(x_in)
                else:
                    out = self._run(x_in)
                scores = self._scores(out)
                scores_np = scores.detach().float().cpu().numpy()
                rounds = cotangents(scores_np)
                for ref in layers:
                    if not acts[ref]:
                        raise ExplanationError(
                            f"layer {ref.name!r} was not called in the model's forward pass"
                        )
                wrt: list[torch.Tensor] = [xi] if wrt_input else []
                flat_layers = [(ref, i) for ref in layers for i in range(len(acts[ref]))]
                wrt += [acts[ref][i] for ref, i in flat_layers]
                if not scores.requires_grad:
                    raise ExplanationError(
                        "the model's output does not depend on anything that can be "
                        "differentiated; check that the model is not run under torch.no_grad()"
                    )
                passes = []
                for j, cot in enumerate(rounds):
                    g = torch.as_tensor(cot, dtype=scores.dtype, device=scores.device)
                    grads = torch.autograd.grad(
                        scores,
                        wrt,
                        grad_outputs=g,
                        retain_graph=j < len(rounds) - 1,
                        allow_unused=True,
                    )
                    grads = tuple(
                        torch.zeros_like(w) if gr is None else gr
                        for w, gr in zip(wrt, grads, strict=True)
                    )
                    k = 1 if wrt_input else 0
                    layer_grads: dict[LayerRef, list[Tensor]] = {ref: [] for ref in layers}
                    for (ref, _i), gr in zip(flat_layers, grads[k:], strict=True):
                        layer_grads[ref].append(gr.detach())
                    passes.append(
                        GradPass(
                            input_grad=grads[0].detach() if wrt_input else None,
                            activations={r: [a.detach() for a in v] for r, v in acts.items()},
                            layer_grads=layer_grads,
                        )
                    )
        return scores_np, passes

    # -- layers -----------------------------------------------------------------------------
    def layers(self) -> list[LayerRef]:
        return [
            LayerRef(name=name, index=i, handle=m, kind=type(m).__name__)
            for i, (name, m) in enumerate(self._named)
        ]

    def find_layer(self, spec: Any) -> LayerRef:
        refs = self.layers()
        if isinstance(spec, nn.Module):
            for ref in refs:
                if ref.handle is spec:
                    return ref
            raise ExplanationError(
                f"the layer object {type(spec).__name__} is not a submodule of this model"
            )
        if isinstance(spec, (bool, np.bool_)):
            raise TypeError("layer must be a name, an index or a module, not a bool")
        if isinstance(spec, (int, np.integer)):
            i = int(spec)
            if not -len(refs) <= i < len(refs):
                raise ExplanationError(
                    f"layer index {i} is out of range: the model has {len(refs)} layers "
                    f"(indices 0..{len(refs) - 1}, or negative from the end)"
                )
            return refs[i]
        if isinstance(spec, str):
            for ref in refs:
                if ref.name == spec:
                    return ref
            close = difflib.get_close_matches(spec, [r.name for r in refs], n=5)
            hint = f" Did you mean one of {close}?" if close else ""
            raise ExplanationError(
                f"no layer named {spec!r} in {self.model_name()}.{hint} "
                f"Layer names are those of model.named_modules()."
            )
        raise TypeError(
            f"layer must be a name (str), an index (int) or a torch.nn.Module, "
            f"got {type(spec).__name__}"
        )

    def _structure_key(self) -> tuple[int, ...]:
        return tuple(id(m) for m in self.model.modules())

    def spatial_layers(self, x: Tensor) -> list[tuple[LayerRef, tuple[int, ...]]]:
        cache = _CACHE.setdefault(self.model, {})
        key = ("spatial", self._structure_key(), _signature(x))
        if key in cache:
            return list(cache[key])
        refs = self.layers()
        seen: list[tuple[LayerRef, tuple[int, ...]]] = []

        def make_hook(ref: LayerRef) -> Any:
            def hook(_m: nn.Module, _i: Any, out: Any) -> None:
                t = _first_tensor(out)
                if t is not None and t.ndim >= 3:
                    seen.append((ref, tuple(int(s) for s in t.shape[1:])))

            return hook

        with _hooks(refs, make_hook):
            with torch.no_grad():
                self._run(x[:1])
        cache[key] = tuple(seen)
        return seen

    def layer_channel_axis(self, layer: LayerRef) -> int:
        """1 for convolutional maps (N, C, ...); -1 for layers whose outputs put
        features last (recurrent, embedding, attention, linear, layer norm); a
        container takes the axis of its last child; element-wise layers 1."""
        m = layer.handle
        while isinstance(m, nn.Module):
            if isinstance(m, _CHANNELS_LAST):
                return -1
            children = list(m.children())
            if not children or isinstance(m, _CHANNELS_FIRST):
                return 1
            m = children[-1]
        return 1

    def bias_sites(self) -> list[BiasSite]:
        sites = []
        conv_like = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
        for ref in self.layers():
            m = ref.handle
            if isinstance(m, conv_like) and m.bias is not None:
                sites.append(BiasSite(ref, m.bias.detach()))
            elif (
                isinstance(m, nn.modules.batchnorm._BatchNorm)
                and m.running_mean is not None
                and m.running_var is not None
            ):
                scale = torch.rsqrt(m.running_var.detach() + m.eps)
                if m.weight is not None:
                    scale = scale * m.weight.detach()
                bias = -m.running_mean.detach() * scale
                if m.bias is not None:
                    bias = bias + m.bias.detach()
                sites.append(BiasSite(ref, bias))
        return sites

    def pass_budget_bytes(self) -> int:
        device, _ = self._device_dtype()
        return CPU_PASS_BUDGET if device.type == "cpu" else ACCELERATOR_PASS_BUDGET

    def bytes_per_row(self, x: Tensor) -> int:
        cache = _CACHE.setdefault(self.model, {})
        key = ("bytes", self._structure_key(), _signature(x))
        if key in cache:
            return int(cache[key])
        total = [0]
        seen: set[int] = set()

        def pack(t: torch.Tensor) -> torch.Tensor:
            ptr = t.untyped_storage().data_ptr()
            if ptr not in seen:
                seen.add(ptr)
                total[0] += t.untyped_storage().nbytes()
            return t

        if isinstance(x, ModelInput):
            xi: Any = x[:1]
            size = sum(v.numel() * v.element_size() for v in xi.values)
        else:
            xi = x[:1].detach().requires_grad_(self.is_floating(x))
            size = xi.numel() * xi.element_size()
        with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = self._scores(self._run(xi))
        # what the backward pass allocates on top is about one more activation set
        estimate = 2 * total[0] + 4 * size + out.numel() * 8
        cache[key] = estimate
        return estimate

    # -- copies with randomised layers (eli5_nn.metrics.randomization_check) --------------
    #: models made by copy_model, the only ones randomize_layer changes
    _copies: weakref.WeakSet[nn.Module] = weakref.WeakSet()

    def copy_model(self) -> nn.Module:
        """A deep copy of the model (parameters, buffers, train/eval flags, hooks),
        taken under the model's lock so no call's temporary hook is copied."""
        import copy

        with _model_lock(self.model):
            clone = copy.deepcopy(self.model)
        TorchAdapter._copies.add(clone)
        return clone

    def parameter_layers(self, x: Tensor) -> list[LayerRef]:
        """Modules with parameters of their own, in reverse order of their first
        call in a forward pass on ``x[:1]`` (modules never called are left out)."""
        refs = [
            ref for ref in self.layers()
            if isinstance(ref.handle, nn.Module)
            and any(True for _ in ref.handle.parameters(recurse=False))
        ]
        called: list[LayerRef] = []

        def make_hook(ref: LayerRef) -> Any:
            def hook(_m: nn.Module, _i: Any, _o: Any) -> None:
                if ref not in called:
                    called.append(ref)

            return hook

        with _hooks(refs, make_hook):
            with torch.no_grad():
                self._run(x[:1])
        return called[::-1]

    def randomize_layer(self, copy: Any, layer: LayerRef, seed: int) -> None:
        """Overwrite the parameters of ``copy``'s submodule named ``layer.name``."""
        from .base import randomized

        if copy is self.model or copy not in TorchAdapter._copies:
            raise ExplanationError(
                "randomize_layer changes only copies made by copy_model(), never the "
                "user's model"
            )
        try:
            module = copy.get_submodule(layer.name)
        except AttributeError as exc:
            raise ExplanationError(f"the copy has no layer named {layer.name!r}") from exc
        with torch.no_grad():
            for i, p in enumerate(module.parameters(recurse=False)):
                values = randomized(p.detach().float().cpu().numpy(), seed * 1009 + i)
                p.copy_(torch.as_tensor(values, device=p.device))
