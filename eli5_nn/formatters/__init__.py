"""Formatters: explanations as pictures and HTML (no framework imports).

- :func:`format_as_image`: every target as a labelled overlay panel (PIL);
- :func:`format_as_html`: one self-contained HTML fragment, :func:`save_html`
  a standalone page;
- :func:`comparison_image`: a :class:`~eli5_nn.results.Comparison` drawn with
  one column per method (:func:`eli5_nn.compare` builds one).

Formatters read result data only: they never run a model and import no
framework. Importing this package registers them as the display hooks of the
result classes (:mod:`eli5_nn.results.display`), so ``_repr_html_`` works.
"""

from ..results import Comparison, NNExplanation
from ..results import display as _display
from .compare import comparison_image
from .hierarchy import format_hierarchy_html
from .html import format_as_html, image_data_uri, render_page, save_html
from .image import format_as_image

_display.set_html_formatter(format_as_html)
_display.register("comparison_image", comparison_image)
_display.register("hierarchy_html", format_hierarchy_html)

__all__ = [
    "Comparison",
    "NNExplanation",
    "comparison_image",
    "format_as_html",
    "format_as_image",
    "format_hierarchy_html",
    "image_data_uri",
    "render_page",
    "save_html",
]
