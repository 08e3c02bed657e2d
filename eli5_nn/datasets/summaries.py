"""Summaries over an explained dataset: mean maps per class and per (true, predicted) pair,
the share of attribution inside user masks (the shortcut audit), faithfulness AUCs.

Reads what :func:`eli5_nn.explain_dataset` wrote; imports no framework.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ExplanationError
from . import store


@dataclass
class DatasetSummary:
    """What :func:`summarize` found. Maps are the mean ``heatmap`` of each group.

    ``index``, ``ids``, ``labels`` (-1 where unknown), ``predicted`` and ``share``
    (the share of each item's heatmap inside its mask, NaN without a mask or for an
    all-zero map) hold one entry per explained item (its first target).
    """

    out: Path
    method: str
    class_names: Any
    index: np.ndarray
    ids: list[str]
    labels: np.ndarray
    predicted: np.ndarray
    class_maps: dict[int, np.ndarray] = field(default_factory=dict)
    class_counts: dict[int, int] = field(default_factory=dict)
    pair_maps: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)
    pair_counts: dict[tuple[int, int], int] = field(default_factory=dict)
    share: np.ndarray | None = None
    class_share: dict[int, float] = field(default_factory=dict)
    auc: dict[str, np.ndarray] = field(default_factory=dict)
    n_errors: int = 0
    masked: bool = False
    map_shape: tuple[int, ...] | None = None

    def name(self, c: int) -> str:
        """The display name of class ``c``."""
        names = self.class_names
        if isinstance(names, Mapping):
            return str(names.get(str(c), c))
        if isinstance(names, list) and 0 <= c < len(names):
            return str(names[c])
        return str(c)

    def ranked(self, k: int, most: bool) -> np.ndarray:
        """Positions of the ``k`` items most (or least) inside the mask."""
        if self.share is None:
            return np.zeros(0, dtype=np.int64)
        ok = np.flatnonzero(~np.isnan(self.share))
        order = ok[np.argsort(self.share[ok], kind="stable")]
        return order[::-1][:k] if most else order[:k]


def summarize(out_dir: str | Path, masks: Any = None, by: str = "label") -> DatasetSummary:
    """Summaries of the run in ``out_dir``.

    Parameters
    ----------
    out_dir : str or Path
        A folder written by :func:`eli5_nn.explain_dataset`.
    masks : array or dict, optional
        The region to audit: one (H, W) mask for every item, an (N, H, W) array with
        one mask per item (by item index), or a dict from item id to mask. Masks are
        read as weights in [0, 1] and resized (area average) to the heatmap's size.
    by : {"label", "predicted"}
        How items are grouped into classes: by their true label (the predicted class
        where the label is unknown), or by the predicted class.
    """
    if by not in ("label", "predicted"):
        raise ExplanationError(f"by must be 'label' or 'predicted', got {by!r}")
    manifest = store.read_manifest(out_dir)
    cols = ["index", "id", "label", "predicted", "target_rank", "heatmap", "heatmap_shape"]
    faithful = bool(manifest["settings"].get("faithfulness"))
    if faithful:
        cols += ["deletion_auc", "insertion_auc"]
    table = store.read_items(out_dir, cols)
    table = table.filter(_eq(table["target_rank"], 0))
    labels = np.asarray(table["label"].fill_null(-1).to_numpy(zero_copy_only=False))
    s = DatasetSummary(
        out=Path(out_dir), method=str(manifest.get("method_name", manifest.get("method"))),
        class_names=manifest.get("class_names"),
        index=np.asarray(table["index"].to_numpy()), ids=table["id"].to_pylist(),
        labels=labels.astype(np.int64), predicted=np.asarray(table["predicted"].to_numpy()),
        n_errors=store.read_errors(out_dir).num_rows,
    )
    if faithful:
        for k in ("deletion_auc", "insertion_auc"):
            s.auc[k] = np.asarray(table[k].to_numpy(zero_copy_only=False), dtype=np.float64)
    maps = _maps(table)
    if maps is None:
        return s
    s.map_shape = maps.shape[1:]
    group = np.where(s.labels >= 0, s.labels, s.predicted) if by == "label" else s.predicted
    for c in np.unique(group):
        sel = group == c
        s.class_maps[int(c)], s.class_counts[int(c)] = maps[sel].mean(axis=0), int(sel.sum())
    known = s.labels >= 0
    for t, p in sorted({(int(a), int(b)) for a, b in zip(s.labels[known], s.predicted[known],
                                                          strict=True)}):
        sel = known & (s.labels == t) & (s.predicted == p)
        s.pair_maps[(t, p)], s.pair_counts[(t, p)] = maps[sel].mean(axis=0), int(sel.sum())
    if masks is not None:
        s.share = _shares(maps, _mask_stack(masks, s, maps.shape[1:]))
        s.masked = True
        for c in s.class_maps:
            vals = s.share[group == c]
            vals = vals[~np.isnan(vals)]
            s.class_share[c] = float(vals.mean()) if vals.size else float("nan")
    return s


def _eq(column: Any, value: int) -> Any:
    import pyarrow.compute as pc  # type: ignore[import-untyped]

    return pc.equal(column, value)


def _maps(table: Any) -> np.ndarray | None:
    """The heatmaps as one (N, ...) array; None if they differ in shape (text)."""
    shapes = {tuple(s) for s in table["heatmap_shape"].to_pylist()}
    if len(shapes) != 1 or table.num_rows == 0:
        return None
    shape = shapes.pop()
    flat = table["heatmap"].combine_chunks().flatten().to_numpy()
    return np.asarray(flat, dtype=np.float32).reshape(table.num_rows, *shape)


def _mask_stack(masks: Any, s: DatasetSummary, shape: tuple[int, ...]) -> np.ndarray:
    if isinstance(masks, Mapping):
        missing = [i for i in s.ids if i not in masks]
        if missing:
            raise ExplanationError(f"masks has no entry for the items {missing[:5]}")
        return np.stack([resize_mask(np.asarray(masks[i], dtype=np.float32), shape)
                         for i in s.ids])
    m = np.asarray(masks, dtype=np.float32)
    if m.ndim == len(shape):
        return np.broadcast_to(resize_mask(m, shape), (len(s.ids), *shape))
    if m.ndim == len(shape) + 1:
        if m.shape[0] <= int(s.index.max(initial=0)):
            raise ExplanationError(
                f"masks holds {m.shape[0]} masks but the items go up to index {s.index.max()}"
            )
        return np.stack([resize_mask(m[i], shape) for i in s.index])
    raise ExplanationError(
        f"masks must be one mask of {len(shape)} axes, one per item (N, ...), or a dict "
        f"from item id to mask; got shape {m.shape}"
    )


def resize_mask(mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``mask`` averaged over blocks to ``shape`` (nearest-area; 1-D or 2-D)."""
    m = np.asarray(mask, dtype=np.float32)
    if m.shape == tuple(shape):
        return m
    if m.ndim != len(shape) or m.ndim not in (1, 2):
        raise ExplanationError(f"cannot resize a mask of shape {m.shape} to {shape}")
    from PIL import Image

    if m.ndim == 1:
        m = m[None]
        shape = (1, *shape)
    img = Image.fromarray(m, mode="F").resize((shape[1], shape[0]), Image.Resampling.BOX)
    return np.asarray(img, dtype=np.float32).reshape(
        shape if len(mask.shape) == 2 else shape[1:])


def _shares(maps: np.ndarray, masks: np.ndarray) -> np.ndarray:
    axes = tuple(range(1, maps.ndim))
    total = maps.sum(axis=axes, dtype=np.float64)
    inside = (maps * masks).sum(axis=axes, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, inside / total, np.nan)
