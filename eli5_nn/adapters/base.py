"""The adapter protocol: everything a method may ask of a framework.

Methods in :mod:`eli5_nn.methods` are written once against this protocol.
Framework code (hooks, autograd, GradientTape, ``jax.vjp``) lives only in the
adapter modules beside this one. Tensors cross the protocol as opaque framework
objects (``Tensor`` below); only small things (scores, shapes) become numpy.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

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

    def where(self, cond: Tensor, x: Tensor, y: Tensor) -> Tensor:
        """Elementwise choice."""

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
    #: the channel axis of the model's input (with the batch axis)
    channel_axis: int

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

    def forward(self, x: Tensor) -> np.ndarray:
        """Scores (N, C) of a batch as numpy, without building a graph."""

    def gradients(
        self,
        x: Tensor,
        cotangents: CotangentFn,
        *,
        wrt_input: bool,
        layers: Sequence[LayerRef] = (),
        cut_at_layer: bool = False,
    ) -> tuple[np.ndarray, list[GradPass]]:
        """One forward pass and one backward pass per cotangent round.

        Returns the scores (N, C) as numpy and one :class:`GradPass` per round.
        With ``cut_at_layer`` (one layer, no input gradient) the backward pass
        stops at that layer and the forward pass before it builds no graph.
        """

    def layers(self) -> list[LayerRef]:
        """Every layer the user may name, in a stable order."""

    def find_layer(self, spec: Any) -> LayerRef:
        """Resolve ``layer=`` (name, index or the layer object itself)."""

    def spatial_layers(self, x: Tensor) -> list[tuple[LayerRef, tuple[int, ...]]]:
        """Layers whose outputs have channel and spatial/temporal axes, with
        those output shapes (batch axis dropped), in the order their forward
        passes end."""

    def layer_channel_axis(self, layer: LayerRef) -> int:
        """The channel axis of ``layer``'s output (with the batch axis)."""

    def bias_sites(self) -> list[BiasSite]:
        """Layers with an (effective) per-channel bias, for FullGrad."""

    def bytes_per_row(self, x: Tensor) -> int:
        """Memory one input row costs in a forward+backward pass (estimate)."""

    def pass_budget_bytes(self) -> int:
        """Memory one automatic chunk may take: small on CPUs, where batches past a
        few hundred MB run slower (caches), larger on accelerators."""


#: per-pass budgets for ``batch_size=None`` by device kind
CPU_PASS_BUDGET = 384 << 20
ACCELERATOR_PASS_BUDGET = 2 << 30


class ExplanationError(ValueError):
    """Bad input or arguments; the message says what was expected."""


def iter_chunks(n: int, size: int) -> Iterator[slice]:
    """Slices covering ``range(n)`` in pieces of at most ``size``."""
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))
