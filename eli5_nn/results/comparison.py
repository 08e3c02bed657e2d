"""The result of :func:`eli5_nn.compare`: explanations of one input by several methods."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from eli5.base import Explanation

from ..errors import ExplanationError
from .display import call, registered

if TYPE_CHECKING:
    from PIL import Image

#: names of the colour scales (a positive number is a fixed scale)
SCALES = ("target", "explanation", "shared")


def check_scale(scale: Any) -> str | float:
    """Validate ``scale``: one of :data:`SCALES` or a positive finite number."""
    if isinstance(scale, str) and scale in SCALES:
        return scale
    if isinstance(scale, (int, float, np.floating, np.integer)) and not isinstance(scale, bool):
        value = float(scale)
        if np.isfinite(value) and value > 0:
            return value
    raise ExplanationError(
        f"scale must be one of {', '.join(map(repr, SCALES))} or a positive number, got {scale!r}"
    )


class Comparison:
    """Explanations of one input by several methods, shown side by side.

    ``explanations[i]`` is the explanation by ``names[i]``. Notebooks display
    it as HTML; :meth:`format_as_image` and :meth:`format_as_html` draw it
    with one column per method and one row per target. ``scale`` is the
    default colour scale (see :func:`eli5_nn.format_as_image`); ``label``
    names the input in row headers (default: the target).
    """

    def __init__(self, explanations: Sequence[Explanation], names: Sequence[str],
                 scale: str | float = "explanation", label: str = "") -> None:
        if not explanations or len(explanations) != len(names):
            raise ExplanationError(
                "a Comparison needs one name per explanation, and at least one"
            )
        self.explanations = list(explanations)
        self.names = [str(n) for n in names]
        self.scale = check_scale(scale)
        self.label = str(label)

    def __len__(self) -> int:
        return len(self.explanations)

    def __getitem__(self, i: int) -> Explanation:
        return self.explanations[i]

    def __repr__(self) -> str:
        return f"Comparison({', '.join(self.names)})"

    def format_as_image(self, **kwargs: Any) -> Image.Image:
        """Draw the comparison (PIL image); takes the keyword arguments of
        :func:`eli5_nn.format_as_image` (``scale`` defaults to the comparison's;
        the input is shown unless ``show_original=False``)."""
        image: Image.Image = call("comparison_image", self, **kwargs)
        return image

    def format_as_html(self, **kwargs: Any) -> str:
        """The comparison as HTML; takes the keyword arguments of
        :func:`eli5_nn.format_as_html`."""
        return str(call("html", self, **kwargs))

    def _repr_html_(self) -> str | None:
        return None if registered("html") is None else self.format_as_html()


__all__ = ["SCALES", "Comparison", "check_scale"]
