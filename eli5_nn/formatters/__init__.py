"""Formatters: explanations as pictures and HTML (no framework imports).

- :func:`format_as_image`: every target as a labelled overlay panel (PIL);
- :func:`format_as_html`: one self-contained HTML fragment, :func:`save_html`
  a standalone page;
- :func:`compare`: several methods on one input, side by side.
"""

from .compare import Comparison, compare
from .explanation import NNExplanation
from .html import format_as_html, image_data_uri, render_page, save_html
from .image import format_as_image

__all__ = [
    "Comparison",
    "NNExplanation",
    "compare",
    "format_as_html",
    "format_as_image",
    "image_data_uri",
    "render_page",
    "save_html",
]
