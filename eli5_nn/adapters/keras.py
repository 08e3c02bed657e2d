"""The Keras 3 adapter: one backend-neutral adapter, one gradient shim per backend.

Layer outputs are reached by wrapping the ``call`` of the layers a call needs,
for that call only: the wrapper hands the output to the backend shim's tap
(``tape.watch`` on TensorFlow, ``A + 0`` as a ``jax.vjp`` primal on JAX, a fresh
autograd leaf on torch) and only acts for the thread that installed it. This
works alike for Sequential, Functional and subclassed models; a layer whose
output never passes through its ``__call__`` in the forward pass cannot be
reached and is reported as such. Everything is restored in ``finally`` blocks;
what a model needs across calls (layer output shapes per input signature) is
cached weakly on the model, so nothing is rebuilt at every call.
"""

from __future__ import annotations

import difflib
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
from keras import ops as K

from . import keras_backends
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

_LOCKS: weakref.WeakKeyDictionary[Any, threading.RLock] = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()
_CACHE: weakref.WeakKeyDictionary[Any, dict[Any, Any]] = weakref.WeakKeyDictionary()

_CONV_TYPES = tuple(
    getattr(keras.layers, name)
    for name in (
        "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose",
        "Conv3DTranspose", "DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D",
        "SeparableConv2D",
    )
    if hasattr(keras.layers, name)
)


def _model_lock(model: Any) -> threading.RLock:
    with _LOCKS_GUARD:
        lock = _LOCKS.get(model)
        if lock is None:
            lock = _LOCKS[model] = threading.RLock()
        return lock


@dataclass(frozen=True, eq=False)
class PreActivation:
    """The pre-activation output of a Dense/Conv layer with a fused activation.

    FullGrad needs the gradient where the bias is added, before the activation.
    """

    layer: Any


@contextmanager
def _swapped_call(layer: Any, wrapped: Callable[..., Any]) -> Iterator[None]:
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


def _layer_of(ref: LayerRef) -> Any:
    h = ref.handle
    return h.layer if isinstance(h, PreActivation) else h


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


class KerasOps:
    """:class:`~eli5_nn.adapters.base.Ops` with ``keras.ops`` (any backend)."""

    def asarray(self, value: np.ndarray, like: Tensor) -> Tensor:
        dtype = keras.backend.standardize_dtype(like.dtype)
        return K.convert_to_tensor(np.asarray(value), dtype=dtype)

    def to_numpy(self, x: Tensor) -> np.ndarray:
        return np.array(K.convert_to_numpy(K.stop_gradient(x)))

    def sum(self, x: Tensor, axis: int | tuple[int, ...], keepdims: bool = False) -> Tensor:
        return K.sum(x, axis=axis, keepdims=keepdims)

    def mean(self, x: Tensor, axis: int | tuple[int, ...], keepdims: bool = False) -> Tensor:
        return K.mean(x, axis=axis, keepdims=keepdims)

    def relu(self, x: Tensor) -> Tensor:
        return K.relu(x)

    def abs(self, x: Tensor) -> Tensor:
        return K.abs(x)

    def amax(self, x: Tensor, axis: int | tuple[int, ...], keepdims: bool = False) -> Tensor:
        return K.max(x, axis=axis, keepdims=keepdims)

    def amin(self, x: Tensor, axis: int | tuple[int, ...], keepdims: bool = False) -> Tensor:
        return K.min(x, axis=axis, keepdims=keepdims)

    def where(self, cond: Tensor, x: Tensor, y: Tensor) -> Tensor:
        return K.where(cond, x, y)

    def zeros_like(self, x: Tensor) -> Tensor:
        return K.zeros_like(x)

    def concat(self, xs: Sequence[Tensor], axis: int = 0) -> Tensor:
        xs = list(xs)
        return xs[0] if len(xs) == 1 else K.concatenate(xs, axis=axis)

    def take(self, x: Tensor, indices: np.ndarray, axis: int = 0) -> Tensor:
        idx = K.convert_to_tensor(np.asarray(indices, dtype=np.int32))
        return K.take(x, idx, axis=axis)

    def reshape(self, x: Tensor, shape: tuple[int, ...]) -> Tensor:
        return K.reshape(x, shape)

    def matmul(self, a: Tensor, b: Tensor) -> Tensor:
        return K.matmul(a, b)

    def moveaxis(self, x: Tensor, source: int, destination: int) -> Tensor:
        return K.moveaxis(x, source, destination)

    def normal(self, like: Tensor, std: Tensor, seed: int) -> Tensor:
        # drawn with numpy so that every backend sees the same noise for a seed
        rng = np.random.default_rng(int(seed))
        noise = rng.standard_normal(self.shape(like))
        return self.asarray(noise, like) * std

    def all_finite(self, x: Tensor) -> bool:
        dtype = keras.backend.standardize_dtype(x.dtype)
        if "float" not in dtype:
            return True
        return bool(K.convert_to_numpy(K.all(K.isfinite(x))))

    def shape(self, x: Tensor) -> tuple[int, ...]:
        return tuple(int(s) for s in K.shape(x))


class KerasAdapter:
    """:class:`~eli5_nn.adapters.base.Adapter` for a ``keras.Model`` (Keras 3)."""

    framework = "keras"

    def __init__(self, model: Any) -> None:
        self.model = model
        self.backend = keras.backend.backend()
        self.shim = keras_backends.load(self.backend)
        self.ops = KerasOps()
        self._top = list(model.layers)
        self._all = self._flatten(self._top)
        self.channel_axis = self._input_channel_axis()
        self._last_batch: Tensor | None = None

    @staticmethod
    def _flatten(top: list[Any]) -> list[Any]:
        """Top-level layers in ``model.layers`` order, then nested ones depth-first."""
        seen = {id(layer) for layer in top}
        out = list(top)
        stack = [layer for layer in reversed(top)]
        nested: list[Any] = []
        while stack:
            layer = stack.pop()
            for sub in getattr(layer, "layers", None) or []:
                if id(sub) not in seen:
                    seen.add(id(sub))
                    nested.append(sub)
                    stack.append(sub)
        return out + nested

    def _input_channel_axis(self) -> int:
        for layer in self._all:
            fmt = getattr(layer, "data_format", None)
            if fmt == "channels_first":
                return 1
            if fmt == "channels_last":
                return -1
        return 1 if keras.config.image_data_format() == "channels_first" else -1

    # -- identity, state ----------------------------------------------------------------------
    def model_name(self) -> str:
        return str(getattr(self.model, "name", None) or type(self.model).__name__)

    @contextmanager
    def session(self) -> Iterator[None]:
        with _model_lock(self.model):
            yield

    # -- inputs -----------------------------------------------------------------------------
    def _input_dtype(self) -> str:
        inputs = getattr(self.model, "inputs", None)
        if inputs:
            try:
                return keras.backend.standardize_dtype(inputs[0].dtype)
            except (AttributeError, ValueError):  # pragma: no cover - odd input specs
                pass
        return str(getattr(self.model, "compute_dtype", None) or keras.config.floatx())

    def _expected_shape(self) -> tuple[Any, ...] | None:
        try:
            shape = self.model.input_shape
        except (AttributeError, ValueError):
            return None
        if not isinstance(shape, tuple) or not all(
            s is None or isinstance(s, int) for s in shape
        ):
            return None  # several inputs: not checked here
        return shape

    def as_batch(self, doc: Any) -> Tensor:
        if isinstance(doc, (tuple, dict)):
            # several inputs: each converted as it is; the model checks their shapes
            x = pack_input(doc, lambda v: self._convert(self._to_numpy(v)))
            self._last_batch = x[:1]
            return x
        arr = self._to_numpy(doc)
        expected = self._expected_shape()
        if expected is not None:
            want = tuple(expected[1:])

            def fits(shape: tuple[int, ...]) -> bool:
                return len(shape) == len(want) and all(
                    w is None or w == g for w, g in zip(want, shape, strict=True)
                )

            if not fits(tuple(arr.shape[1:])):
                example = "(1, " + ", ".join("?" if w is None else str(w) for w in want) + ")"
                hint = " The batch axis seems missing: pass x[None]." if fits(arr.shape) else ""
                raise ExplanationError(
                    f"{self.model_name()} expects input of shape {example} "
                    f"(model.input_shape is {expected}), got shape {tuple(arr.shape)}.{hint}"
                )
        x = self._convert(arr)
        self._last_batch = x[:1]
        return x

    def _convert(self, arr: np.ndarray) -> Tensor:
        # floats follow the model's float input dtype; never cast floats to an
        # integer input dtype (float token ids are refused by the text pipeline)
        dtype = self._input_dtype()
        if np.issubdtype(arr.dtype, np.floating) and "float" in dtype:
            return K.convert_to_tensor(arr, dtype=dtype)
        return K.convert_to_tensor(arr)

    @staticmethod
    def _to_numpy(doc: Any) -> np.ndarray:
        if K.is_tensor(doc) or hasattr(doc, "__array__") and not isinstance(
            doc, np.ndarray
        ):
            try:
                arr = np.asarray(K.convert_to_numpy(doc))
            except Exception:  # noqa: BLE001 - a tensor of another framework
                arr = np.asarray(doc)
        else:
            try:
                arr = np.asarray(doc)
            except Exception as exc:  # pragma: no cover - numpy raises many kinds
                raise TypeError(
                    f"expected a numpy array or a tensor as input, got {type(doc).__name__}"
                ) from exc
        numeric = np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_
        if arr.dtype == object or not numeric:
            raise TypeError(
                f"expected a numeric numpy array or tensor as input, got dtype {arr.dtype}"
            )
        return arr

    def is_floating(self, x: Tensor) -> bool:
        if isinstance(x, ModelInput):
            x = x.ids
        return "float" in keras.backend.standardize_dtype(x.dtype)

    # -- forward / backward ---------------------------------------------------------------
    def _scores(self, out: Any) -> Tensor:
        if isinstance(out, dict):
            out = out.get("logits", next(iter(out.values()), None))
        if isinstance(out, (list, tuple)):
            out = out[0] if out else None
        if out is None or not K.is_tensor(out):
            raise TypeError(
                f"the model returned {type(out).__name__}; expected a tensor of class scores "
                "of shape (batch, n_classes)"
            )
        shape = self.ops.shape(out)
        if len(shape) == 1:
            out = K.expand_dims(out, -1)
        elif len(shape) != 2:
            raise ValueError(
                f"the model's output has shape {shape}; expected class scores of shape "
                "(batch, n_classes)"
            )
        return out

    def _call(self, x: Tensor) -> Any:
        if isinstance(x, ModelInput):
            structured: Any = (
                list(x.values) if x.keys is None else dict(zip(x.keys, x.values, strict=True))
            )
            return self._call_structured(structured, x.ids)
        return self._call_structured(x, x)

    def _call_structured(self, inputs: Any, x: Tensor) -> Any:
        try:
            return self.shim.call(self.model, inputs)
        except ExplanationError:
            raise
        except (ValueError, TypeError, IndexError) as exc:
            raise ExplanationError(
                f"the model could not run on an input of shape {self.ops.shape(x)}: {exc}. "
                "Pass one input with a leading batch axis, shaped as model.input_shape."
            ) from exc
        except Exception as exc:
            if type(exc).__name__ in ("InvalidArgumentError", "RuntimeError"):
                raise ExplanationError(
                    f"the model could not run on an input of shape {self.ops.shape(x)}: {exc}"
                ) from exc
            raise

    @contextmanager
    def _intercept(
        self, watch: Sequence[tuple[Any, bool]], on_output: Callable[[int, int, Tensor], Tensor]
    ) -> Iterator[None]:
        """Wrap the ``call`` of each layer in ``watch`` (``(layer, pre_activation)``).

        ``on_output(position, call_no, tensor)`` receives each output (the
        pre-activation one where asked) and returns what flows on. The wrappers
        act only for this thread and are removed on exit, also on error.
        """
        owner = threading.get_ident()
        counters = [0] * len(watch)
        with ExitStack() as stack:
            for pos, (layer, pre) in enumerate(watch):
                stack.enter_context(self._wrap(layer, pre, pos, owner, counters, on_output))
            yield

    @staticmethod
    @contextmanager
    def _wrap(
        layer: Any, pre: bool, pos: int, owner: int, counters: list[int],
        on_output: Callable[[int, int, Tensor], Tensor],
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

        with _swapped_call(layer, wrapped):
            if pre:
                object.__setattr__(layer, "activation", identity)
            try:
                yield
            finally:
                if pre:
                    object.__setattr__(layer, "activation", activation)

    def _replacing(self, replace: Replacement | None, value: Tensor) -> Any:
        """A context in which ``replace``'s layer outputs ``value``."""
        if replace is None:
            return ExitStack()
        ref = replace[0]

        def on_output(_pos: int, _n: int, t: Tensor) -> Tensor:
            if self.ops.shape(t) != self.ops.shape(value):
                raise ExplanationError(
                    f"layer {ref.name!r} outputs shape {self.ops.shape(t)}; its replacement "
                    f"has shape {self.ops.shape(value)}"
                )
            return value

        return self._intercept([(_layer_of(ref), False)], on_output)

    def forward(self, x: Tensor, replace: Replacement | None = None) -> np.ndarray:
        with self.shim.no_grad():
            if replace is not None:
                with self._replacing(replace, replace[1]):
                    scores = self._scores(self._call(x))
            else:
                scores = self._scores(self._call(x))
        return self.ops.to_numpy(scores).astype(np.float64)

    def activations(
        self, x: Tensor, layers: Sequence[LayerRef], first_only: bool = False
    ) -> dict[LayerRef, list[Tensor]]:
        out: dict[LayerRef, list[Tensor]] = {ref: [] for ref in layers}

        def on_output(pos: int, _n: int, t: Tensor) -> Tensor:
            if not (first_only and out[layers[pos]]):
                out[layers[pos]].append(t)
            if first_only and all(out.values()):
                raise StopForward
            return t

        with self.shim.no_grad(), self._intercept(
            [(_layer_of(ref), False) for ref in layers], on_output
        ):
            try:
                self._call(x)
            except StopForward:
                pass
        return out

    def attention_weights(self, x: Tensor) -> list[tuple[LayerRef, Tensor]]:
        """Keras ``Attention``/``AdditiveAttention``/``MultiHeadAttention`` are
        called with ``return_attention_scores=True``; another layer whose class
        name contains "Attention" and that returns a tuple gives its last element."""
        asked = tuple(
            getattr(keras.layers, n) for n in ("Attention", "AdditiveAttention",
                                               "MultiHeadAttention")
        )
        found: list[tuple[LayerRef, Tensor]] = []
        owner = threading.get_ident()
        with ExitStack() as stack:
            for ref in self.layers():
                layer = ref.handle
                if isinstance(layer, keras.Model):
                    continue
                if isinstance(layer, asked) or "attention" in type(layer).__name__.lower():
                    stack.enter_context(
                        self._wrap_attention(layer, ref, isinstance(layer, asked), owner, found)
                    )
            with self.shim.no_grad():
                self._call(x)
        return found

    @staticmethod
    @contextmanager
    def _wrap_attention(
        layer: Any, ref: LayerRef, ask: bool, owner: int, found: list[tuple[LayerRef, Tensor]]
    ) -> Iterator[None]:
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

        with _swapped_call(layer, wrapped):
            yield

    def embedding_layers(self) -> list[tuple[LayerRef, int, int | None]]:
        return [
            (ref, int(ref.handle.input_dim), 0 if getattr(ref.handle, "mask_zero", False)
             else None)
            for ref in self.layers()
            if isinstance(ref.handle, keras.layers.Embedding)
        ]

    def _slots(
        self, x: Tensor, layers: Sequence[LayerRef]
    ) -> tuple[list[tuple[Any, bool]], list[int], list[tuple[tuple[int, ...], str]]]:
        """The layers to wrap, the first slot of each, and every slot's shape and dtype."""
        record = self._record(x)
        n = self.ops.shape(x.ids if isinstance(x, ModelInput) else x)[0]
        watch: list[tuple[Any, bool]] = []
        offsets: list[int] = []
        slots: list[tuple[tuple[int, ...], str]] = []
        for ref in layers:
            layer = _layer_of(ref)
            calls = record["calls"].get(id(layer), [])
            if not calls:
                raise ExplanationError(self._unreachable(ref))
            watch.append((layer, isinstance(ref.handle, PreActivation)))
            offsets.append(len(slots))
            slots += [((n, *shape), dtype) for shape, dtype in calls]
        return watch, offsets, slots

    def _unreachable(self, ref: LayerRef) -> str:
        return (
            f"the output of layer {ref.name!r} cannot be reached in {self.model_name()}'s "
            "forward pass (the model does not call it through Layer.__call__, e.g. a "
            "subclassed model that uses its weights directly or never calls it). CAM methods "
            "need a reachable layer: pass another layer=, or build the model with the "
            "Sequential/functional API. Gradient methods (method='gradient', "
            "'gradient-x-input', 'smoothgrad', 'integrated-gradients') work on any model."
        )

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
        watch, offsets, slots = self._slots(x, layers)
        model_input = x
        seen = [0] * len(slots)

        def run(xi: Tensor, tap: Any) -> Tensor:
            def on_output(pos: int, call_no: int, t: Tensor) -> Tensor:
                slot = offsets[pos] + call_no
                last = offsets[pos + 1] if pos + 1 < len(offsets) else len(slots)
                if slot >= last:
                    raise ExplanationError(
                        f"layer {layers[pos].name!r} ran more often than when its output "
                        "shapes were recorded; choose another layer"
                    )
                seen[slot] = 1
                return tap(slot, t)

            with self._intercept(watch, on_output):
                if replace is None:
                    return self._scores(self._call(xi))
                # the replacement is what the shim differentiates with respect to
                with self._replacing(replace, xi):
                    return self._scores(self._call(model_input))

        try:
            scores_np, rounds, acts = self.shim.gradients(
                run, x if replace is None else replace[1], cotangents, wrt_input=wrt_input,
                slots=slots, cut=cut,
            )
        except ExplanationError:
            raise
        except ValueError as exc:
            raise ExplanationError(str(exc)) from exc
        for pos, ref in enumerate(layers):
            if not seen[offsets[pos]]:
                raise ExplanationError(self._unreachable(ref))
        passes = []
        for input_grad, grads in rounds:
            act_map: dict[LayerRef, list[Tensor]] = {}
            grad_map: dict[LayerRef, list[Tensor]] = {}
            for pos, ref in enumerate(layers):
                stop = offsets[pos + 1] if pos + 1 < len(offsets) else len(slots)
                act_map[ref] = [K.stop_gradient(a) for a in acts[offsets[pos]:stop]]
                grad_map[ref] = list(grads[offsets[pos]:stop])
            passes.append(GradPass(input_grad=input_grad, activations=act_map,
                                   layer_grads=grad_map))
        return scores_np, passes

    # -- layers -----------------------------------------------------------------------------
    def layers(self) -> list[LayerRef]:
        return [
            LayerRef(name=layer.name, index=i, handle=layer, kind=type(layer).__name__)
            for i, layer in enumerate(self._all)
        ]

    def find_layer(self, spec: Any) -> LayerRef:
        refs = self.layers()
        if isinstance(spec, keras.layers.Layer):
            for ref in refs:
                if ref.handle is spec:
                    return ref
            raise ExplanationError(
                f"the layer object {spec.name!r} ({type(spec).__name__}) is not a layer of "
                f"{self.model_name()}"
            )
        if isinstance(spec, (bool, np.bool_)):
            raise TypeError("layer must be a name, an index or a layer object, not a bool")
        if isinstance(spec, (int, np.integer)):
            # as model.get_layer(index=i) and eli5 0.16: an index into model.layers
            i, n = int(spec), len(self._top)
            if not -n <= i < n:
                raise ExplanationError(
                    f"layer index {i} is out of range: model.layers has {n} layers "
                    f"(indices 0..{n - 1}, or negative from the end)"
                )
            return refs[i % n]
        if isinstance(spec, str):
            for ref in refs:
                if ref.name == spec:
                    return ref
            close = difflib.get_close_matches(spec, [r.name for r in refs], n=5)
            hint = f" Did you mean one of {close}?" if close else ""
            raise ExplanationError(
                f"no layer named {spec!r} in {self.model_name()}.{hint} "
                "Layer names are those of model.layers (and of nested models' layers)."
            )
        raise TypeError(
            f"layer must be a name (str), an index (int) or a keras layer, "
            f"got {type(spec).__name__}"
        )

    def _record(self, x: Tensor) -> dict[str, Any]:
        """Output shapes of every layer call on inputs like ``x`` (cached per signature)."""
        cache = _CACHE.setdefault(self.model, {})
        sig = (
            x.signature() if isinstance(x, ModelInput)
            else (self.ops.shape(x)[1:], keras.backend.standardize_dtype(x.dtype))
        )
        key = ("record", tuple(id(layer) for layer in self._all), sig)
        if key in cache:
            return dict(cache[key])
        order: list[tuple[int, tuple[int, ...]]] = []
        calls: dict[int, list[tuple[tuple[int, ...], str]]] = {}
        watch = [(layer, False) for layer in self._all]

        def on_output(pos: int, _n: int, t: Tensor) -> Tensor:
            shape = self.ops.shape(t)[1:]
            order.append((pos, shape))
            calls.setdefault(id(self._all[pos]), []).append(
                (shape, keras.backend.standardize_dtype(t.dtype))
            )
            return t

        with self.shim.no_grad(), self._intercept(watch, on_output):
            self._scores(self._call(x[:1]))
        record = {"order": order, "calls": calls}
        cache[key] = record
        return dict(record)

    def spatial_layers(self, x: Tensor) -> list[tuple[LayerRef, tuple[int, ...]]]:
        refs = self.layers()
        out = []
        for pos, shape in self._record(x)["order"]:
            ref = refs[pos]
            if len(shape) >= 2 and not isinstance(ref.handle, keras.Model):
                # channel axis first, as the pipeline expects (shape[1:] is spatial)
                ch = self.layer_channel_axis(ref) % (len(shape) + 1) - 1
                out.append((ref, (shape[ch], *(s for i, s in enumerate(shape) if i != ch))))
        return out

    def layer_channel_axis(self, layer: LayerRef) -> int:
        obj = _layer_of(layer)
        fmt = getattr(obj, "data_format", None)
        if fmt == "channels_first":
            return 1
        if fmt == "channels_last":
            return -1
        if isinstance(obj, keras.layers.BatchNormalization):
            axis = obj.axis
            return int(axis[0] if isinstance(axis, (list, tuple)) else axis)
        if isinstance(obj, keras.layers.Dense):
            return -1
        return self.channel_axis

    def bias_sites(self) -> list[BiasSite]:
        """Dense/Conv/BatchNorm layers with a bias; where the input is known, only
        those the forward pass reaches (a subclassed model may use a layer's
        weights directly: FullGrad then warns that completeness does not hold)."""
        called = None
        if self._last_batch is not None:
            called = self._record(self._last_batch)["calls"]
        sites = []
        for ref in self.layers():
            layer = ref.handle
            if called is not None and id(layer) not in called:
                continue
            if isinstance(layer, (keras.layers.Dense, *_CONV_TYPES)):
                bias = getattr(layer, "bias", None)
                if bias is None:
                    continue
                act = getattr(layer, "activation", None)
                if act is not None and act is not keras.activations.linear:
                    ref = LayerRef(
                        name=f"{ref.name} (pre-activation)", index=ref.index,
                        handle=PreActivation(layer), kind=ref.kind,
                    )
                sites.append(BiasSite(ref, K.stop_gradient(K.convert_to_tensor(bias))))
            elif isinstance(layer, keras.layers.BatchNormalization):
                var = K.convert_to_tensor(layer.moving_variance)
                mean = K.convert_to_tensor(layer.moving_mean)
                scale = K.rsqrt(var + layer.epsilon)
                if layer.scale:
                    scale = scale * K.convert_to_tensor(layer.gamma)
                eff = -mean * scale
                if layer.center:
                    eff = eff + K.convert_to_tensor(layer.beta)
                sites.append(BiasSite(ref, K.stop_gradient(eff)))
        return sites

    def pass_budget_bytes(self) -> int:
        """A larger budget where the model's tensors live on an accelerator."""
        device = ""
        if self._last_batch is not None:
            device = str(getattr(self._last_batch, "device", "") or "")
        on_accelerator = any(tag in device.lower() for tag in ("gpu", "cuda", "tpu"))
        return ACCELERATOR_PASS_BUDGET if on_accelerator else CPU_PASS_BUDGET

    def bytes_per_row(self, x: Tensor) -> int:
        record = self._record(x)
        if isinstance(x, ModelInput):
            x = x.ids
        item = np.dtype(keras.backend.standardize_dtype(x.dtype)).itemsize
        acts = sum(int(np.prod(shape)) for _pos, shape in record["order"])
        # The sum of every layer output overcounts what a tape keeps (element-wise
        # layers share or drop theirs); 1.25× it matches what PyTorch's saved-tensor
        # hooks measure on the same networks (the torch adapter's estimate).
        return int(1.25 * acts * 4 + 4 * int(np.prod(self.ops.shape(x)[1:])) * item)

    # -- copies with randomised layers (eli5_nn.metrics.randomization_check) --------------
    #: models made by copy_model, the only ones randomize_layer changes
    _copies: weakref.WeakSet[Any] = weakref.WeakSet()

    def copy_model(self) -> Any:
        """``keras.models.clone_model`` with the model's weights copied in (a
        subclassed model needs ``get_config``/``from_config``; its clone is built
        on the last input seen)."""
        with _model_lock(self.model):
            try:
                clone = keras.models.clone_model(self.model)
                if len(clone.weights) != len(self.model.weights) and self._last_batch is not None:
                    KerasAdapter(clone)._call(self._last_batch)
                weights = self.model.get_weights()
                shapes = [tuple(v.shape) for v in clone.weights]
                if shapes != [w.shape for w in weights]:
                    raise ValueError("the clone's weights differ from the model's")
                clone.set_weights(weights)
            except ExplanationError:
                raise
            except Exception as exc:  # noqa: BLE001 - Keras raises many kinds here
                raise ExplanationError(
                    f"could not copy {self.model_name()} ({type(exc).__name__}: {exc}). The "
                    "randomisation check works on a copy: Sequential and functional models "
                    "can always be copied, subclassed ones need get_config()/from_config()."
                ) from exc
        KerasAdapter._copies.add(clone)
        return clone

    def parameter_layers(self, x: Tensor) -> list[LayerRef]:
        """Layers (not nested models) with trainable weights, in reverse order of
        their first call in a forward pass on ``x``."""
        refs = self.layers()
        called: list[LayerRef] = []
        for pos, _shape in self._record(x)["order"]:
            ref = refs[pos]
            layer = ref.handle
            if isinstance(layer, keras.Model) or ref in called:
                continue
            if getattr(layer, "trainable_weights", None):
                called.append(ref)
        return called[::-1]

    def randomize_layer(self, copy: Any, layer: LayerRef, seed: int) -> None:
        """Overwrite the trainable weights of ``copy``'s layer at ``layer``'s position."""
        from .base import randomized

        if copy is self.model or copy not in KerasAdapter._copies:
            raise ExplanationError(
                "randomize_layer changes only copies made by copy_model(), never the "
                "user's model"
            )
        layers = self._flatten(list(copy.layers))
        if layer.index >= len(layers) or layers[layer.index].name != layer.name:
            raise ExplanationError(f"the copy has no layer {layer.name!r} at {layer.index}")
        for i, v in enumerate(layers[layer.index].trainable_weights):
            values = np.asarray(K.convert_to_numpy(v.value))
            v.assign(randomized(values, seed * 1009 + i))
