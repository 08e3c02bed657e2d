"""Self-contained HTML: images embedded as PNG data, every string escaped.

``format_as_html`` returns a fragment (a ``<div>`` with its own styles) that
notebooks display; ``save_html`` writes a standalone page whose Content
Security Policy also forbids scripts and outside resources.
"""

from __future__ import annotations

import colorsys
import io
import math
from base64 import b64encode
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from eli5.base import Explanation
from eli5.formatters.html import weight_color_hsl
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from PIL import Image

from .colors import ColormapLike, colour_bar, format_number
from .compare import Comparison
from .hierarchy import Hierarchy, format_hierarchy_html
from .maps import check_scale, display_maps
from .spans import char_weights, has_spans, render_target, weight_range
from .views import (
    Grid,
    Legend,
    Options,
    comparison_grid,
    explanations_grid,
    is_image_explanation,
    target_caption,
)

_ENV = Environment(
    loader=PackageLoader("eli5_nn", "templates"),
    autoescape=select_autoescape(["html"]),
)

#: what a page may load: inline styles and images embedded as data, nothing else
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def image_data_uri(image: Image.Image, scale: int = 1) -> str:
    """A ``data:image/png;base64,...`` URI of ``image``, enlarged ``scale`` times
    (nearest neighbour, so small inputs stay crisp)."""
    if scale != 1:
        image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
    if image.mode == "RGBA" and int(np.asarray(image.getchannel("A")).min()) == 255:
        image = image.convert("RGB")  # opaque: a quarter less to encode
    buf = io.BytesIO()
    # fast zlib level: rendering stays a small part of explaining (benchmarks/bench_render.py)
    image.save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + b64encode(buf.getvalue()).decode("ascii")


def _legend_dict(legend: Legend, bars: dict[Any, str]) -> dict[str, Any]:
    """The legend for the template; ``bars`` caches colour bars within one call."""
    key = (legend.signed, id(legend.cmap))
    if key not in bars:
        bars[key] = image_data_uri(colour_bar(160, 12, legend.signed, legend.cmap))
    return {"src": bars[key], "ticks": legend.ticks(), "title": legend.title()}


def _grid_block(grid: Grid, min_size: int, bars: dict[Any, str]) -> dict[str, Any]:
    pics = [c.image for r in grid.rows for c in r.cells if c.image is not None]
    largest = max((max(p.size) for p in pics), default=1)
    factor = max(1, math.ceil(min_size / largest))
    rows = []
    for row in grid.rows:
        cells: list[dict[str, Any]] = []
        for cell in row.cells:
            if cell.image is None:
                cells.append({"src": None})
                continue
            cells.append({
                "src": image_data_uri(cell.image),
                "width": cell.image.width * factor,
                "height": cell.image.height * factor,
                "pixelated": factor > 1,
                "header": cell.caption[0] if cell.caption else "",
                "lines": cell.caption[1:],
                "alt": " ".join(cell.caption),
            })
        rows.append({"label": row.label, "cells": cells, "legend": _legend_dict(row.legend, bars),
                     "legend_rows": 1})
    if len(rows) > 1 and all(r["legend"] == rows[0]["legend"] for r in rows):
        # one colour bar spanning the rows that share it
        rows[0]["legend_rows"] = len(rows)
        for r in rows[1:]:
            r["legend"] = None
    row_labels = len(grid.rows) > 1 or bool(grid.col_titles)
    return {"kind": "grid", "title": grid.title, "subtitle": grid.subtitle,
            "col_titles": grid.col_titles, "rows": rows, "row_labels": row_labels,
            "notes": grid.notes}


def _text_block(expl: Explanation, wrange: float | None, preserve_density: bool | None
                ) -> dict[str, Any]:
    targets = []
    for t in expl.targets or []:
        lines = target_caption(t, None, False)
        targets.append({
            "header": lines[0],
            "lines": lines[1:],
            "docs": render_target(t, preserve_density, wrange),
        })
    return {"kind": "text", "title": str(expl.method or "explanation"),
            "subtitle": str(expl.estimator or ""), "targets": targets,
            "notes": [str(expl.description)] if expl.description else [],
            "legend_range": None if wrange is None else format_number(wrange)}


def _plain_block(expl: Explanation) -> dict[str, Any]:
    targets = []
    for t in expl.targets or []:
        lines = target_caption(t, None, False)
        fw = t.feature_weights
        weights = [] if fw is None else [(str(w.feature), f"{w.weight:+.3g}")
                                          for w in list(fw.pos) + list(fw.neg)]
        targets.append({"header": lines[0], "lines": lines[1:], "weights": weights})
    return {"kind": "plain", "title": str(expl.method or "explanation"),
            "subtitle": str(expl.estimator or ""), "targets": targets,
            "notes": [str(expl.description)] if expl.description else [],
            "error": str(expl.error) if expl.error else ""}


def _items(obj: Any) -> list[Explanation | Comparison]:
    if isinstance(obj, (Explanation, Comparison)):
        return [obj]
    if isinstance(obj, (list, tuple)) and obj and all(
            isinstance(o, (Explanation, Comparison)) for o in obj):
        return list(obj)
    raise TypeError(
        "expected an eli5 Explanation, an eli5_nn Comparison or a non-empty list of them, got "
        f"{type(obj).__name__}"
    )


def _shared_text_range(items: Sequence[Any], preserve_density: bool | None) -> float:
    weights = [w for it in items if isinstance(it, Explanation) and has_spans(it)
               for t in it.targets or [] for w in char_weights(t, preserve_density)]
    return weight_range(weights)


def _shared_image_vmax(items: Sequence[Any], signed: bool, channel_axis: int | None) -> float:
    groups = []
    for it in items:
        expls = it.explanations if isinstance(it, Comparison) else [it]
        groups += [e.targets or [] for e in expls if is_image_explanation(e)]
    maps = display_maps(groups, signed=signed, scale="shared", channel_axis=channel_axis)
    return max((m.vmax for g in maps for m in g), default=0.0)


def format_as_html(
    expl: Any,
    *,
    signed: bool = False,
    scale: str | float | None = None,
    colormap: ColormapLike = None,
    alpha_limit: float = 0.65,
    show_original: bool = True,
    min_size: int = 128,
    resampling_filter: Any = Image.Resampling.BILINEAR,
    channel_axis: int | None = None,
    preserve_density: bool | None = None,
    include_styles: bool = True,
) -> str:
    """Explanations as one self-contained HTML fragment.

    Image explanations become their overlays embedded as PNG data (one per
    target, with the input first when ``show_original``); text explanations
    the document highlighted as eli5 highlights it; each with a header per
    target (name, score, probability), the method, the description (layer and
    settings) and a colour legend. Every string from the model or the user is
    escaped, and the fragment loads nothing from outside.

    Parameters
    ----------
    expl : eli5.base.Explanation, eli5_nn.Comparison, or a list of them
        What to show, in order. Consecutive comparisons of the same methods
        share one table, one row per input. An ACD hierarchy
        (:func:`eli5_nn.decomposition.hierarchy`) is shown level by level.
    signed, colormap, alpha_limit, resampling_filter, channel_axis
        As in :func:`eli5_nn.format_as_image`.
    scale : {"target", "explanation", "shared"}, float or None
        Colour scale as in :func:`eli5_nn.format_as_image`; ``"shared"`` spans
        everything passed (images with images, texts with texts). ``None``:
        ``"target"`` for explanations and the comparison's own scale for
        comparisons. Text weights always use eli5's signed colours.
    show_original : bool
        Show each input picture before its overlays (default True).
    min_size : int
        Display small pictures at least this large (pixelated, not resampled).
    preserve_density : bool, optional
        eli5's option for text: spread a span's weight over its characters.
    include_styles : bool
        Include the ``<style>`` element (eli5's keyword).

    Returns
    -------
    str
        HTML; see :func:`save_html` for a standalone page.
    """
    if isinstance(expl, Hierarchy):
        return format_hierarchy_html(expl, include_styles=include_styles)
    items = _items(expl)
    base = "target" if scale is None else check_scale(scale)
    image_scale: str | float = base
    text_range: float | None = None
    if base == "shared":
        image_scale = _shared_image_vmax(items, signed, channel_axis) or "target"
        text_range = _shared_text_range(items, preserve_density) or None
    elif isinstance(base, float):
        text_range = base
    blocks = []
    bars: dict[Any, str] = {}
    i = 0
    while i < len(items):
        it = items[i]
        if isinstance(it, Comparison):
            # consecutive comparisons of the same methods: one table, one row per input
            run = [it]
            while (i + len(run) < len(items) and isinstance(items[i + len(run)], Comparison)
                   and items[i + len(run)].names == it.names):
                run.append(items[i + len(run)])
            opts = Options(signed=signed, scale=it.scale if scale is None else image_scale,
                           colormap=colormap, alpha_limit=alpha_limit,
                           show_original=show_original, resampling_filter=resampling_filter,
                           channel_axis=channel_axis)
            grid = comparison_grid([c.explanations for c in run], it.names, opts,
                                   [c.label for c in run])
            blocks.append(_grid_block(grid, min_size, bars))
            i += len(run)
            continue
        if is_image_explanation(it):
            opts = Options(signed=signed, scale=image_scale, colormap=colormap,
                           alpha_limit=alpha_limit, show_original=show_original,
                           resampling_filter=resampling_filter, channel_axis=channel_axis)
            blocks.append(_grid_block(explanations_grid([it], opts), min_size, bars))
        elif has_spans(it):
            wrange = text_range
            if base == "explanation":
                wrange = weight_range([w for t in it.targets or []
                                       for w in char_weights(t, preserve_density)])
            blocks.append(_text_block(it, wrange, preserve_density))
        else:
            blocks.append(_plain_block(it))
        i += 1
    return _ENV.get_template("explanations.html").render(
        blocks=blocks, include_styles=include_styles,
        text_legend=_legend_dict(Legend(True, None, _TEXT_CMAP), bars)
        if any(b["kind"] == "text" for b in blocks) else None,
    )


def _text_cmap(t: np.ndarray) -> np.ndarray:
    """eli5's text colours as a colormap (0.5 is zero), for the text legend."""
    out = np.ones((*np.shape(t), 4))
    for idx, v in np.ndenumerate(np.asarray(t, dtype=np.float64) * 2.0 - 1.0):
        h, s, lum = weight_color_hsl(float(v), 1.0)
        out[idx][:3] = colorsys.hls_to_rgb(h / 360.0, lum, s)
    return out


_TEXT_CMAP = _text_cmap


def save_html(path: str | Path, explanations: Any, *, title: str = "eli5-nn report",
              intro: str = "", **kwargs: Any) -> Path:
    """Write a standalone HTML page of ``explanations`` to ``path``.

    ``explanations`` is what :func:`format_as_html` takes; ``kwargs`` are its
    options. The page embeds every image, loads nothing from outside and its
    Content Security Policy blocks scripts. Returns the resolved path.
    """
    body = format_as_html(explanations, **kwargs)
    page = render_page(title, body, intro=intro)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out.resolve()


def render_page(title: str, body: str, intro: str = "") -> str:
    """A standalone page around HTML ``body`` produced by :func:`format_as_html`
    (``title`` and ``intro`` are escaped; ``body`` is inserted as it is)."""
    return _ENV.get_template("page.html").render(title=title, intro=intro, body=Markup(body),
                                                 csp=CSP)
