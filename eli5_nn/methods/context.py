"""What the pipeline hands a method, and what a method hands back."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..adapters.base import Adapter, CotangentFn, GradPass, LayerRef, ModelInput, Tensor

#: Given the scores (n, C) of some docs and those docs' indices in the batch,
#: return the classes to explain for each of them.
TargetResolver = Callable[[np.ndarray, Sequence[int]], list[list[int]]]

MAX_AUTO_BATCH = 256
#: the cap for passes without a graph (occlusion variants, scores of many inputs)
MAX_AUTO_FORWARD_BATCH = 4096


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
class EmbeddingSpace:
    """Text models: the methods' input is the output of the token embedding.

    ``inputs`` is the model input of every doc (token ids, or a
    :class:`~eli5_nn.adapters.base.ModelInput` with the extra inputs); a pass
    over embedding rows runs the model on the docs those rows come from with
    the embedding layer's output replaced by the rows. ``real`` marks the
    non-padding positions (N, T); ``pad_id`` is the padding id, if known.
    """

    inputs: Tensor
    layer: LayerRef
    ids: np.ndarray
    real: np.ndarray
    pad_id: int | None = None

    def model_input(self, adapter: Adapter, docs: np.ndarray) -> Tensor:
        """The model input of ``docs`` (in order, repeats allowed)."""
        if isinstance(self.inputs, ModelInput):
            return self.inputs.rows(adapter.ops, docs)
        return adapter.ops.take(self.inputs, docs)

    def with_ids(self, adapter: Adapter, docs: np.ndarray, ids: np.ndarray) -> Tensor:
        """The model input of ``docs`` with the token ids replaced by ``ids``."""
        base = self.model_input(adapter, docs)
        if isinstance(base, ModelInput):
            new = adapter.ops.asarray(ids, like=base.ids)
            values = list(base.values)
            values[base.token] = new
            return ModelInput(tuple(values), base.keys, base.token)
        return adapter.ops.asarray(ids, like=base)


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

    def chunk_size(self, n_units: int, forward_only: bool = False) -> int:
        """How many inputs one pass holds: ``batch_size``, or what fits the memory budget.

        A ``forward_only`` pass (no graph) keeps no activations for a backward
        pass, so a row costs about a third of a gradient pass and more rows fit.
        """
        if self.batch_size is not None:
            return self.batch_size
        if n_units <= 1:
            return 1
        model_input = self.x if self.space is None else self.space.inputs
        per_row = max(1, self.adapter.bytes_per_row(model_input))
        budget = self.adapter.pass_budget_bytes()
        if forward_only:
            return int(max(1, min(MAX_AUTO_FORWARD_BATCH, n_units, 3 * budget // per_row)))
        return int(max(1, min(MAX_AUTO_BATCH, n_units, budget // per_row)))


@dataclass
class MethodResult:
    """A method's raw output.

    ``attribution`` is (R, ...) in the framework, one row per explained
    (doc, class) pair, signed and in the model's units. ``display`` optionally
    holds the method's own unsigned display map per row (numpy), where the
    method's paper defines one (FullGrad); otherwise the modality derives the
    heatmap from ``attribution``. ``notes`` are added to the description.
    """

    scores: np.ndarray
    rows: Rows
    attribution: Tensor
    display: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)
