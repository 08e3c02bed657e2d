"""The blocks of an HTML report, as plain dicts for the Jinja templates.

Each function turns result data (a :class:`~.views.Grid`, a text explanation,
text explanations side by side) into one block: a heading, one colour legend
shown above the content, the content, and the notes (descriptions) once per
block. Strings stay plain here; the templates escape them.
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence
from typing import Any

import numpy as np
from eli5.base import Explanation
from eli5.formatters.html import weight_color_hsl

from .colors import colour_bar, format_number
from .datauri import image_data_uri
from .spans import char_weights, render_target, weight_range
from .views import Grid, Legend, estimators, target_line

#: the width of the colour bars, in CSS pixels
BAR_WIDTH = 160


def _text_cmap(t: np.ndarray) -> np.ndarray:
    """eli5's text colours as a colormap (0.5 is zero), for the text legend."""
    out = np.ones((*np.shape(t), 4))
    for idx, v in np.ndenumerate(np.asarray(t, dtype=np.float64) * 2.0 - 1.0):
        h, s, lum = weight_color_hsl(float(v), 1.0)
        out[idx][:3] = colorsys.hls_to_rgb(h / 360.0, lum, s)
    return out


def legend_dict(legend: Legend, bars: dict[Any, str]) -> dict[str, Any]:
    """The legend for the template; ``bars`` caches colour bars within one call."""
    key = (legend.signed, id(legend.cmap))
    if key not in bars:
        bars[key] = image_data_uri(colour_bar(BAR_WIDTH, 12, legend.signed, legend.cmap))
    return {"src": bars[key], "ticks": legend.ticks(), "title": legend.title()}


def text_legend(wrange: float | None, bars: dict[Any, str]) -> dict[str, Any]:
    """The legend of highlighted text (eli5's colours)."""
    legend = legend_dict(Legend(True, None, _text_cmap), bars)
    scale = f"±{format_number(wrange)}" if wrange else "each target's largest weight"
    legend["title"] = f"token weight (green: for the target, red: against), scale {scale}"
    legend["ticks"] = ["against", "0", "for"]
    return legend


def grid_block(grid: Grid, bars: dict[Any, str]) -> dict[str, Any]:
    """A table of pictures; one legend above it when every row shares one."""
    legends = [legend_dict(r.legend, bars) for r in grid.rows]
    shared = all(leg == legends[0] for leg in legends)
    n_cols = max(len(r.cells) for r in grid.rows)
    rows = []
    for row, legend in zip(grid.rows, legends, strict=True):
        cells: list[dict[str, Any]] = []
        for cell in row.cells:
            if cell.image is None:
                cells.append({"src": None})
                continue
            cells.append({
                "src": image_data_uri(cell.image),
                "width": cell.image.width,
                "height": cell.image.height,
                "pixelated": cell.enlarged,
                "empty": cell.empty,
                "caption": cell.caption[0] if cell.caption else "",
                "tooltip": cell.tooltip,
                "alt": cell.tooltip or " ".join(cell.caption),
            })
        rows.append({"label": row.label, "detail": row.detail, "cells": cells,
                     "legend": None if shared else legend})
    row_labels = len(grid.rows) > 1 or bool(grid.col_titles)
    return {"kind": "grid", "title": grid.title, "subtitle": grid.subtitle,
            "col_titles": grid.col_titles, "rows": rows, "row_labels": row_labels,
            "legend": legends[0] if shared else None, "n_cols": n_cols,
            "summary": grid.summary, "notes": grid.notes}


def _targets_html(expl: Explanation, wrange: float | None, preserve_density: bool | None
                  ) -> list[dict[str, Any]]:
    return [{"header": target_line(t), "docs": render_target(t, preserve_density, wrange)}
            for t in expl.targets or []]


def _notes(expl: Explanation) -> list[str]:
    return [str(expl.description)] if expl.description else []


def text_block(expl: Explanation, wrange: float | None, preserve_density: bool | None,
               bars: dict[Any, str]) -> dict[str, Any]:
    """One text explanation: the legend, then per target one line (target,
    score, probability) and the highlighted document."""
    return {"kind": "text", "title": str(expl.method or "explanation"),
            "subtitle": str(expl.estimator or ""),
            "targets": _targets_html(expl, wrange, preserve_density),
            "notes": _notes(expl), "legend": text_legend(wrange, bars)}


def text_comparison_block(comparisons: Sequence[Any], wrange: float | None,
                          preserve_density: bool | None, bars: dict[Any, str]
                          ) -> dict[str, Any]:
    """Text explanations side by side: one row per document (comparison), one
    column per method, one legend; each method's description once, below."""
    names = comparisons[0].names
    rows = []
    for comp in comparisons:
        first = next((t for e in comp.explanations for t in e.targets or []), None)
        cells = []
        for e in comp.explanations:
            rng = wrange
            if rng is None:  # one scale per document: its methods side by side
                rng = weight_range([w for t in e.targets or []
                                    for w in char_weights(t, preserve_density)]) or None
            targets = _targets_html(e, rng, preserve_density)
            one = len(targets) == 1 and first is not None and targets[0]["header"] == \
                target_line(first)
            cells.append({"targets": targets, "headers": not one})
        rows.append({"label": comp.label, "detail": "" if first is None else target_line(first),
                     "cells": cells})
    first_expls = comparisons[0].explanations
    notes = [f"{n}: {e.description}" for n, e in zip(names, first_expls, strict=True)
             if e.description]
    return {"kind": "textgrid", "title": "comparison of " + ", ".join(names),
            "subtitle": estimators([e for c in comparisons for e in c.explanations]),
            "col_titles": list(names),
            "rows": rows, "notes": notes, "legend": text_legend(wrange, bars)}


def plain_block(expl: Explanation) -> dict[str, Any]:
    """An explanation without pictures or spans: targets and their top features."""
    targets = []
    for t in expl.targets or []:
        fw = t.feature_weights
        weights = [] if fw is None else [(str(w.feature), f"{w.weight:+.3g}")
                                          for w in list(fw.pos) + list(fw.neg)]
        targets.append({"header": target_line(t), "weights": weights})
    return {"kind": "plain", "title": str(expl.method or "explanation"),
            "subtitle": str(expl.estimator or ""), "targets": targets,
            "notes": _notes(expl), "error": str(expl.error) if expl.error else ""}
