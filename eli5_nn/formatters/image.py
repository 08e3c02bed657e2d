"""``eli5_nn.format_as_image``: every target as a labelled overlay panel."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from eli5.base import Explanation
from PIL import Image, ImageDraw, ImageFont

from ..errors import Eli5NNTypeError
from ..results import Comparison
from .colors import ColormapLike, colour_bar
from .views import Grid, Legend, Options, explanations_grid

PAD = 8
LINE = 14
BAR = 14
BACKGROUND = (255, 255, 255)
INK = (34, 34, 34)


def _font() -> Any:
    return ImageFont.load_default()


#: characters PIL's default font lacks, drawn as ASCII look-alikes
_ASCII = str.maketrans({"\u00d7": "x", "\u2212": "-", "\u2192": "->", "\u2026": "...",
                        "\u00b1": "+/-"})


def _fit(draw: ImageDraw.ImageDraw, text: str, width: int, font: Any) -> str:
    """``text`` shortened with an ellipsis to fit ``width`` pixels."""
    text = text.translate(_ASCII)
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "...", font=font) > width:
        text = text[:-1]
    return text + "..."


def _scaled(image: Image.Image, factor: int) -> Image.Image:
    img = image.convert("RGBA")
    if factor == 1:
        return img
    return img.resize((img.width * factor, img.height * factor), Image.Resampling.NEAREST)


def draw_grid(grid: Grid, *, labels: bool = True, legend: bool = True, min_size: int = 128
              ) -> Image.Image:
    """Draw a :class:`~.views.Grid` on a white canvas.

    Pictures smaller than ``min_size`` pixels on their longer side are enlarged
    by a whole factor (nearest neighbour, so pixels stay crisp).
    """
    cells = [c for row in grid.rows for c in row.cells if c.image is not None]
    cw = max((c.image.width for c in cells if c.image is not None), default=1)
    ch = max((c.image.height for c in cells if c.image is not None), default=1)
    factor = max(1, math.ceil(min_size / max(cw, ch)))
    cw, ch = cw * factor, ch * factor
    n_cols = max(len(row.cells) for row in grid.rows)
    n_caption = max((len(c.caption) for row in grid.rows for c in row.cells), default=0)
    cap_h = (n_caption * LINE + 4) if labels else 0
    head_h = (LINE + 6) if labels else 0
    col_h = (LINE + 4) if labels and grid.col_titles else 0
    row_h = head_h + ch + cap_h
    legend_w = (BAR + (6 + 80 if labels else PAD)) if legend else 0
    width = PAD + n_cols * (cw + PAD) + legend_w
    height = PAD + col_h + len(grid.rows) * (row_h + PAD)
    canvas = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    font = _font()
    if col_h:
        for j, title in enumerate(grid.col_titles):
            x = PAD + j * (cw + PAD)
            draw.text((x, PAD), _fit(draw, title, cw, font), fill=INK, font=font)
    y = PAD + col_h
    for row in grid.rows:
        heading = ": ".join(t for t in (row.label, row.detail) if t)
        if labels and heading:
            draw.text((PAD, y), _fit(draw, heading, width - 2 * PAD, font), fill=INK, font=font)
        top = y + head_h
        for j, cell in enumerate(row.cells):
            x = PAD + j * (cw + PAD)
            if cell.image is not None:
                pic = _scaled(cell.image, factor)
                canvas.paste(pic, (x, top), pic)
            if labels:
                for k, line in enumerate(cell.caption):
                    draw.text((x, top + ch + 2 + k * LINE), _fit(draw, line, cw, font),
                              fill=INK, font=font)
        if legend:
            _draw_legend(canvas, draw, row.legend, PAD + n_cols * (cw + PAD), top, ch, font, labels)
        y += row_h + PAD
    return canvas


def _draw_legend(canvas: Image.Image, draw: ImageDraw.ImageDraw, legend: Legend, x: int,
                 top: int, height: int, font: Any, labels: bool) -> None:
    bar = colour_bar(height, BAR, legend.signed, legend.cmap, vertical=True)
    canvas.paste(bar, (x, top))
    draw.rectangle((x, top, x + BAR - 1, top + height - 1), outline=INK)
    if not labels:
        return
    ticks = legend.ticks()
    for k, text in enumerate(reversed(ticks)):
        ty = top + round(k * (height - LINE) / max(1, len(ticks) - 1))
        draw.text((x + BAR + 4, ty), _fit(draw, text, 78, font), fill=INK, font=font)


def format_as_image(
    expl: Explanation | Sequence[Explanation],
    *,
    signed: bool = False,
    scale: str | float = "target",
    colormap: ColormapLike = None,
    alpha_limit: float = 0.65,
    show_original: bool = False,
    labels: bool = True,
    legend: bool = True,
    min_size: int = 128,
    resampling_filter: Any = Image.Resampling.BILINEAR,
    channel_axis: int | None = None,
    contour: bool | None = None,
) -> Image.Image:
    """Draw image explanations: every target as an overlay panel with its label.

    Parameters
    ----------
    expl : eli5.base.Explanation, list of them, or eli5_nn.Comparison
        Image explanations (``Explanation.image`` set); several are drawn as
        rows, e.g. to compare images or methods; a comparison from
        :func:`eli5_nn.compare` as one column per method.
    signed : bool
        False (default): the ``heatmap`` of each target with a sequential
        colormap. True: the raw ``attribution`` (channels summed) with a
        diverging colormap centred on zero, green for evidence for the target
        and red against it.
    scale : {"target", "explanation", "shared"} or float
        Colour scale: each map its own (default); one per explanation, shared
        by its targets; one for everything drawn; or a fixed ``vmax`` in the
        attribution's units (to compare separate drawings). On a common scale
        unsigned heatmaps are weighted by each target's peak attribution.
    colormap : str, matplotlib colormap or callable, optional
        Default: viridis (unsigned) or red–white–green (signed).
    alpha_limit : float
        Opacity of the overlay where the map is strongest (0 to 1), as in
        ``eli5.format_as_image``; opacity grows with the map's magnitude.
    show_original : bool
        Put the input picture before the overlays.
    labels, legend : bool
        Draw captions (target, score, probability) and the colour bar.
    min_size : int
        Enlarge small pictures (by a whole factor, nearest neighbour) to at
        least this size before drawing the map on them.
    resampling_filter : PIL filter
        How maps are resized to the picture (eli5's keyword); default bilinear.
    channel_axis : int, optional
        Channel axis of ``attribution`` for signed maps; found automatically.
    contour : bool, optional
        Draw the input's strokes over the map (a dark line with a light halo),
        so the input stays visible where the map is strong. Default: for
        one-channel (grey) inputs such as digits.

    Returns
    -------
    PIL.Image.Image
        An RGB image.

    Raises
    ------
    TypeError
        When an explanation has no image (use :func:`eli5_nn.format_as_html`).
    """
    if isinstance(expl, Comparison):
        return expl.format_as_image(
            signed=signed, scale=scale, colormap=colormap, alpha_limit=alpha_limit,
            show_original=show_original, labels=labels, legend=legend, min_size=min_size,
            resampling_filter=resampling_filter, channel_axis=channel_axis, contour=contour)
    expls = _as_list(expl)
    opts = Options(signed=signed, scale=scale, colormap=colormap, alpha_limit=alpha_limit,
                   show_original=show_original, resampling_filter=resampling_filter,
                   channel_axis=channel_axis, min_size=min_size, contour=contour)
    return draw_grid(explanations_grid(expls, opts), labels=labels, legend=legend,
                     min_size=min_size)


def _as_list(expl: Any) -> list[Explanation]:
    if isinstance(expl, Explanation):
        return [expl]
    if isinstance(expl, (list, tuple)) and expl and all(isinstance(e, Explanation)
                                                        for e in expl):
        return list(expl)
    raise Eli5NNTypeError(
        "expected an eli5 Explanation or a non-empty list of them, got "
        f"{type(expl).__name__}"
    )
