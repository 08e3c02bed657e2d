"""Drawing a :class:`~eli5_nn.results.Comparison` (several methods on one input).

The data class lives in :mod:`eli5_nn.results`; :func:`eli5_nn.compare`
(which runs the pipeline) in :mod:`eli5_nn.compare`.
"""

from __future__ import annotations

from typing import Any

from PIL import Image

from ..results.comparison import Comparison
from .image import draw_grid
from .views import Options, comparison_grid


def comparison_image(comparison: Comparison, **kwargs: Any) -> Image.Image:
    """Draw ``comparison`` (one column per method, one row per target) as a PIL
    image; takes the keyword arguments of :func:`eli5_nn.format_as_image`
    (``scale`` defaults to the comparison's; the input is shown unless
    ``show_original=False``)."""
    kwargs.setdefault("scale", comparison.scale)
    kwargs.setdefault("show_original", True)
    draw = {k: kwargs.pop(k) for k in ("labels", "legend", "min_size") if k in kwargs}
    grid = comparison_grid([comparison.explanations], comparison.names, Options(**kwargs),
                           [comparison.label])
    return draw_grid(grid, **draw)


__all__ = ["Comparison", "comparison_image"]
