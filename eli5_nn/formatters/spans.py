"""Text explanations as HTML: the document with each token's weight as its colour.

Weights come from eli5's ``WeightedSpans`` and are coloured as eli5 colours
them (green for, red against); unlike eli5's renderer every piece of the
document is escaped here, including vectorizer names.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby
from typing import Any

import numpy as np
from eli5.formatters.html import format_hsl, weight_color_hsl
from eli5.formatters.text_helpers import get_char_weights
from markupsafe import Markup, escape


def has_spans(expl: Any) -> bool:
    """Whether any target of ``expl`` carries weighted spans (a text explanation)."""
    return any(getattr(t, "weighted_spans", None) for t in (expl.targets or []))


def char_weights(target: Any, preserve_density: bool | None) -> list[np.ndarray]:
    """Per-character weights of each document of a target."""
    ws = getattr(target, "weighted_spans", None)
    if not ws:
        return []
    return [get_char_weights(d, preserve_density=preserve_density)
            for d in ws.docs_weighted_spans]


def weight_range(weights: Sequence[np.ndarray]) -> float:
    """The largest absolute weight (0 when there is none)."""
    return max((float(np.max(np.abs(w))) for w in weights if w.size), default=0.0)


def render_document(document: str, weights: np.ndarray, wrange: float) -> Markup:
    """``document`` as escaped HTML with a coloured span per run of equal weight."""
    parts = []
    pos = 0
    for weight, run in groupby(weights.tolist()):
        n = len(list(run))
        chunk = escape(document[pos:pos + n])
        pos += n
        if wrange <= 0 or np.isclose(weight, 0.0):
            parts.append(str(chunk))
            continue
        color = format_hsl(weight_color_hsl(weight, wrange))
        parts.append(
            f'<span class="eli5-nn-token" style="background-color: {color}" '
            f'title="{weight:.3g}">{chunk}</span>'
        )
    parts.append(str(escape(document[pos:])))
    return Markup("".join(parts))


def render_target(target: Any, preserve_density: bool | None, wrange: float | None
                  ) -> list[dict[str, Any]]:
    """The documents of one target: ``name`` (escaped later) and ``html``.

    ``wrange`` None gives the target its own colour scale.
    """
    ws = getattr(target, "weighted_spans", None)
    if not ws:
        return []
    weights = char_weights(target, preserve_density)
    rng = weight_range(weights) if wrange is None else wrange
    return [
        {"name": d.vec_name or "", "html": render_document(d.document, w, rng)}
        for d, w in zip(ws.docs_weighted_spans, weights, strict=True)
    ]
