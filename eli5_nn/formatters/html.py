"""Self-contained HTML: images embedded as PNG data, every string escaped.

``format_as_html`` returns a fragment (a ``<div>`` with its own styles) that
notebooks display; ``save_html`` writes a standalone page whose Content
Security Policy also forbids scripts and outside resources.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from eli5.base import Explanation
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from PIL import Image

from ..errors import Eli5NNTypeError
from ..results import Comparison, Hierarchy
from .blocks import grid_block, plain_block, text_block, text_comparison_block
from .colors import ColormapLike
from .datauri import image_data_uri  # noqa: F401  (re-exported by formatters)
from .hierarchy import format_hierarchy_html
from .maps import check_scale, display_maps
from .spans import char_weights, has_spans, weight_range
from .views import Options, comparison_grid, explanations_grid, is_image_explanation

_ENV = Environment(
    loader=PackageLoader("eli5_nn", "templates"),
    autoescape=select_autoescape(["html"]),
)

#: what a page may load: inline styles and images embedded as data, nothing else
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def _items(obj: Any) -> list[Explanation | Comparison]:
    if isinstance(obj, (Explanation, Comparison)):
        return [obj]
    if isinstance(obj, (list, tuple)) and obj and all(
            isinstance(o, (Explanation, Comparison)) for o in obj):
        return list(obj)
    if isinstance(obj, (str, Path)):
        raise Eli5NNTypeError(
            f"expected an eli5 Explanation, an eli5_nn Comparison or a list of them, got the "
            f"string {str(obj)!r} (to write a page: eli5_nn.save_html(path, explanations), "
            "the path first)"
        )
    raise Eli5NNTypeError(
        "expected an eli5 Explanation, an eli5_nn Comparison, a non-empty list of them, or a "
        f"dict of section headings to such lists, got {type(obj).__name__}"
    )


def _sections(obj: Any) -> list[tuple[str, list[Explanation | Comparison]]]:
    """``(heading, items)`` pairs: a dict gives one section per key, anything
    else one section without a heading."""
    if isinstance(obj, Mapping):
        if not obj:
            raise Eli5NNTypeError("expected at least one section of explanations, got an "
                                  "empty dict")
        return [(str(k), _items(v)) for k, v in obj.items()]
    return [("", _items(obj))]


def _leaves(items: Sequence[Any]) -> list[Explanation]:
    return [e for it in items for e in (it.explanations if isinstance(it, Comparison) else [it])]


def _shared_text_range(items: Sequence[Any], preserve_density: bool | None) -> float:
    weights = [w for it in _leaves(items) if has_spans(it)
               for t in it.targets or [] for w in char_weights(t, preserve_density)]
    return weight_range(weights)


def _shared_image_vmax(items: Sequence[Any], signed: bool, channel_axis: int | None) -> float:
    groups = [e.targets or [] for e in _leaves(items) if is_image_explanation(e)]
    maps = display_maps(groups, signed=signed, scale="shared", channel_axis=channel_axis)
    return max((m.vmax for g in maps for m in g), default=0.0)


def _is_text_comparison(it: Any) -> bool:
    return isinstance(it, Comparison) and all(has_spans(e) for e in it.explanations)


def _blocks(items: Sequence[Any], opts: dict[str, Any], scale: str | float | None,
            image_scale: str | float, text_range: float | None,
            preserve_density: bool | None, bars: dict[Any, str]) -> list[dict[str, Any]]:
    """The blocks of one section; consecutive comparisons of the same methods
    share one table, one row per input."""
    blocks = []
    i = 0
    while i < len(items):
        it = items[i]
        if isinstance(it, Comparison):
            run = [it]
            while (i + len(run) < len(items) and isinstance(items[i + len(run)], Comparison)
                   and items[i + len(run)].names == it.names
                   and _is_text_comparison(items[i + len(run)]) == _is_text_comparison(it)):
                run.append(items[i + len(run)])
            i += len(run)
            if _is_text_comparison(it):
                blocks.append(text_comparison_block(run, text_range, preserve_density, bars))
                continue
            grid_opts = Options(scale=it.scale if scale is None else image_scale, **opts)
            grid = comparison_grid([c.explanations for c in run], it.names, grid_opts,
                                   [c.label for c in run])
            blocks.append(grid_block(grid, bars))
            continue
        i += 1
        if is_image_explanation(it):
            grid = explanations_grid([it], Options(scale=image_scale, **opts))
            blocks.append(grid_block(grid, bars))
        elif has_spans(it):
            wrange = text_range
            if scale == "explanation":
                wrange = weight_range([w for t in it.targets or []
                                       for w in char_weights(t, preserve_density)])
            blocks.append(text_block(it, wrange, preserve_density, bars))
        else:
            blocks.append(plain_block(it))
    return blocks


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
    contour: bool | None = None,
) -> str:
    """Explanations as one self-contained HTML fragment.

    Image explanations become their overlays embedded as PNG data (one per
    target, with the input first when ``show_original``); text explanations
    the document highlighted as eli5 highlights it. Each block has a heading
    (the method), the model's name, one colour legend above its content, one
    caption line per map (target, score and probability; in comparisons the
    target once per row), and the descriptions (layer and settings) once,
    below. Maps that are all zero say so. Every string from the model or the
    user is escaped, and the fragment loads nothing from outside. Pictures
    shrink to fit narrow windows; wide tables scroll sideways inside their
    block, with the legend kept in view.

    Parameters
    ----------
    expl : eli5.base.Explanation, eli5_nn.Comparison, a list of them, or a dict
        What to show, in order. Consecutive comparisons of the same methods
        share one table, one row per input: image comparisons one column per
        method, text comparisons (the same document explained by several
        methods or models) one column per method with the highlighted text.
        A dict ``{heading: explanations}`` gives one section per heading. An
        ACD hierarchy (:func:`eli5_nn.decomposition.hierarchy`) is shown level
        by level.
    signed, colormap, alpha_limit, resampling_filter, channel_axis, contour
        As in :func:`eli5_nn.format_as_image`.
    scale : {"target", "explanation", "shared"}, float or None
        Colour scale as in :func:`eli5_nn.format_as_image`; ``"shared"`` spans
        everything passed (images with images, texts with texts). ``None``:
        ``"target"`` for explanations and the comparison's own scale for
        comparisons. Text weights always use eli5's signed colours.
    show_original : bool
        Show each input picture before its overlays (default True).
    min_size : int
        Display small pictures at least this large (enlarged by a whole factor,
        nearest neighbour, before the map is drawn on them).
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
    sections = _sections(expl)
    every = [it for _, items in sections for it in items]
    base = "target" if scale is None else check_scale(scale)
    image_scale: str | float = base
    text_range: float | None = None
    if base == "shared":
        image_scale = _shared_image_vmax(every, signed, channel_axis) or "target"
        text_range = _shared_text_range(every, preserve_density) or None
    elif isinstance(base, float):
        text_range = base
    opts = {"signed": signed, "colormap": colormap, "alpha_limit": alpha_limit,
            "show_original": show_original, "resampling_filter": resampling_filter,
            "channel_axis": channel_axis, "min_size": min_size, "contour": contour}
    bars: dict[Any, str] = {}
    rendered = [{"heading": heading,
                 "blocks": _blocks(items, opts, None if scale is None else base, image_scale,
                                   text_range, preserve_density, bars)}
                for heading, items in sections]
    return _ENV.get_template("explanations.html").render(
        sections=rendered, include_styles=include_styles)


def save_html(path: str | Path, explanations: Any, *, title: str = "eli5-nn report",
              intro: str = "", **kwargs: Any) -> Path:
    """Write a standalone HTML page of ``explanations`` to ``path``.

    ``explanations`` is what :func:`format_as_html` takes (a dict of section
    headings to explanations gives sections); ``kwargs`` are its options. The
    page embeds every image, loads nothing from outside and its Content
    Security Policy blocks scripts. Returns the resolved path.

    Raises
    ------
    TypeError
        When ``path`` is not a path (the arguments swapped: the path comes
        first), or ``explanations`` holds something else than explanations.
    """
    if not isinstance(path, (str, Path)) or isinstance(explanations, (str, Path)):
        raise Eli5NNTypeError(
            "save_html takes the path first, then the explanations: "
            "eli5_nn.save_html('report.html', explanations); got "
            f"{type(path).__name__} and {type(explanations).__name__}"
        )
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
