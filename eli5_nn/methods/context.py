"""What the pipeline hands a method, and what a method hands back."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..adapters.base import Adapter, LayerRef, Tensor

#: Given the scores (n, C) of some docs and those docs' indices in the batch,
#: return the classes to explain for each of them.
TargetResolver = Callable[[np.ndarray, Sequence[int]], list[list[int]]]

MAX_AUTO_BATCH = 256


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

    @property
    def n_docs(self) -> int:
        return int(self.adapter.ops.shape(self.x)[0])

    def chunk_size(self, n_units: int) -> int:
        """How many inputs one pass holds: ``batch_size``, or what fits the memory budget."""
        if self.batch_size is not None:
            return self.batch_size
        if n_units <= 1:
            return 1
        per_row = max(1, self.adapter.bytes_per_row(self.x))
        budget = self.adapter.pass_budget_bytes()
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
