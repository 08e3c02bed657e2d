"""The layout shared by the image and HTML formatters: a grid of overlays.

A :class:`Grid` holds the pictures at display size (small inputs enlarged
to ``min_size``, the map drawn on the enlarged picture) and their captions as
plain strings, one line per picture; :mod:`.image` draws it with PIL, :mod:`.html`
embeds it in a page (escaping every string).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from eli5.base import Explanation
from PIL import Image

from ..errors import Eli5NNTypeError
from .colors import (
    ColormapLike,
    check_alpha,
    enlarge,
    format_number,
    get_colormap,
    is_grey,
    overlay,
)
from .maps import DisplayMap, check_scale, display_maps


@dataclass
class Options:
    """Formatting options common to the image and HTML formatters.

    ``min_size``: pictures smaller than this are enlarged by a whole factor
    (nearest neighbour) before the map is drawn on them. ``contour``: draw the
    input's strokes over the map; None draws them for one-channel inputs.
    """

    signed: bool = False
    scale: str | float = "target"
    colormap: ColormapLike = None
    alpha_limit: float = 0.65
    show_original: bool = False
    resampling_filter: Any = Image.Resampling.BILINEAR
    channel_axis: int | None = None
    min_size: int = 1
    contour: bool | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.signed, bool):
            raise Eli5NNTypeError(f"signed must be True or False, got {self.signed!r}")
        if self.contour is not None and not isinstance(self.contour, bool):
            raise Eli5NNTypeError(f"contour must be True, False or None, got {self.contour!r}")
        self.scale = check_scale(self.scale)
        self.alpha_limit = check_alpha(self.alpha_limit)
        self.cmap: Callable[[np.ndarray], np.ndarray] = get_colormap(self.colormap, self.signed)

    def factor(self, image: Image.Image) -> int:
        """How many times ``image`` is enlarged for display."""
        return max(1, math.ceil(self.min_size / max(1, *image.size)))

    def draw(self, image: Image.Image, dm: DisplayMap) -> Image.Image:
        """The map ``dm`` over ``image``, enlarged for display."""
        contour = is_grey(image) if self.contour is None else self.contour
        return overlay(image, dm.values, self.signed, self.cmap, self.alpha_limit,
                       self.resampling_filter, self.factor(image), contour)

    def original(self, image: Image.Image) -> Image.Image:
        """The input picture, enlarged for display."""
        return enlarge(image, self.factor(image))


@dataclass
class Cell:
    """One picture with its caption (one line at most; ``image`` is None for an
    empty cell); ``tooltip`` holds the details (shown on hover in HTML)."""

    image: Image.Image | None
    caption: list[str] = field(default_factory=list)
    tooltip: str = ""
    enlarged: bool = False
    empty: bool = False


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
    """A row of cells with its label, its target line and colour scale."""

    label: str
    cells: list[Cell]
    legend: Legend
    detail: str = ""


@dataclass
class Grid:
    """Rows of cells with optional column titles, per-column summaries and notes."""

    title: str
    subtitle: str
    col_titles: list[str]
    rows: list[Row]
    notes: list[str] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)


def is_image_explanation(expl: Any) -> bool:
    """Whether ``expl`` has a picture to draw on."""
    return isinstance(getattr(expl, "image", None), Image.Image)


def estimators(expls: Sequence[Any]) -> str:
    """The models' names, each once, in order."""
    return ", ".join(dict.fromkeys(str(e.estimator) for e in expls if e.estimator))


def target_line(t: Any) -> str:
    """One line: the target, its score and probability."""
    parts = [str(t.target)]
    if t.score is not None:
        parts.append(f"score {t.score:.3g}")
    if t.proba is not None:
        parts.append(f"p={t.proba:.3f}")
    return ", ".join(parts)


def target_caption(t: Any, dm: DisplayMap | None, per_map: bool) -> list[str]:
    """The caption of one target shown alone: one line (target, score and
    probability; "empty map" where the map is all zero)."""
    line = target_line(t)
    if dm is not None and is_empty(dm):
        line += ", empty map"
    return [line]


def is_empty(dm: DisplayMap) -> bool:
    """Whether a display map has nothing to show (all zero)."""
    return not np.any(dm.values)


def _empty_words(dm: DisplayMap) -> str:
    return "empty map (all zero)" if dm.signed else "empty map (no positive evidence)"


def _faithfulness(t: Any) -> tuple[str, str]:
    """A short and a long form of the deletion/insertion scores ("" without)."""
    faith = getattr(t, "faithfulness", None)
    if not faith:
        return "", ""
    d, i = faith["deletion_auc"], faith["insertion_auc"]
    return (f"del {d:.2f} / ins {i:.2f}",
            f"deletion AUC {d:.3f} (lower is better), insertion AUC {i:.3f} (higher is better)")


def _tooltip(t: Any, dm: DisplayMap, per_map: bool) -> str:
    parts = [target_line(t)]
    if per_map:
        parts.append(("max |a|=" if dm.signed else "max=") + format_number(dm.vmax))
    if is_empty(dm):
        parts.append(_empty_words(dm))
    parts.append(_faithfulness(t)[1])
    return "; ".join(p for p in parts if p)


def _require_images(expls: Sequence[Explanation]) -> None:
    for e in expls:
        if not is_image_explanation(e):
            raise Eli5NNTypeError(
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


def explanations_grid(expls: Sequence[Explanation], opts: Options) -> Grid:
    """One row per image explanation; the input first when ``show_original``,
    then one overlay per target, each with one caption line."""
    _require_images(expls)
    maps = display_maps([e.targets or [] for e in expls], signed=opts.signed, scale=opts.scale,
                        channel_axis=opts.channel_axis)
    rows = []
    for i, (expl, group) in enumerate(zip(expls, maps, strict=True)):
        assert expl.image is not None and expl.targets is not None
        legend = _legend(group, opts)
        per_map = legend.vmax is None
        big = opts.factor(expl.image) > 1
        cells = [Cell(opts.original(expl.image), ["input"], "input", big)
                 ] if opts.show_original else []
        cells += [Cell(opts.draw(expl.image, dm), target_caption(t, dm, per_map),
                       _tooltip(t, dm, per_map), big, is_empty(dm))
                  for t, dm in zip(expl.targets, group, strict=True)]
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


def _comparison_cell(expl: Explanation, r: int, dm: DisplayMap | None, opts: Options,
                     per_map: bool) -> Cell:
    targets = expl.targets or []
    if dm is None or r >= len(targets):
        return Cell(None, [])
    assert expl.image is not None
    t = targets[r]
    line = _empty_words(dm) if is_empty(dm) else _faithfulness(t)[0]
    return Cell(opts.draw(expl.image, dm), [line] if line else [], _tooltip(t, dm, per_map),
                opts.factor(expl.image) > 1, is_empty(dm))


def _mean_faithfulness(expls: Sequence[Explanation]) -> str:
    scores: list[Any] = [f for e in expls for t in e.targets or []
                         if (f := getattr(t, "faithfulness", None))]
    if not scores:
        return ""
    d = float(np.mean([f["deletion_auc"] for f in scores]))
    i = float(np.mean([f["insertion_auc"] for f in scores]))
    return f"deletion {d:.3f}, insertion {i:.3f}"


def comparison_grid(comparisons: Sequence[Sequence[Explanation]], names: Sequence[str],
                    opts: Options, labels: Sequence[str] | None = None) -> Grid:
    """Methods side by side: one column per method, one row per target of each
    compared input (``comparisons[i][j]`` explains input i by method ``names[j]``).

    The target, its score and probability are given once per row (``detail``);
    each map's caption is one short line (its deletion/insertion scores, or
    that it is empty); ``summary`` holds each method's mean scores."""
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
            assert expls[0].image is not None
            big = opts.factor(expls[0].image) > 1
            cells = [Cell(opts.original(expls[0].image), [], "input", big)
                     ] if opts.show_original else []
            cells += [_comparison_cell(e, r, g[r] if r < len(g) else None, opts, per_map)
                      for e, g in zip(expls, groups, strict=True)]
            first = next(e.targets[r] for e in expls if r < len(e.targets or []))
            label = labels[i] if labels is not None and labels[i] else str(first.target)
            detail = target_line(first)
            if isinstance(first.target, (int, np.integer)):
                detail = f"class {detail}"
            rows.append(Row(label, cells, legend, detail))
    col_titles = (["input"] if opts.show_original else []) + [str(n) for n in names]
    summary = [_mean_faithfulness([expls[j] for expls in comparisons])
               for j in range(len(names))]
    first_expls = comparisons[0]
    notes = [f"{n}: {e.description}" for n, e in zip(names, first_expls, strict=True)
             if e.description]
    return Grid(
        title="comparison of " + ", ".join(str(n) for n in names),
        subtitle=estimators(flat),
        col_titles=col_titles,
        rows=rows,
        notes=notes,
        summary=([""] if opts.show_original else []) + summary if any(summary) else [],
    )
