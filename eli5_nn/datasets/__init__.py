"""Explaining whole datasets: streamed on one machine or distributed on Ray, and the
reports over the set (per-class mean maps, shortcut audits with masks, faithfulness).

Frameworks and Ray are imported only by the engines that load data or run actors;
the writer, the manifest, the summaries and the report import none.
"""

from __future__ import annotations

from .core import DatasetRun, explain_dataset
from .explainer import DatasetExplainer
from .report import dataset_report
from .store import as_array, read_errors, read_items, read_manifest
from .summaries import DatasetSummary, summarize

__all__ = [
    "DatasetExplainer",
    "DatasetRun",
    "DatasetSummary",
    "as_array",
    "dataset_report",
    "explain_dataset",
    "read_errors",
    "read_items",
    "read_manifest",
    "summarize",
]
