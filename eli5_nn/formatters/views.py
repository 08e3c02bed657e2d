"""The layout shared by the image and HTML formatters: a grid of overlays.

A :class:`Grid` holds the pictures at their native resolution and their
captions as plain strings; :mod:`.image` draws it with PIL, :mod:`.html`
embeds it in a page (escaping every string).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from eli5.base import Explanation
from PIL import Image

from .colors import ColormapLike, check_alpha, format_number, get_colormap, overlay
from .maps import DisplayMap, check_scale, display_maps


@dataclass
class Options:
    """Formatting options common to the image and HTML formatters."""

    signed: bool = False
    scale: str | float = "target"
    colormap: ColormapLike = None
    alpha_limit: float = 0.65
    show_original: bool = False
    resampling_filter: Any = Image.Resampling.BILINEAR
    channel_axis: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.signed, bool):
            raise TypeError(f"signed must be True or False, got {self.signed!r}")
        self.scale = check_scale(self.scale)
        self.alpha_limit = check_alpha(self.alpha_limit)
        self.cmap: Callable[[np.ndarray], np.ndarray] = get_colormap(self.colormap, self.signed)


@dataclass
class Cell:
    """One picture with its caption lines (``image`` is None for an empty cell)."""

    image: Image.Image | None
    caption: list[str] = field(default_factory=list)


@dataclass
class Legend:
    """The colour scale of a grid: ``vmax`` is None when each map has its own."""

    signed: bool
    vmax: float | None
    cmap: Callable[[np.ndarray], np.ndarray]

    def ticks(self) -> list[str]:
        """Labels from low to high."""
        if self.vmax is None:
            top = "max of each map"
            return [f"-({top})", "0", top] if self.signed else ["0", top]
        v = format_number(self.vmax)
        return [f"-{v}", "0", f"+{v}"] if self.signed else ["0", v]

    def title(self) -> str:
        """What the colours mean."""
        if self.signed:
            return "signed attribution (green: for the target, red: against)"
        return "importance (heatmap)"


@dataclass
class Row:
    """A row of cells with its label and colour scale."""

    label: str
    cells: list[Cell]
    legend: Legend


@dataclass
class Grid:
    """Rows of cells with optional column titles and notes."""

    title: str
    subtitle: str
    col_titles: list[str]
    rows: list[Row]
    notes: list[str] = field(default_factory=list)


def is_image_explanation(expl: Any) -> bool:
    """Whether ``expl`` has a picture to draw on."""
    return isinstance(getattr(expl, "image", None), Image.Image)


def target_caption(t: Any, dm: DisplayMap | None, per_map: bool) -> list[str]:
    """Caption lines of one target: its name, score and probability (and its
    own scale when each map has one)."""
    lines = [str(t.target)]
    scores = []
    if t.score is not None:
        scores.append(f"score {t.score:.3g}")
    if t.proba is not None:
        scores.append(f"p={t.proba:.3f}")
    if scores:
        lines.append(", ".join(scores))
    faith = getattr(t, "faithfulness", None)
    if faith:
        lines.append(
            f"deletion AUC {faith['deletion_auc']:.3f}, insertion AUC {faith['insertion_auc']:.3f}"
        )
    if per_map and dm is not None:
        lines.append(("max |a|=" if dm.signed else "max=") + format_number(dm.vmax))
    return lines


def _require_images(expls: Sequence[Explanation]) -> None:
    for e in expls:
        if not is_image_explanation(e):
            raise TypeError(
                "format_as_image draws image explanations (Explanation.image must be a PIL "
                f"image); {getattr(e, 'method', None) or 'this explanation'} has none. Use "
                "eli5_nn.format_as_html for text explanations."
            )


def _legend(maps: Sequence[DisplayMap], opts: Options) -> Legend:
    """One value on the colour bar when all ``maps`` share their scale."""
    vmaxes = {m.vmax for m in maps}
    common = opts.scale != "target" or len(maps) == 1
    vmax = next(iter(vmaxes)) if common and len(vmaxes) == 1 else None
    return Legend(opts.signed, vmax, opts.cmap)


def _overlay_cells(expl: Explanation, maps: list[DisplayMap], opts: Options, per_map: bool
                   ) -> list[Cell]:
    assert expl.image is not None and expl.targets is not None
    return [
        Cell(
            overlay(expl.image, dm.values, opts.signed, opts.cmap, opts.alpha_limit,
                    opts.resampling_filter),
            target_caption(t, dm, per_map),
        )
        for t, dm in zip(expl.targets, maps, strict=True)
    ]


def explanations_grid(expls: Sequence[Explanation], opts: Options) -> Grid:
    """One row per image explanation; the input first when ``show_original``,
    then one overlay per target."""
    _require_images(expls)
    maps = display_maps([e.targets or [] for e in expls], signed=opts.signed, scale=opts.scale,
                        channel_axis=opts.channel_axis)
    rows = []
    for i, (expl, group) in enumerate(zip(expls, maps, strict=True)):
        legend = _legend(group, opts)
        cells = [Cell(expl.image, ["input"])] if opts.show_original else []
        cells += _overlay_cells(expl, group, opts, legend.vmax is None)
        label = str(expl.method or "") if len(expls) == 1 else f"{i + 1}. {expl.method or ''}"
        rows.append(Row(label, cells, legend))
    first = expls[0]
    title = str(first.method or "explanation") if len(expls) == 1 else "explanations"
    return Grid(
        title=title,
        subtitle=str(first.estimator or ""),
        col_titles=[],
        rows=rows,
        notes=[str(e.description) for e in expls if e.description],
    )


def comparison_grid(comparisons: Sequence[Sequence[Explanation]], names: Sequence[str],
                    opts: Options, labels: Sequence[str] | None = None) -> Grid:
    """Methods side by side: one column per method, one row per target of each
    compared input (``comparisons[i][j]`` explains input i by method ``names[j]``)."""
    flat = [e for expls in comparisons for e in expls]
    _require_images(flat)
    maps = display_maps([e.targets or [] for e in flat], signed=opts.signed, scale=opts.scale,
                        channel_axis=opts.channel_axis)
    legend = _legend([m for group in maps for m in group], opts)
    per_map = legend.vmax is None
    rows = []
    k = 0
    for i, expls in enumerate(comparisons):
        groups = maps[k:k + len(expls)]
        k += len(expls)
        for r in range(max(len(e.targets or []) for e in expls)):
            cells = [Cell(expls[0].image, ["input"])] if opts.show_original else []
            target_label = ""
            for expl, group in zip(expls, groups, strict=True):
                targets = expl.targets or []
                if r >= len(targets):
                    cells.append(Cell(None, []))
                    continue
                assert expl.image is not None
                dm = group[r]
                cells.append(Cell(
                    overlay(expl.image, dm.values, opts.signed, opts.cmap, opts.alpha_limit,
                            opts.resampling_filter),
                    target_caption(targets[r], dm, per_map),
                ))
                target_label = target_label or str(targets[r].target)
            label = labels[i] if labels is not None and labels[i] else target_label
            rows.append(Row(label, cells, legend))
    col_titles = (["input"] if opts.show_original else []) + [str(n) for n in names]
    first = comparisons[0]
    notes = [f"{n}: {e.description}" for n, e in zip(names, first, strict=True) if e.description]
    return Grid(
        title="comparison of " + ", ".join(str(n) for n in names),
        subtitle=str(first[0].estimator or ""),
        col_titles=col_titles,
        rows=rows,
        notes=notes,
    )
