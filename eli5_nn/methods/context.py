"""What the pipeline hands a method, and what a method hands back."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..adapters.base import Adapter, CotangentFn, GradPass, LayerRef, Tensor
from ..layout import Layout
from ..modalities.tokens import EmbeddingSpace
from .params import ARGUMENTS

#: Given the scores (n, C) of some docs and those docs' indices in the batch,
#: return the classes to explain for each of them.
TargetResolver = Callable[[np.ndarray, Sequence[int]], list[list[int]]]


@dataclass
class Rows:
    """The (doc, class) pairs explained, doc-major, in the order of ``targets``."""

    doc: np.ndarray
    cls: np.ndarray

    @classmethod
    def from_targets(cls, per_doc: Sequence[Sequence[int]]) -> Rows:
        docs = [d for d, ts in enumerate(per_doc) for _ in ts]
        classes = [c for ts in per_doc for c in ts]
        return cls(np.asarray(docs, dtype=np.int64), np.asarray(classes, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.doc)


@dataclass
class MethodContext:
    """Everything a method needs: the adapter, the validated batch and the settings.

    ``sign`` is -1 for counterfactual explanations (what speaks against the
    target), else 1; it enters every method through the cotangent.
    """

    adapter: Adapter
    x: Tensor
    resolve_targets: TargetResolver
    sign: float = 1.0
    layer: LayerRef | None = None
    batch_size: int | None = None
    progress: bool | None = None
    params: dict[str, Any] = field(default_factory=dict)
    space: EmbeddingSpace | None = None
    #: a baseline already in the method's input space (text: pad embeddings), (N, ...)
    baseline: Tensor | None = None
    #: how the rows of ``x`` read (``None``: asked of the adapter when needed)
    layout: Layout | None = None
    #: how the rows of ``layer``'s output read (``None``: asked of the adapter)
    layer_layout: Layout | None = None

    def arg(self, name: str) -> Any:
        """Method argument ``name``: as given, else its declared default."""
        value = self.params.get(name)
        return ARGUMENTS[name].default if value is None else value

    @property
    def model_input(self) -> Tensor:
        """What the model itself takes: ``x``, or for text the token ids (and extra inputs)."""
        return self.x if self.space is None else self.space.inputs

    def input_layout(self) -> Layout:
        """The layout of the rows of ``x`` (text: the embedding output)."""
        if self.layout is None:
            if self.space is not None:
                self.layout = self.adapter.layer_layout(self.space.layer, self.space.inputs)
            else:
                self.layout = self.adapter.input_layout(self.x)
        return self.layout

    def layout_of(self, layer: LayerRef) -> Layout:
        """The layout of ``layer``'s output (``layer_layout`` for the chosen layer)."""
        if layer == self.layer and self.layer_layout is not None:
            return self.layer_layout
        return self.adapter.layer_layout(layer, self.model_input)

    def forward(self, x: Tensor, docs: np.ndarray) -> np.ndarray:
        """Scores of the input rows ``x``, which come from docs ``docs`` (no graph)."""
        if self.space is None:
            return self.adapter.forward(x)
        return self.adapter.forward(
            self.space.model_input(self.adapter, docs), replace=(self.space.layer, x)
        )

    def gradients(
        self, x: Tensor, docs: np.ndarray, cotangents: CotangentFn, *, wrt_input: bool,
        layers: Sequence[LayerRef] = (), cut_at_layer: bool = False,
    ) -> tuple[np.ndarray, list[GradPass]]:
        """:meth:`Adapter.gradients` of the input rows ``x`` from docs ``docs``; for
        text models ``x`` are embedding rows and the input gradient is theirs."""
        if self.space is None:
            return self.adapter.gradients(
                x, cotangents, wrt_input=wrt_input, layers=layers, cut_at_layer=cut_at_layer
            )
        return self.adapter.gradients(
            self.space.model_input(self.adapter, docs), cotangents, wrt_input=wrt_input,
            layers=layers, cut_at_layer=cut_at_layer, replace=(self.space.layer, x),
        )

    @property
    def n_docs(self) -> int:
        return int(self.adapter.ops.shape(self.x)[0])

    def chunk_size(self, n_units: int, forward_only: bool = False,
                   head_only: bool = False) -> int:
        """How many inputs one pass holds: ``batch_size``, or what fits the memory budget.

        A ``forward_only`` pass (no graph) keeps no activations for a backward
        pass, so a row costs about a third of a gradient pass and more rows fit.
        A ``head_only`` pass (a graph from a tapped layer on: CAM methods) runs
        the model up to the layer without a graph, so its rows cost about what a
        forward-only row does; it keeps the gradient passes' row cap.
        """
        if self.batch_size is not None:
            return self.batch_size
        if n_units <= 1:
            return 1
        per_row = max(1, self.adapter.bytes_per_row(self.model_input))
        budget = self.adapter.pass_budget_bytes()
        if forward_only:
            cap = self.adapter.max_forward_rows  # Keras: recurrent layers want bigger chunks
            return int(max(1, min(cap, n_units, 3 * budget // per_row)))
        cap = self.adapter.max_gradient_rows  # Keras on TF/JAX: recurrent layers want more
        fits = (3 if head_only else 1) * budget // per_row
        return int(max(1, min(cap, n_units, fits)))


@dataclass
class MethodResult:
    """A method's raw output.

    ``attribution`` is (R, ...) in the framework, one row per explained
    (doc, class) pair, signed and in the model's units. ``display`` optionally
    holds the method's own unsigned display map per row (numpy), where the
    method's paper defines one (FullGrad); otherwise the modality derives the
    heatmap from ``attribution``. ``notes`` are added to the description.
    ``layout`` is the attribution's layout where the method states it.
    """

    scores: np.ndarray
    rows: Rows
    attribution: Tensor
    display: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)
    #: how the rows of ``attribution`` read, where the method states it (attention
    #: rollout: one value per token); ``None``: the modality's layout for the method
    layout: Layout | None = None
