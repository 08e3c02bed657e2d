"""ACD hierarchies (Singh et al., ICLR 2019) as HTML.

The data classes (:class:`~eli5_nn.results.Hierarchy`, ``Level``,
``Component``) live in :mod:`eli5_nn.results` and are re-exported here; they
are built by :func:`eli5_nn.decomposition.hierarchy`. For text the HTML shows one row per
level with each component's phrase highlighted by its CD score; for images one
panel per level with each component drawn over the picture.
"""

from __future__ import annotations

import numpy as np
from eli5.formatters.html import format_hsl, weight_color_hsl
from markupsafe import Markup, escape
from PIL import Image

from ..errors import Eli5NNTypeError
from ..results.hierarchy import Component, Hierarchy, Level
from .colors import format_number
from .datauri import image_data_uri

_STYLE = """<style>
.eli5-nn-acd table { border-collapse: collapse; }
.eli5-nn-acd td, .eli5-nn-acd th { padding: 3px 8px; vertical-align: top; font-size: 0.9em;
  border: none; text-align: left; }
.eli5-nn-acd .eli5-nn-acd-doc { line-height: 1.7; }
.eli5-nn-acd figure { display: inline-block; margin: 4px; text-align: center; font-size: 0.8em; }
.eli5-nn-acd img { image-rendering: pixelated; }
</style>"""


def _colour(score: float, scale: float) -> str:
    return str(format_hsl(weight_color_hsl(score, scale)))


def _text_rows(h: Hierarchy, scale: float) -> list[str]:
    rows = []
    for i, level in enumerate(h.levels):
        owner: dict[int, float] = {}
        for c in level.components:
            for u in c.units:
                owner[u] = c.score
        words = []
        for u, tok in enumerate(h.tokens):
            if u in owner:
                words.append(f'<span style="background-color: {_colour(owner[u], scale)}" '
                             f'title="{escape(format_number(owner[u]))}">{escape(tok)}</span>')
            else:
                words.append(f'<span style="color: #aaa">{escape(tok)}</span>')
        rows.append(f"<tr><th>level {i + 1}</th><td class=\"eli5-nn-acd-doc\">"
                    f"{' '.join(words)}</td></tr>")
    return rows


def _panel(h: Hierarchy, level: int, scale: float) -> Image.Image:
    rows, cols = h.grid
    ph, pw = h.patch
    base = (h.image.convert("RGB") if h.image is not None
            else Image.new("RGB", (cols * pw, rows * ph), "white"))
    base = base.resize((cols * pw, rows * ph), Image.Resampling.NEAREST)
    pic = np.asarray(base, dtype=np.float64) / 255.0 * 0.5 + 0.25
    overlay = np.zeros((rows, cols, 3))
    alpha = np.zeros((rows, cols))
    for c in h.levels[level].components:
        strength = min(1.0, abs(c.score) / scale) if scale > 0 else 0.0
        colour = (0.1, 0.6, 0.1) if c.score >= 0 else (0.8, 0.1, 0.1)
        for u in c.units:
            overlay[u // cols, u % cols] = colour
            alpha[u // cols, u % cols] = 0.35 + 0.5 * strength
    big = np.kron(overlay, np.ones((ph, pw, 1)))
    big_a = np.kron(alpha, np.ones((ph, pw)))[..., None]
    out = pic * (1 - big_a) + big * big_a
    return Image.fromarray(np.clip(out * 255, 0, 255).astype(np.uint8))


def format_hierarchy_html(h: Hierarchy, *, include_styles: bool = True) -> str:
    """An ACD hierarchy as a self-contained HTML fragment.

    Text: one table row per level, the tokens of each component coloured by
    its CD score (green for the target, red against; unselected tokens grey).
    Images: one panel per level with each component shaded by its score.
    """
    if not isinstance(h, Hierarchy):
        raise Eli5NNTypeError(f"expected an eli5_nn Hierarchy, got {type(h).__name__}")
    scores = [abs(c.score) for lv in h.levels for c in lv.components]
    scale = max(scores, default=0.0) or 1.0
    head = (f"<h3>ACD hierarchy</h3><p>{escape(h.estimator)}: target "
            f"{escape(str(h.target))}, score {escape(format_number(h.score))}; "
            f"{len(h.levels)} levels</p>")
    if h.kind == "text":
        body = "<table>" + "".join(_text_rows(h, scale)) + "</table>"
    else:
        figs = []
        for i in range(len(h.levels)):
            panel = _panel(h, i, scale)
            factor = max(1, 128 // max(panel.size))
            n = len(h.levels[i].components)
            figs.append(
                f'<figure><img src="{image_data_uri(panel, factor)}" '
                f'alt="level {i + 1}"><figcaption>level {i + 1}: {n} '
                f'component{"s" if n != 1 else ""}</figcaption></figure>'
            )
        body = "".join(figs)
    return str(Markup(
        f'<div class="eli5-nn-acd">{_STYLE if include_styles else ""}{head}{body}</div>'
    ))


__all__ = ["Component", "Hierarchy", "Level", "format_hierarchy_html"]
