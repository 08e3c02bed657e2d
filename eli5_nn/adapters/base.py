"""The adapter protocol: everything a method may ask of a framework.

Methods in :mod:`eli5_nn.methods` are written once against this protocol.
Framework code (hooks, autograd, GradientTape, ``jax.vjp``) lives only in the
adapter modules beside this one. Tensors cross the protocol as opaque framework
objects (``Tensor`` below); only small things (scores, shapes) become numpy.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ..errors import ExplanationError
from ..layout import Layout

#: A framework tensor (``torch.Tensor``, a TensorFlow tensor, a JAX array...).
Tensor = Any

#: Given the model's scores of a batch as numpy (N, C), return the cotangent
#: rounds: a list of (N, C) arrays. Round j asks for the gradient of
#: ``sum(scores * rounds[j])``; one forward pass serves all rounds.
CotangentFn = Callable[[np.ndarray], list[np.ndarray]]


@dataclass(frozen=True)
class LayerRef:
    """A layer of the model, as the adapter found it.

    ``handle`` is the framework object (a ``torch.nn.Module``, a Keras layer);
    ``name`` is how the user can name it; ``index`` its position in the
    adapter's layer listing.
    """

    name: str
    index: int
    handle: Hashable = field(compare=False, hash=False)
    kind: str = ""

    def __hash__(self) -> int:
        return hash((self.name, self.index))


@dataclass(frozen=True)
class BiasSite:
    """A layer whose output carries a per-channel bias (FullGrad).

    ``bias`` is the effective bias added along the layer output's channel axis
    (for BatchNorm in inference: ``beta - gamma * mean / sqrt(var + eps)``).
    """

    layer: LayerRef
    bias: Tensor


@dataclass
class GradPass:
    """What one backward round returns for a chunk of the batch.

    ``input_grad`` is ``d(sum(scores * cotangent)) / d(input)`` when asked for;
    ``activations[layer]`` / ``layer_grads[layer]`` hold, for each call of the
    layer in the forward pass, its output and the gradient with respect to it.
    """

    input_grad: Tensor | None
    activations: dict[LayerRef, list[Tensor]]
    layer_grads: dict[LayerRef, list[Tensor]]


@dataclass(frozen=True)
class ModelInput:
    """The inputs of a model that takes more than one (token ids plus lengths, a mask...).

    ``values`` are framework tensors with a leading batch axis; ``keys`` names
    them when the model takes them by name (a dict ``doc``), else they are
    positional (a tuple ``doc``). ``token`` is the index of the token ids in
    ``values``: attribution goes there.
    """

    values: tuple[Tensor, ...]
    keys: tuple[str, ...] | None
    token: int

    @property
    def ids(self) -> Tensor:
        """The token-id tensor."""
        return self.values[self.token]

    def __getitem__(self, sl: slice) -> ModelInput:
        """The inputs of the docs in slice ``sl``."""
        return ModelInput(tuple(v[sl] for v in self.values), self.keys, self.token)

    def signature(self) -> tuple[Any, ...]:
        """Shapes (batch axis dropped) and dtypes, for cache keys."""
        return tuple((tuple(v.shape[1:]), str(v.dtype)) for v in self.values)

    def rows(self, ops: Ops, docs: np.ndarray) -> ModelInput:
        """The same inputs for the docs ``docs`` (in that order, repeats allowed)."""
        return ModelInput(tuple(ops.take(v, docs) for v in self.values), self.keys, self.token)


#: keys of a dict ``doc`` read as the token ids, in order of preference
TOKEN_KEYS = ("input_ids", "token_ids", "ids", "tokens", "x")


def pack_input(doc: Any, convert: Callable[[Any], Tensor]) -> Tensor:
    """``convert(doc)``, or a :class:`ModelInput` of converted parts for a tuple or
    dict ``doc`` (a model with several inputs: the token ids are the first item
    of a tuple, or the first of :data:`TOKEN_KEYS` in a dict, else its first key)."""
    if isinstance(doc, tuple):
        if not doc:
            raise ExplanationError("doc is an empty tuple; pass the model's input(s)")
        return ModelInput(tuple(convert(v) for v in doc), None, 0)
    if isinstance(doc, Mapping):
        if not doc:
            raise ExplanationError("doc is an empty dict; pass the model's input(s)")
        keys = tuple(str(k) for k in doc)
        token = next((keys.index(k) for k in TOKEN_KEYS if k in keys), 0)
        return ModelInput(tuple(convert(v) for v in doc.values()), keys, token)
    return convert(doc)


#: A layer whose output a forward pass replaces with the given tensor.
Replacement = tuple[LayerRef, Tensor]


class Ops(Protocol):
    """The few array operations methods need, done in the framework."""

    def asarray(self, value: np.ndarray, like: Tensor) -> Tensor:
        """A tensor with ``value``, on the device and dtype of ``like``."""

    def to_numpy(self, x: Tensor) -> np.ndarray:
        """A numpy copy of ``x`` (detached from any graph)."""

    def sum(self, x: Tensor, axis: int | tuple[int, ...], keepdims: bool = False) -> Tensor:
        """Sum over ``axis``."""

    def mean(self, x: Tensor, axis: int | tuple[int, ...], keepdims: bool = False) -> Tensor:
        """Mean over ``axis``."""

    def relu(self, x: Tensor) -> Tensor:
        """``max(x, 0)``."""

    def abs(self, x: Tensor) -> Tensor:
        """``|x|``."""

    def amax(self, x: Tensor, axis: int | tuple[int, ...], keepdims: bool = False) -> Tensor:
        """Maximum over ``axis``."""

    def amin(self, x: Tensor, axis: int | tuple[int, ...], keepdims: bool = False) -> Tensor:
        """Minimum over ``axis``."""

    def where(self, cond: Tensor, x: Tensor | float, y: Tensor | float) -> Tensor:
        """Elementwise choice; ``x`` or ``y`` may be a Python float (no tensor made)."""

    def zeros_like(self, x: Tensor) -> Tensor:
        """Zeros of ``x``'s shape, dtype and device."""

    def concat(self, xs: Sequence[Tensor], axis: int = 0) -> Tensor:
        """Concatenate along ``axis``."""

    def take(self, x: Tensor, indices: np.ndarray, axis: int = 0) -> Tensor:
        """Select ``indices`` along ``axis``."""

    def reshape(self, x: Tensor, shape: tuple[int, ...]) -> Tensor:
        """Reshape ``x``."""

    def matmul(self, a: Tensor, b: Tensor) -> Tensor:
        """Batched matrix product with broadcasting."""

    def moveaxis(self, x: Tensor, source: int, destination: int) -> Tensor:
        """Move one axis."""

    def normal(self, like: Tensor, std: Tensor, seed: int) -> Tensor:
        """Gaussian noise of ``like``'s shape scaled by ``std`` (broadcast), seeded."""

    def all_finite(self, x: Tensor) -> bool:
        """Whether every value of ``x`` is finite."""

    def shape(self, x: Tensor) -> tuple[int, ...]:
        """The shape of ``x`` as a tuple of ints."""


class Adapter(Protocol):
    """What a framework must provide; see :mod:`eli5_nn.adapters.torch`."""

    framework: str

    @property
    def ops(self) -> Ops:
        """The framework's array operations."""

    def input_layout(self, x: Tensor) -> Layout:
        """The layout of the model input ``x`` (dense input: ``"CHW"`` or ``"HWC"``,
        ``"C"`` for a vector...), as the model states it (e.g. Keras data format)."""

    def model_name(self) -> str:
        """A short name for the model (``Explanation.estimator``)."""

    def session(self) -> AbstractContextManager[None]:
        """Hold the model for one explanation call.

        Inside, the model is in inference mode and calls from other threads on
        the same model wait; on exit every change is undone, also on error.
        """

    def as_batch(self, doc: Any) -> Tensor:
        """Convert ``doc`` (numpy or framework tensor, leading batch axis) to
        the model's device and dtype, without modifying the caller's object."""

    def is_floating(self, x: Tensor) -> bool:
        """Whether ``x`` holds floating-point values."""

    def forward(self, x: Tensor, replace: Replacement | None = None) -> np.ndarray:
        """Scores (N, C) of a batch as numpy, without building a graph.

        ``x`` is a tensor or a :class:`ModelInput`. With ``replace=(layer, t)``
        that layer's output is ``t`` instead of what it computes.
        """

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
        """One forward pass and one backward pass per cotangent round.

        Returns the scores (N, C) as numpy and one :class:`GradPass` per round.
        With ``cut_at_layer`` (one layer, no input gradient) the backward pass
        stops at that layer and the forward pass before it builds no graph.
        With ``replace=(layer, t)`` the layer's output is replaced by ``t`` and
        ``input_grad`` is the gradient with respect to ``t`` (text methods
        work in embedding space this way).
        """

    def activations(
        self, x: Tensor, layers: Sequence[LayerRef], first_only: bool = False
    ) -> dict[LayerRef, list[Tensor]]:
        """The outputs of ``layers`` in one forward pass without a graph (one
        entry per call; for a layer returning several tensors, all of them as
        a tuple). With ``first_only`` the pass stops once every layer has
        given its first output (the rest of the model does not run)."""

    def attention_weights(self, x: Tensor) -> list[tuple[LayerRef, Tensor]]:
        """The attention weights of every attention layer call in one forward pass
        (asking layers that return them only on request to return them)."""

    def embedding_layers(self) -> list[tuple[LayerRef, int, int | None]]:
        """Token embedding layers as ``(layer, vocabulary size, padding id or None)``."""

    def layers(self) -> list[LayerRef]:
        """Every layer the user may name, in a stable order."""

    def find_layer(self, spec: Any) -> LayerRef:
        """Resolve ``layer=`` (name, index or the layer object itself)."""

    def spatial_layers(self, x: Tensor) -> list[tuple[LayerRef, tuple[int, ...], Layout]]:
        """Layers whose outputs have channel and spatial/token axes on input ``x``:
        each with its output's row shape (batch axis dropped, axes as the layer
        returns them) and :class:`~eli5_nn.layout.Layout`, in the order their
        forward passes end."""

    def layer_layout(self, layer: LayerRef, x: Tensor) -> Layout:
        """The layout of ``layer``'s output on input ``x``: which axis holds
        channels, which are spatial or token axes, and for a token sequence that
        covers an image its prefix tokens and grid. Raises
        :class:`ExplanationError` naming ``layout=`` where it cannot be stated."""

    def decompose(self, x: Tensor, masks: np.ndarray) -> np.ndarray:
        """Contextual decomposition: for each row ``i`` of ``x`` (a tensor, or a
        :class:`ModelInput` whose first positional input is the token ids), the
        relevant part (C,) of the model's scores when ``masks[i]`` marks the
        relevant region (numpy: the shape of a row of ``x``, or (T,) for token
        ids). Returns (N, C) float64. Frameworks without CD raise
        :class:`ExplanationError` saying which methods to use instead."""

    def bias_sites(self) -> list[BiasSite]:
        """Layers with an (effective) per-channel bias, for FullGrad."""

    def bytes_per_row(self, x: Tensor) -> int:
        """Memory one input row costs in a forward+backward pass (estimate)."""

    def pass_budget_bytes(self) -> int:
        """Memory one automatic chunk may take: small on CPUs, where batches past a
        few hundred MB run slower (caches), larger on accelerators."""

    #: the most rows of one automatic pass without a graph (occlusion variants, scores)
    max_forward_rows: int
    @property
    def max_gradient_rows(self) -> int:
        """The most rows of one automatic pass with a graph (steps, samples), memory
        allowing."""

    # -- copies with randomised layers (eli5_nn.metrics.randomization_check) --------------
    def copy_model(self) -> Any:
        """An independent copy of the model with the same weights; the user's model is
        not changed. Only copies made here may be passed to :meth:`randomize_layer`."""

    def parameter_layers(self, x: Tensor) -> list[LayerRef]:
        """The layers with trainable parameters of their own that a forward pass on
        ``x`` runs, top down: the layer called last (nearest the output) first."""

    def randomize_layer(self, copy: Any, layer: LayerRef, seed: int) -> None:
        """In ``copy`` (from :meth:`copy_model`), replace the trainable parameters of
        the layer matching ``layer`` (of this adapter's model) by
        :func:`randomized` values drawn with ``seed``."""


#: per-pass budgets for ``batch_size=None`` by device kind
CPU_PASS_BUDGET = 384 << 20
#: ``max_forward_rows`` where nothing speaks for another cap: past ~512 rows a
#: convolution's per-row cost rises on CPU (text CNN occlusion)
MAX_FORWARD_ROWS = 512
#: ``max_gradient_rows`` where nothing speaks for another cap
MAX_GRADIENT_ROWS = 256
ACCELERATOR_PASS_BUDGET = 2 << 30


class StopForward(Exception):  # noqa: N818 - a signal, not an error
    """Raised inside a forward pass to end it early (caught by the adapter)."""


def cuts_at_layer(cut_at_layer: bool, wrt_input: bool, layers: Sequence[LayerRef]) -> bool:
    """Whether a gradient pass asked to cut at its layer does: one tapped layer and no
    input gradient. The model then runs without a graph up to that layer, whose output
    becomes the leaf the gradients start from (CAM methods)."""
    return cut_at_layer and not wrt_input and len(layers) == 1


def iter_chunks(n: int, size: int) -> Iterator[slice]:
    """Slices covering ``range(n)`` in pieces of at most ``size``."""
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def randomized(values: np.ndarray, seed: int) -> np.ndarray:
    """Gaussian values with the mean and standard deviation of ``values`` (its
    shape and dtype); a tensor with no spread gets the spread ``|mean|``, so only
    all-zero tensors stay zero. The rule of the randomisation check, shared by
    every adapter so frameworks randomise alike."""
    v = np.asarray(values, dtype=np.float64)
    mean = float(v.mean()) if v.size else 0.0
    std = float(v.std()) if v.size else 0.0
    rng = np.random.default_rng(int(seed))
    out = rng.normal(mean, std if std > 0 else abs(mean), size=v.shape)
    return out.astype(np.asarray(values).dtype)
