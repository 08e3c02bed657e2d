"""A numpy adapter with analytic gradients: the methods tested with no framework.

:class:`FakeAdapter` implements the adapter protocol of
:mod:`eli5_nn.adapters.base` for :class:`FakeModel`, a chain of small numpy
layers, each with its forward pass and its vector-Jacobian product written by
hand. The models built by :func:`linear_model`, :func:`conv_model` and
:func:`text_model` have closed-form explanations (gradient = weights, Integrated
Gradients = ``(x - b) * w``, Grad-CAM = ``(V_c / HW) * A``...), so the tests in
``tests/conformance/test_fake_algebra.py`` check each method's algebra exactly.

This module imports numpy and eli5-nn's framework-free modules only.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from eli5_nn.adapters.base import (
    CPU_PASS_BUDGET,
    MAX_FORWARD_ROWS,
    MAX_GRADIENT_ROWS,
    BiasSite,
    CotangentFn,
    GradPass,
    LayerRef,
    Replacement,
    pack_input,
    randomized,
)
from eli5_nn.errors import DecompositionError, Eli5NNTypeError, ExplanationError
from eli5_nn.layout import Layout

Array = np.ndarray


# -- layers: forward, vector-Jacobian product, layout of the output ----------------------------
class Layer:
    """One layer: ``forward(x)``, ``vjp(x, y, gy) -> gx`` and its output's ``axes``
    (``None``: the input's). ``bias`` is its per-channel bias (FullGrad)."""

    kind = "Layer"
    axes: str | None = None
    bias: Array | None = None

    def __init__(self, name: str) -> None:
        self.name = name

    def params(self) -> dict[str, Array]:
        return {k: v for k, v in vars(self).items() if isinstance(v, np.ndarray)}

    def forward(self, x: Array) -> Array:
        raise NotImplementedError

    def vjp(self, x: Array, y: Array, gy: Array) -> Array:
        raise NotImplementedError

    def cd(self, rel: Array, irr: Array) -> tuple[Array, Array]:
        """Contextual decomposition of a linear layer: the bias goes to the irrelevant part."""
        out = self.forward(rel + irr)
        rel_out = self.forward(rel) - (0.0 if self.bias is None else self._bias_term(rel))
        return rel_out, out - rel_out

    def _bias_term(self, x: Array) -> Array:
        return self.forward(np.zeros_like(x))


class Flatten(Layer):
    kind, axes = "Flatten", "C"

    def forward(self, x: Array) -> Array:
        return x.reshape(len(x), -1)

    def vjp(self, x: Array, y: Array, gy: Array) -> Array:
        return gy.reshape(x.shape)


class Dense(Layer):
    """``y = x W^T + b`` on the last axis (a vector, or every token of a sequence)."""

    kind = "Dense"

    def __init__(self, name: str, w: Array, b: Array) -> None:
        super().__init__(name)
        self.w, self.bias = np.asarray(w, dtype=np.float64), np.asarray(b, dtype=np.float64)

    def forward(self, x: Array) -> Array:
        return x @ self.w.T + self.bias

    def vjp(self, x: Array, y: Array, gy: Array) -> Array:
        return gy @ self.w


class Conv1x1(Layer):
    """A 1×1 convolution, channels first: ``y_m = sum_c K_mc x_c + b_m``."""

    kind, axes = "Conv1x1", "CHW"

    def __init__(self, name: str, k: Array, b: Array) -> None:
        super().__init__(name)
        self.k, self.bias = np.asarray(k, dtype=np.float64), np.asarray(b, dtype=np.float64)

    def forward(self, x: Array) -> Array:
        return np.einsum("mc,nchw->nmhw", self.k, x) + self.bias[:, None, None]

    def vjp(self, x: Array, y: Array, gy: Array) -> Array:
        return np.einsum("mc,nmhw->nchw", self.k, gy)


class ReLU(Layer):
    kind = "ReLU"

    def forward(self, x: Array) -> Array:
        return np.maximum(x, 0.0)

    def vjp(self, x: Array, y: Array, gy: Array) -> Array:
        return gy * (x > 0)

    def cd(self, rel: Array, irr: Array) -> tuple[Array, Array]:
        irr_out = np.maximum(irr, 0.0)
        return np.maximum(rel + irr, 0.0) - irr_out, irr_out


class MeanPool(Layer):
    """The mean over the map axes: (N, C, H, W) → (N, C) or (N, T, C) → (N, C)."""

    kind, axes = "MeanPool", "C"

    def __init__(self, name: str, axis: tuple[int, ...]) -> None:
        super().__init__(name)
        self.axis = axis

    def forward(self, x: Array) -> Array:
        return x.mean(axis=self.axis)

    def vjp(self, x: Array, y: Array, gy: Array) -> Array:
        size = int(np.prod([x.shape[a] for a in self.axis]))
        return np.broadcast_to(np.expand_dims(gy, self.axis), x.shape) / size


class Embedding(Layer):
    kind, axes = "Embedding", "TC"

    def __init__(self, name: str, table: Array, pad: int | None) -> None:
        super().__init__(name)
        self.table, self.pad = np.asarray(table, dtype=np.float64), pad

    def forward(self, x: Array) -> Array:
        return self.table[x]

    def vjp(self, x: Array, y: Array, gy: Array) -> Array:
        raise ExplanationError("token ids have no gradient")


class Attention(Layer):
    """Attention pooling over tokens: ``w = softmax_t(h_t . q)``, ``y = sum_t w_t h_t``."""

    kind, axes = "Attention", "C"

    def __init__(self, name: str, q: Array) -> None:
        super().__init__(name)
        self.q = np.asarray(q, dtype=np.float64)

    def weights(self, h: Array) -> Array:
        s = h @ self.q
        e = np.exp(s - s.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def forward(self, x: Array) -> Array:
        return np.einsum("nt,ntc->nc", self.weights(x), x)

    def vjp(self, x: Array, y: Array, gy: Array) -> Array:
        w = self.weights(x)
        gw = np.einsum("nc,ntc->nt", gy, x)
        gs = w * (gw - (w * gw).sum(axis=1, keepdims=True))
        return w[..., None] * gy[:, None, :] + gs[..., None] * self.q

    def cd(self, rel: Array, irr: Array) -> tuple[Array, Array]:
        raise DecompositionError("the fake Attention layer has no decomposition rule")


class SelfAttention(Layer):
    """Token-to-token attention, values = inputs:
    ``A = softmax_s(h_t Wq . h_s Wk / sqrt(k))``, ``y_t = sum_s A_ts h_s``."""

    kind, axes = "SelfAttention", "TC"

    def __init__(self, name: str, wq: Array, wk: Array) -> None:
        super().__init__(name)
        self.wq, self.wk = np.asarray(wq, dtype=np.float64), np.asarray(wk, dtype=np.float64)

    def weights(self, h: Array) -> Array:
        s = (h @ self.wq) @ np.swapaxes(h @ self.wk, 1, 2) / np.sqrt(self.wq.shape[1])
        e = np.exp(s - s.max(axis=2, keepdims=True))
        return e / e.sum(axis=2, keepdims=True)

    def forward(self, x: Array) -> Array:
        return self.weights(x) @ x

    def vjp(self, x: Array, y: Array, gy: Array) -> Array:
        a, c = self.weights(x), np.sqrt(self.wq.shape[1])
        ga = gy @ np.swapaxes(x, 1, 2)  # d/dA_ts = gy_t . h_s
        gs = a * (ga - (a * ga).sum(axis=2, keepdims=True)) / c
        q, k = x @ self.wq, x @ self.wk
        gq, gk = gs @ k, np.swapaxes(gs, 1, 2) @ q
        return np.swapaxes(a, 1, 2) @ gy + gq @ self.wq.T + gk @ self.wk.T

    def cd(self, rel: Array, irr: Array) -> tuple[Array, Array]:
        raise DecompositionError("the fake SelfAttention layer has no decomposition rule")


class FakeModel:
    """A chain of layers; ``training`` and ``calls`` are state a call must leave alone."""

    def __init__(self, name: str, layers: Sequence[Layer], input_axes: str) -> None:
        self.name, self.layers, self.input_axes = name, list(layers), input_axes
        self.training = False
        self.lock = threading.RLock()

    def __call__(self, x: Array) -> Array:
        for layer in self.layers:
            x = layer.forward(x)
        return x


# -- the three model families -------------------------------------------------------------------
def linear_model(shape: tuple[int, ...] = (3, 4, 4), classes: int = 3, seed: int = 0
                 ) -> FakeModel:
    """``scores = flatten(x) W^T + b`` on inputs of ``shape`` (channels first)."""
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    return FakeModel("FakeLinear", [
        Flatten("flatten"),
        Dense("fc", rng.normal(size=(classes, n)), rng.normal(size=classes)),
    ], "CHW" if len(shape) == 3 else "C")


def mlp_model(shape: tuple[int, ...] = (3, 4, 4), hidden: int = 6, classes: int = 3,
              seed: int = 0) -> FakeModel:
    """flatten → dense → ReLU → dense (piecewise linear: FullGrad sums to the score)."""
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    return FakeModel("FakeMLP", [
        Flatten("flatten"),
        Dense("hidden", rng.normal(size=(hidden, n)), rng.normal(size=hidden) * 0.5),
        ReLU("relu"),
        Dense("fc", rng.normal(size=(classes, hidden)), rng.normal(size=classes)),
    ], "CHW" if len(shape) == 3 else "C")


def conv_model(channels: int = 3, maps: int = 4, classes: int = 3, seed: int = 0) -> FakeModel:
    """1×1 conv → ReLU → global average pool → dense: Grad-CAM at ``relu`` is
    ``(V_c / HW) * A`` by hand; piecewise linear, so FullGrad sums to the score."""
    rng = np.random.default_rng(seed)
    return FakeModel("FakeConv", [
        Conv1x1("conv", rng.normal(size=(maps, channels)), rng.normal(size=maps) * 0.5),
        ReLU("relu"),
        MeanPool("pool", (2, 3)),
        Dense("fc", rng.normal(size=(classes, maps)), rng.normal(size=classes)),
    ], "CHW")


def text_model(vocab: int = 20, dim: int = 5, maps: int = 4, classes: int = 2, seed: int = 0,
               attention: bool = False, relu: bool = False, self_attention: int = 0
               ) -> FakeModel:
    """Embedding (padding id 0) → per-token dense → mean over tokens → dense (the
    score is a sum of per-token terms); ``relu`` adds a ReLU after the per-token
    dense; ``self_attention`` that many token-to-token attention layers after it;
    ``attention`` a ReLU and attention pooling instead of the mean."""
    rng = np.random.default_rng(seed)
    table = rng.normal(size=(vocab, dim))
    table[0] = 0.0
    layers: list[Layer] = [
        Embedding("embedding", table, 0),
        Dense("token_fc", rng.normal(size=(maps, dim)), rng.normal(size=maps) * 0.5),
    ]
    layers[1].axes = "TC"
    if attention or relu:
        layers.append(ReLU("relu"))
    for i in range(self_attention):
        layers.append(SelfAttention(f"self_attention{i}", rng.normal(size=(maps, 3)),
                                    rng.normal(size=(maps, 3))))
    if attention:
        layers.append(Attention("attention", rng.normal(size=maps)))
    else:
        layers.append(MeanPool("pool", (1,)))
    layers.append(Dense("fc", rng.normal(size=(classes, maps)), rng.normal(size=classes)))
    return FakeModel("FakeText", layers, "T")


# -- the adapter ------------------------------------------------------------------------------
class FakeOps:
    """:class:`~eli5_nn.adapters.base.Ops` in numpy."""

    def asarray(self, value: Array, like: Array) -> Array:
        return np.array(value, dtype=np.asarray(like).dtype)

    def to_numpy(self, x: Array) -> Array:
        return np.array(x)

    def sum(self, x: Array, axis: int | tuple[int, ...], keepdims: bool = False) -> Array:
        return np.sum(x, axis=axis, keepdims=keepdims)

    def mean(self, x: Array, axis: int | tuple[int, ...], keepdims: bool = False) -> Array:
        return np.mean(x, axis=axis, keepdims=keepdims)

    def relu(self, x: Array) -> Array:
        return np.maximum(x, 0.0)

    def abs(self, x: Array) -> Array:
        return np.abs(x)

    def amax(self, x: Array, axis: int | tuple[int, ...], keepdims: bool = False) -> Array:
        return np.amax(x, axis=axis, keepdims=keepdims)

    def amin(self, x: Array, axis: int | tuple[int, ...], keepdims: bool = False) -> Array:
        return np.amin(x, axis=axis, keepdims=keepdims)

    def where(self, cond: Array, x: Array | float, y: Array | float) -> Array:
        return np.where(cond, x, y)

    def zeros_like(self, x: Array) -> Array:
        return np.zeros_like(x)

    def concat(self, xs: Sequence[Array], axis: int = 0) -> Array:
        return np.concatenate(list(xs), axis=axis)

    def take(self, x: Array, indices: Array, axis: int = 0) -> Array:
        return np.take(x, np.asarray(indices, dtype=np.int64), axis=axis)

    def reshape(self, x: Array, shape: tuple[int, ...]) -> Array:
        return np.reshape(x, shape)

    def matmul(self, a: Array, b: Array) -> Array:
        return np.matmul(a, b)

    def moveaxis(self, x: Array, source: int, destination: int) -> Array:
        return np.moveaxis(x, source, destination)

    def normal(self, like: Array, std: Any, seed: int) -> Array:
        return np.random.default_rng(int(seed)).standard_normal(np.shape(like)) * std

    def all_finite(self, x: Array) -> bool:
        x = np.asarray(x)
        return not np.issubdtype(x.dtype, np.floating) or bool(np.isfinite(x).all())

    def shape(self, x: Array) -> tuple[int, ...]:
        return tuple(int(s) for s in np.shape(x))


Trace = list[tuple[Array, Array]]


class FakeAdapter:
    """The adapter protocol for a :class:`FakeModel` (numpy, exact gradients)."""

    __eli5_nn_adapter__ = True
    framework = "numpy"

    def __init__(self, model: FakeModel) -> None:
        self.model = model
        self.ops = FakeOps()

    # -- identity, state, inputs ----------------------------------------------------------
    def model_name(self) -> str:
        return self.model.name

    @contextmanager
    def session(self) -> Iterator[None]:
        with self.model.lock:
            training = self.model.training
            try:
                self.model.training = False
                yield
            finally:
                self.model.training = training

    def as_batch(self, doc: Any) -> Array:
        return pack_input(doc, self._as_array)

    @staticmethod
    def _as_array(doc: Any) -> Array:
        arr = np.asarray(doc)
        if np.issubdtype(arr.dtype, np.floating):
            return arr.astype(np.float64)  # a copy: the caller's array is never touched
        if np.issubdtype(arr.dtype, np.integer):
            return arr.astype(np.int64)
        raise Eli5NNTypeError(f"expected a numeric array, got dtype {arr.dtype}")

    def is_floating(self, x: Array) -> bool:
        return bool(np.issubdtype(np.asarray(x).dtype, np.floating))

    # -- layouts -----------------------------------------------------------------------------
    def _axes(self, index: int) -> str:
        for layer in self.model.layers[index::-1] if index >= 0 else []:
            if layer.axes is not None:
                return layer.axes
        return self.model.input_axes

    def input_layout(self, x: Array) -> Layout:
        return Layout(self.model.input_axes)

    def layer_layout(self, layer: LayerRef, x: Array) -> Layout:
        layout = Layout(self._axes(layer.index))
        shape = self._trace(x[:1], None)[layer.index][1].shape[1:]
        layout.check(tuple(shape), f"the output of layer {layer.name!r}; pass layout=")
        return layout

    # -- passes ------------------------------------------------------------------------------
    def _trace(self, x: Array, replace: Replacement | None) -> Trace:
        trace: Trace = []
        h = np.asarray(x)
        for i, layer in enumerate(self.model.layers):
            y = layer.forward(h)
            if replace is not None and replace[0].index == i:
                new = np.asarray(replace[1])
                if new.shape != y.shape:
                    raise ExplanationError(
                        f"layer {layer.name!r} outputs shape {y.shape}; its replacement has "
                        f"shape {new.shape}"
                    )
                y = new
            trace.append((h, y))
            h = y
        return trace

    @staticmethod
    def _scores(trace: Trace) -> Array:
        out = np.asarray(trace[-1][1], dtype=np.float64)
        return out[:, None] if out.ndim == 1 else out

    def forward(self, x: Array, replace: Replacement | None = None) -> Array:
        return self._scores(self._trace(x, replace))

    def gradients(
        self, x: Array, cotangents: CotangentFn, *, wrt_input: bool,
        layers: Sequence[LayerRef] = (), cut_at_layer: bool = False,
        replace: Replacement | None = None,
    ) -> tuple[Array, list[GradPass]]:
        trace = self._trace(x, replace)
        scores = self._scores(trace)
        rounds = cotangents(scores.copy())
        if wrt_input:
            stop = replace[0].index if replace is not None else -1
        else:
            stop = min((ref.index for ref in layers), default=len(trace))
        passes = []
        for cot in rounds:
            g = np.asarray(cot, dtype=np.float64).reshape(np.shape(trace[-1][1]))
            at: dict[int, Array] = {}
            for i in range(len(trace) - 1, stop - 1, -1):
                at[i] = g
                if i > stop:
                    g = self.model.layers[i].vjp(trace[i][0], trace[i][1], g)
            passes.append(GradPass(
                input_grad=at[stop] if wrt_input else None,
                activations={ref: [trace[ref.index][1]] for ref in layers},
                layer_grads={ref: [at[ref.index]] for ref in layers},
            ))
        return scores, passes

    def activations(
        self, x: Array, layers: Sequence[LayerRef], first_only: bool = False
    ) -> dict[LayerRef, list[Array]]:
        trace = self._trace(x, None)
        return {ref: [trace[ref.index][1]] for ref in layers}

    def attention_weights(self, x: Array) -> list[tuple[LayerRef, Array]]:
        trace = self._trace(x, None)
        return [(ref, ref.handle.weights(trace[ref.index][0]))  # type: ignore[attr-defined]
                for ref in self.layers() if isinstance(ref.handle, (Attention, SelfAttention))]

    def decompose(self, x: Array, masks: Array) -> Array:
        """Contextual decomposition with linear rules (bias to the irrelevant part)
        and ``relevant = ReLU(rel + irr) - ReLU(irr)`` for ReLU."""
        layers = self.model.layers
        masks = np.asarray(masks, dtype=np.float64)
        if isinstance(layers[0], Embedding):
            e = layers[0].forward(np.asarray(x))
            rel, irr, rest = e * masks[..., None], e * (1.0 - masks[..., None]), layers[1:]
        else:
            x = np.asarray(x, dtype=np.float64)
            rel, irr, rest = x * masks, x * (1.0 - masks), layers
        for layer in rest:
            rel, irr = layer.cd(rel, irr)
        return np.asarray(rel, dtype=np.float64)

    # -- layers ------------------------------------------------------------------------------
    def layers(self) -> list[LayerRef]:
        return [LayerRef(name=layer.name, index=i, handle=layer, kind=layer.kind)
                for i, layer in enumerate(self.model.layers)]

    def find_layer(self, spec: Any) -> LayerRef:
        refs = self.layers()
        for ref in refs:
            if spec is ref.handle or (isinstance(spec, str) and spec == ref.name):
                return ref
        if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool) \
                and -len(refs) <= spec < len(refs):
            return refs[int(spec)]
        raise ExplanationError(f"no layer {spec!r} in {self.model.name}")

    def spatial_layers(self, x: Array) -> list[tuple[LayerRef, tuple[int, ...], Layout]]:
        trace = self._trace(x[:1], None)
        return [(ref, tuple(trace[ref.index][1].shape[1:]), Layout(self._axes(ref.index)))
                for ref in self.layers() if trace[ref.index][1].ndim >= 3]

    def embedding_layers(self) -> list[tuple[LayerRef, int, int | None]]:
        return [(ref, len(ref.handle.table), ref.handle.pad)  # type: ignore[attr-defined]
                for ref in self.layers() if isinstance(ref.handle, Embedding)]

    def bias_sites(self) -> list[BiasSite]:
        return [BiasSite(ref, ref.handle.bias)  # type: ignore[attr-defined]
                for ref in self.layers() if getattr(ref.handle, "bias", None) is not None]

    def bytes_per_row(self, x: Array) -> int:
        return 1 << 10

    def pass_budget_bytes(self) -> int:
        return CPU_PASS_BUDGET

    max_forward_rows = MAX_FORWARD_ROWS
    max_gradient_rows = MAX_GRADIENT_ROWS

    # -- copies with randomised layers ---------------------------------------------------------
    def copy_model(self) -> FakeModel:
        clone = FakeModel(self.model.name, copy.deepcopy(self.model.layers),
                          self.model.input_axes)
        clone.training = self.model.training
        return clone

    def parameter_layers(self, x: Array) -> list[LayerRef]:
        return [ref for ref in self.layers() if ref.handle.params()][::-1]  # type: ignore

    def randomize_layer(self, copy: Any, layer: LayerRef, seed: int) -> None:
        if copy is self.model:
            raise ExplanationError("randomize_layer changes only copies made by copy_model()")
        target = copy.layers[layer.index]
        for i, (key, value) in enumerate(sorted(target.params().items())):
            setattr(target, key, randomized(value, seed * 1009 + i))
