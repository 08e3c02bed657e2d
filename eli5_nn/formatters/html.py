"""Standalone HTML: images embedded as PNG data, everything else escaped."""

from __future__ import annotations

import io
from base64 import b64encode
from collections.abc import Sequence
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from PIL import Image

_ENV = Environment(
    loader=PackageLoader("eli5_nn", "templates"),
    autoescape=select_autoescape(["html"]),
)


def image_data_uri(image: Image.Image, scale: int = 1) -> str:
    """A ``data:image/png;base64,...`` URI of ``image``, enlarged ``scale`` times
    (nearest neighbour, so small inputs stay crisp)."""
    if scale != 1:
        image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return "data:image/png;base64," + b64encode(buf.getvalue()).decode("ascii")


def render_report(title: str, sections: Sequence[dict[str, Any]], intro: str = "") -> str:
    """Render a report page.

    ``sections`` are dicts with ``title``, ``text`` and ``rows``; each row has
    ``label`` and ``cells``, each cell ``caption`` and ``src`` (a data URI).
    All strings are escaped by the template.
    """
    return _ENV.get_template("report.html").render(title=title, sections=sections, intro=intro)
