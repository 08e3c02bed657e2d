"""The PyTorch adapter: hooks and autograd for :class:`torch.nn.Module` models.

Everything that touches PyTorch's autograd or module hooks is in this module and
the ``torch_*`` modules beside it (ops, hooks, layouts, the autograd loop,
contextual decomposition). Hooks live for one call only and are removed in
``finally`` blocks; the model's train/eval flags are restored on the way out;
calls on the same model from several threads are serialised by a per-model
lock, so a hook never fires for another thread's forward pass.
"""

from __future__ import annotations

import copy as copy_module
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import nn

from ..layout import Layout
from . import architectures, common, torch_layout, torch_structure
from .base import (
    ACCELERATOR_PASS_BUDGET,
    CPU_PASS_BUDGET,
    MAX_FORWARD_ROWS,
    MAX_GRADIENT_ROWS,
    BiasSite,
    CotangentFn,
    ExplanationError,
    GradPass,
    LayerRef,
    ModelInput,
    Replacement,
    StopForward,
    Tensor,
    cuts_at_layer,
    pack_input,
)
from .torch_autograd import autograd_rounds, leaf
from .torch_hooks import check_hookable, first_tensor, hooks, replace_first, replacing
from .torch_ops import TorchOps

__all__ = ["TorchAdapter", "TorchOps"]


class _ChangedInPlace(Exception):
    """A tapped layer output was written into by a later operation of the model."""


def _in_place(exc: BaseException) -> bool:
    """Whether ``exc`` (or the error it wraps) comes from an in-place write into a
    tapped output: a changed version, or autograd refusing it."""
    if isinstance(exc, _ChangedInPlace):
        return True
    err = exc if isinstance(exc, RuntimeError) else exc.__cause__
    msg = str(err) if isinstance(err, RuntimeError) else ""
    return "in-place" in msg or "inplace" in msg


def _signature(x: Any) -> tuple[Any, ...]:
    if isinstance(x, ModelInput):
        return x.signature()
    return (tuple(x.shape[1:]), str(x.dtype))


def _all_modules(model: nn.Module) -> list[nn.Module]:
    """``list(model.modules())`` (depth first, each module once, the model first),
    walked without building the dotted names ``named_modules`` makes: the walk runs
    once per call."""
    found: list[nn.Module] = [model]
    seen = {id(model)}
    # one iterator per module on the path: a child is listed, then its own children
    # before its next sibling (no recursion, however deep the model nests)
    stack = [iter(model._modules.values())]
    while stack:
        for child in stack[-1]:
            if child is not None and id(child) not in seen:
                seen.add(id(child))
                found.append(child)
                if child._modules:
                    stack.append(iter(child._modules.values()))
                break
        else:
            stack.pop()
    return found


#: forward passes without a graph on the CPU: the bytes the largest module's input and
#: output may take in one chunk (about what the CPU caches hold)
FORWARD_LAYER_BYTES = 12 << 20


class TorchAdapter:
    """:class:`~eli5_nn.adapters.base.Adapter` for a ``torch.nn.Module``."""

    framework = "torch"
    max_gradient_rows = MAX_GRADIENT_ROWS

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.ops = TorchOps()
        self._refs: list[LayerRef] | None = None
        self._structure: tuple[int, ...] | None = None
        self._modules: list[nn.Module] | None = None
        self._channels_last: set[tuple[Any, ...]] = set()
        #: the input the last memory estimate was made for (it sizes forward chunks)
        self._last_batch: Tensor | None = None
        self._forward_rows: int | None = None

    # -- identity, device, state ----------------------------------------------------------
    def model_name(self) -> str:
        return type(self.model).__name__

    def _device_dtype(self) -> tuple[torch.device, torch.dtype]:
        # the first floating parameter (else buffer), in model.parameters() order, read
        # from the module list this adapter already holds (no second walk of the model)
        for kind in ("_parameters", "_buffers"):
            for m in self.modules():
                for p in getattr(m, kind).values():
                    if p is not None and p.is_floating_point():
                        return p.device, p.dtype
        return torch.device("cpu"), torch.get_default_dtype()

    @contextmanager
    def session(self) -> Iterator[None]:
        with common.hold(self.model) as outermost:
            # inference mode: only the modules in training mode change, and change back
            changed = [m for m in self.modules() if m.training] if outermost else []
            try:
                for m in changed:
                    m.training = False
                yield
            finally:
                for m in changed:
                    m.training = True

    # -- inputs -----------------------------------------------------------------------------
    def as_batch(self, doc: Any) -> Tensor:
        return pack_input(doc, self._as_tensor)

    def _as_tensor(self, doc: Any) -> torch.Tensor:
        if isinstance(doc, torch.Tensor):
            # one memory layout whatever the strides given (the passes choose theirs)
            x = doc.detach().contiguous()
        else:
            arr = common.numeric_array(doc, "torch.Tensor")
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
        t = first_tensor(out)
        if common.check_scores_shape(out, None if t is None else tuple(t.shape)):
            assert t is not None
            t = t[:, None]
        assert t is not None
        return t

    def _choose_format(self, x: Any) -> None:
        """Pass images like ``x`` to the model in channels-last memory layout where
        that is known to be safe and is expected to be faster: a (N, C, H, W) float
        input on the CPU of a model with 2-D convolutions (oneDNN runs them
        channels-last; about a quarter less time on a ResNet). The layout changes
        no value: once per model and input signature, one row is run both ways
        (before any hook of the call is in place) and channels-last is used only
        where the model accepts it and the scores agree. Called by the adapter's
        passes before their hooks go in; :meth:`_run` applies it."""
        if not (isinstance(x, torch.Tensor) and x.dim() == 4 and x.is_floating_point()
                and x.device.type == "cpu"):
            return
        cache = common.model_cache(self.model)
        key = self._key("channels-last", x)
        if key not in cache:
            cache[key] = self._channels_last_agrees(x)
        if cache[key]:
            self._channels_last.add(_signature(x))

    def _channels_last_agrees(self, x: torch.Tensor) -> bool:
        convs = [m for m in self.modules() if isinstance(m, nn.Conv2d)]
        if not convs or any(
                m.weight.dim() == 4 and not m.weight.is_contiguous()
                for m in convs):  # the weights' own layout already decides
            return False
        if self._trace(x).input_axes != "CHW":
            return False
        x1 = x[:1]
        try:
            with torch.no_grad():
                plain = self._scores(self.model(x1)).float()
                fast = self._scores(
                    self.model(x1.contiguous(memory_format=torch.channels_last))).float()
        except Exception:  # noqa: BLE001 - the model's own errors surface in the real pass
            return False
        if plain.shape != fast.shape or not bool(torch.isfinite(plain).all()):
            return False
        tol = 1e-4 * (1.0 + float(plain.abs().max()))
        return bool((plain - fast).abs().max() <= tol)

    def _run(self, x: Any) -> Any:
        try:
            if isinstance(x, ModelInput):
                if x.keys is None:
                    return self.model(*x.values)
                return self.model(**dict(zip(x.keys, x.values, strict=True)))
            if self._channels_last and x.dim() == 4 and _signature(x) in self._channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            return self.model(x)
        except (RuntimeError, ValueError, IndexError) as exc:
            if isinstance(exc, ExplanationError):
                raise
            t = x.ids if isinstance(x, ModelInput) else x
            raise ExplanationError(
                f"the model could not run on an input of shape {tuple(t.shape)} "
                f"and dtype {t.dtype}: {exc}. Pass one input with a leading batch axis, "
                "shaped as the model expects (e.g. (1, C, H, W) for an image model)."
            ) from exc

    def forward(self, x: Tensor, replace: Replacement | None = None) -> np.ndarray:
        self._choose_format(x)
        with torch.no_grad(), replacing(replace):
            return self._scores(self._run(x)).float().cpu().numpy()

    def activations(
        self, x: Tensor, layers: Sequence[LayerRef], first_only: bool = False
    ) -> dict[LayerRef, list[Tensor]]:
        self._choose_format(x)
        out: dict[LayerRef, list[Tensor]] = {ref: [] for ref in layers}

        def make_hook(ref: LayerRef) -> Any:
            def hook(_m: nn.Module, _i: Any, o: Any) -> None:
                if first_only and out[ref]:
                    return
                out[ref].append(o)
                if first_only and all(out.values()):
                    raise StopForward

            return hook

        with hooks(layers, make_hook), torch.no_grad():
            try:
                self._run(x)
            except StopForward:
                pass
        return out

    def attention_weights(self, x: Tensor) -> list[tuple[LayerRef, Tensor]]:
        """``nn.MultiheadAttention`` is asked for its (head-averaged) weights; a
        module whose class name contains "Attention" and that returns a tuple
        gives its last element, unless a module around it already gave its
        weights (Hugging Face ``BertAttention`` around ``BertSelfAttention``).
        Hugging Face models are switched to their "eager" attention for the call
        (``sdpa`` returns no weights) and switched back."""
        with architectures.eager_attention(self.model):
            found = torch_structure.attention_calls(self.layers(), lambda: self._run(x))
        names = {ref.name for ref, _w in found}
        return [(ref, w) for ref, w in found
                if not any(ref.name.startswith(n + ".") for n in names)]

    def embedding_layers(self) -> list[tuple[LayerRef, int, int | None]]:
        cache = common.model_cache(self.model)
        key = ("embeddings", self.structure_key())
        if key not in cache:
            found = []
            for ref in self.layers():
                assert isinstance(ref.handle, nn.Module)
                info = torch_structure.embedding_info(ref.handle)
                if info is not None:
                    found.append((ref, *info))
            cache[key] = found
        return list(cache[key])

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
        self._choose_format(x)
        cut = cuts_at_layer(cut_at_layer, wrt_input, layers)
        if replace is not None:
            # differentiate with respect to the replacement, not the model input
            xi = replace[1].detach().requires_grad_(wrt_input)
            x_in = x
        else:
            xi = x.detach().requires_grad_(True) if wrt_input else x
            x_in = xi

        def run(copy: bool) -> tuple[dict[LayerRef, list[torch.Tensor]], np.ndarray,
                                     list[list[torch.Tensor]]]:
            acts: dict[LayerRef, list[torch.Tensor]] = {ref: [] for ref in layers}
            versions: list[tuple[torch.Tensor, int]] = []

            def make_hook(ref: LayerRef) -> Any:
                def hook(_module: nn.Module, _inp: Any, out: Any) -> Any:
                    t = first_tensor(out)
                    if t is None:
                        raise ExplanationError(
                            f"layer {ref.name!r} returns {type(out).__name__}, not a tensor; "
                            "choose another layer"
                        )
                    t = leaf(t, cut)
                    acts[ref].append(t)
                    if copy:  # in-place ops after the layer cannot change what we read
                        return replace_first(out, t.clone())
                    versions.append((t, t._version))
                    return replace_first(out, t)

                return hook

            def sources() -> list[torch.Tensor]:
                for ref in layers:
                    if not acts[ref]:
                        raise ExplanationError(
                            f"layer {ref.name!r} was not called in the model's forward pass"
                        )
                return ([xi] if wrt_input else []) + [a for ref in layers for a in acts[ref]]

            with hooks(layers, make_hook), replacing(replace, xi):
                scores_np, rounds = autograd_rounds(
                    lambda: self._scores(self._run(x_in)), sources, cotangents, cut=cut,
                    double=False,
                )
            if any(t._version != v for t, v in versions):
                raise _ChangedInPlace
            return acts, scores_np, rounds

        # The tapped outputs go downstream as they are, unless an operation after a
        # layer writes into them (ReLU(inplace=True)): that pass is redone with copies,
        # and the model is remembered as needing them.
        cache = common.model_cache(self.model)
        key = ("copy-tapped", self.structure_key(), tuple(ref.name for ref in layers))
        copy = bool(layers) and cache.get(key, False)
        try:
            acts, scores_np, rounds = run(copy)
        except (_ChangedInPlace, ExplanationError, RuntimeError) as exc:
            if copy or not layers or not _in_place(exc):
                raise
            cache[key] = True
            acts, scores_np, rounds = run(True)
        k = 1 if wrt_input else 0
        detached = {r: [a.detach() for a in v] for r, v in acts.items()}
        passes = []
        for grads in rounds:
            it = iter(grads[k:])
            layer_grads = {ref: [next(it) for _ in acts[ref]] for ref in layers}
            passes.append(GradPass(input_grad=grads[0] if wrt_input else None,
                                   activations=detached, layer_grads=layer_grads))
        return scores_np, passes

    # -- layers and layouts -----------------------------------------------------------------
    def layers(self) -> list[LayerRef]:
        if self._refs is None:  # listed once per model structure
            cache = common.model_cache(self.model)
            key = ("layer-refs", self.structure_key())
            if key not in cache:
                named = [(name, m) for name, m in self.model.named_modules() if name]
                cache[key] = tuple(
                    LayerRef(name=name, index=i, handle=m, kind=type(m).__name__)
                    for i, (name, m) in enumerate(named)
                )
            self._refs = list(cache[key])
        return list(self._refs)

    def find_layer(self, spec: Any) -> LayerRef:
        return common.find_layer(
            self.layers(), spec, is_layer=lambda s: isinstance(s, nn.Module),
            model_name=self.model_name(), names_from="model.named_modules()",
        )

    def modules(self) -> list[nn.Module]:
        """Every module of the model, itself first, listed once per adapter (an
        adapter serves one call): what the per-call checks walk."""
        if self._modules is None:
            self._modules = _all_modules(self.model)
        return self._modules

    def structure_key(self) -> tuple[int, ...]:
        """The model's modules (by id): the key of what is cached per model structure."""
        if self._structure is None:
            self._structure = tuple(map(id, self.modules()))
        return self._structure


    def _key(self, kind: str, x: Any) -> tuple[Any, ...]:
        return (kind, self.structure_key(), _signature(x))

    def _trace(self, x: Tensor) -> torch_layout.Trace:
        """The layout trace on inputs like ``x`` (cached per model and input signature)."""
        cache = common.model_cache(self.model)
        key = self._key("trace", x)
        if key not in cache:
            cache[key] = torch_layout.trace(self.model, self.layers(), x, self._run)
        return cache[key]

    def input_layout(self, x: Tensor) -> Layout:
        tr = self._trace(x)
        axes = tr.input_axes
        if axes is None:
            if not self.is_floating(x):
                return Layout("T")
            t = x.ids if isinstance(x, ModelInput) else x
            raise common.layout_error("the input", self.model_name(), tuple(t.shape[1:]))
        return tr.input_layout

    def layer_layout(self, layer: LayerRef, x: Tensor) -> Layout:
        cache = common.model_cache(self.model)
        key = (*self._key("layer-layout", x), layer.index)
        if key in cache:  # stated once per model structure, input signature and layer
            found: Layout = cache[key]
            return found
        tr = self._trace(x)
        for call in tr.calls:
            if call.index == layer.index:
                layout = torch_layout.call_layout(self.model, tr, call)
                if layout is None:
                    raise common.layout_error(
                        f"the output of layer {layer.name!r}", self.model_name(), call.row_shape
                    )
                cache[key] = layout
                return layout
        check_hookable(self.model)
        raise ExplanationError(
            f"layer {layer.name!r} was not called in {self.model_name()}'s forward pass "
            "(or returns no tensor), so its output has no layout; choose another layer"
        )

    def spatial_layers(self, x: Tensor) -> list[tuple[LayerRef, tuple[int, ...], Layout]]:
        check_hookable(self.model)
        cache = common.model_cache(self.model)
        key = self._key("spatial", x)
        if key not in cache:
            tr = self._trace(x)
            refs = self.layers()
            out = []
            for call in tr.calls:
                if len(call.row_shape) >= 2:
                    found = torch_layout.call_layout(self.model, tr, call)
                    if found is not None:
                        out.append((refs[call.index], call.row_shape, found))
            cache[key] = out
        return list(cache[key])

    def decompose(self, x: Tensor, masks: np.ndarray) -> np.ndarray:
        from .torch_cd import decompose

        return decompose(self.model, x, masks)

    # -- what methods need besides -----------------------------------------------------------
    def bias_sites(self) -> list[BiasSite]:
        return torch_structure.bias_sites(self.layers())

    def pass_budget_bytes(self) -> int:
        device, _ = self._device_dtype()
        return CPU_PASS_BUDGET if device.type == "cpu" else ACCELERATOR_PASS_BUDGET

    @property
    def max_forward_rows(self) -> int:
        """The most rows of one automatic pass without a graph (occlusion variants,
        scores). On the CPU, as many rows as keep the largest module's input and
        output within :data:`FORWARD_LAYER_BYTES` (measured once per model and input
        signature on one row): past that, a layer's data leaves the CPU caches and
        each row costs more. Measured per row, forward only, one thread: a text CNN
        over 160 tokens 0.04 ms at 96-192 rows, 0.07-0.10 ms at 256-512 (this rule:
        153 rows); a ResNet at 112x112 4.9 ms at 8 rows, 6.7 ms at 24 (this rule: 7).
        :data:`MAX_FORWARD_ROWS` at most, and on accelerators."""
        if self._forward_rows is not None:
            return self._forward_rows
        x = self._last_batch
        if x is None or self._device_dtype()[0].type != "cpu":
            return MAX_FORWARD_ROWS
        per_row = self._largest_module_bytes(x)
        if per_row <= 0:  # not measured (TorchScript)
            return MAX_FORWARD_ROWS
        return int(max(1, min(MAX_FORWARD_ROWS, FORWARD_LAYER_BYTES // per_row)))

    @max_forward_rows.setter
    def max_forward_rows(self, rows: int) -> None:
        """A fixed cap instead of the automatic one."""
        self._forward_rows = int(rows)

    def _per_signature(self, kind: str, x: Tensor, measure: Callable[[], int]) -> int:
        """``measure()``, taken once per model and input signature (in the layout the
        passes will use) and kept in the model's cache."""
        cache = common.model_cache(self.model)
        key = self._key(kind, x)
        if key not in cache:
            self._choose_format(x)
            cache[key] = measure()
        return int(cache[key])

    def _largest_module_bytes(self, x: Tensor) -> int:
        """The largest input + output (bytes, distinct storages) of any module in a
        forward pass of one row like ``x``'s (cached per model and input signature)."""
        return self._per_signature("module-bytes", x, lambda: self._module_bytes(x))

    def _module_bytes(self, x: Tensor) -> int:
        largest = [0]

        def tensors(value: Any) -> list[torch.Tensor]:
            if isinstance(value, torch.Tensor):
                return [value]
            if isinstance(value, (list, tuple)):
                return [t for v in value for t in tensors(v)]
            if isinstance(value, dict):  # Hugging Face outputs are dicts
                return [t for v in value.values() for t in tensors(v)]
            return []

        def measure(_m: nn.Module, inp: Any, out: Any) -> None:
            # a tensor's own elements (a slice does not count its whole storage); an
            # output that is its input (in-place) counts once
            sizes = {(t.data_ptr(), t.numel()): t.numel() * t.element_size()
                     for t in tensors(inp) + tensors(out)}
            largest[0] = max(largest[0], sum(sizes.values()))

        hookable = [m for m in self.modules() if not isinstance(m, torch.jit.ScriptModule)]
        if not hookable:
            return 0  # TorchScript takes no hooks: nothing measured, the fixed cap holds
        handles = [m.register_forward_hook(measure) for m in hookable]
        try:
            with torch.no_grad():
                self._run(x[:1])
        finally:
            for h in handles:
                h.remove()
        return largest[0]

    def bytes_per_row(self, x: Tensor) -> int:
        self._last_batch = x
        return self._per_signature("bytes", x, lambda: self._graph_bytes(x))

    def _graph_bytes(self, x: Tensor) -> int:
        """What one row like ``x``'s costs in a forward + backward pass (estimate)."""
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
        return 2 * total[0] + 4 * size + out.numel() * 8

    # -- copies with randomised layers (eli5_nn.metrics.randomization_check) --------------
    def copy_model(self) -> nn.Module:
        """A deep copy of the model (parameters, buffers, train/eval flags, hooks),
        taken under the model's lock so no call's temporary hook is copied."""
        with common.model_lock(self.model):
            clone = copy_module.deepcopy(self.model)
        return common.register_copy(clone)

    def parameter_layers(self, x: Tensor) -> list[LayerRef]:
        """Modules with parameters of their own, in reverse order of their first
        call in a forward pass on ``x[:1]`` (modules never called are left out)."""
        return torch_structure.parameter_layers(self.layers(), lambda: self._run(x[:1]))

    def randomize_layer(self, copy: Any, layer: LayerRef, seed: int) -> None:
        """Overwrite the parameters of ``copy``'s submodule named ``layer.name``."""
        common.check_copy(copy, self.model)
        torch_structure.randomize(copy, layer, seed)
