"""From target explanations to display maps on a chosen colour scale.

A *display map* is a float array with the shape of the target's ``heatmap``:
in [0, 1] for unsigned maps, in [-1, 1] for signed maps, where 1 (or -1) is the
value ``vmax`` of the colour scale. No framework is imported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ExplanationError
from ..modalities.image import resize_map
from ..results.comparison import SCALES as SCALES
from ..results.comparison import check_scale


@dataclass
class DisplayMap:
    """One target's map ready to colour.

    ``values`` is in [0, 1] (unsigned) or [-1, 1] (signed); ``vmax`` is the raw
    value drawn at full colour; ``raw_peak`` the target's own peak magnitude.
    """

    target: Any
    values: np.ndarray
    vmax: float
    raw_peak: float
    signed: bool


def signed_map(target: Any, channel_axis: int | None = None) -> np.ndarray:
    """The target's signed attribution as a map with the shape of its heatmap.

    The target's ``layout`` (:class:`eli5_nn.Layout`, the layout of
    ``attribution``) says which axis holds channels (the channels of an image
    input or of a CAM layer map, the embedding axis of text): they are summed,
    prefix tokens dropped and tokens put on their grid
    (:meth:`~eli5_nn.Layout.channel_sum`); the map is then resized to the
    heatmap. ``channel_axis`` overrides the layout. Nothing is guessed from
    shapes: a target without a layout (made before eli5-nn recorded layouts)
    is drawn only when its attribution already is a map (as many axes as the
    heatmap).

    Raises
    ------
    ValueError
        When the target has no ``attribution``, or no layout for an
        attribution with channels, or the map does not fit the heatmap.
    """
    attribution = getattr(target, "attribution", None)
    heatmap = getattr(target, "heatmap", None)
    if attribution is None or heatmap is None:
        raise ExplanationError(
            "signed maps need the raw attribution and the heatmap of each target "
            "(eli5_nn explanations carry both); use signed=False for this explanation"
        )
    a = np.asarray(attribution, dtype=np.float64)
    h = np.asarray(heatmap, dtype=np.float64)
    layout = getattr(target, "layout", None)
    if channel_axis is not None:
        m = a.sum(axis=channel_axis)
    elif layout is not None:
        m = layout.channel_sum(a) if layout.map_axes else a
    elif a.ndim == h.ndim:
        m = a
    else:
        raise ExplanationError(
            f"cannot draw the signed attribution of shape {a.shape} over the heatmap of shape "
            f"{h.shape}: the target has no layout saying which axis holds the channels (a "
            "result made before eli5-nn recorded layouts). Set target.layout (e.g. "
            "eli5_nn.Layout('CHW')), pass channel_axis=, or draw with signed=False"
        )
    if m.ndim != h.ndim:
        raise ExplanationError(
            f"the signed map of shape {m.shape} (attribution {a.shape}, layout "
            f"{getattr(layout, 'axes', None)!r}) does not fit the heatmap of shape {h.shape}"
        )
    return resize_map(m, h.shape)


def _raw_map(target: Any, signed: bool, channel_axis: int | None) -> tuple[np.ndarray, float]:
    """The map in raw units and the target's peak magnitude."""
    heatmap = getattr(target, "heatmap", None)
    if heatmap is None:
        raise ExplanationError(
            f"target {target.target!r} has no heatmap to draw; explain the prediction with "
            "eli5_nn (or set TargetExplanation.heatmap)"
        )
    if signed:
        m = signed_map(target, channel_axis)
        return m, float(np.max(np.abs(m))) if m.size else 0.0
    h = np.clip(np.asarray(heatmap, dtype=np.float64), 0.0, 1.0)
    peak = 1.0
    if getattr(target, "attribution", None) is not None:
        try:
            s = signed_map(target, channel_axis)
        except ValueError:
            s = None
        if s is not None and s.size and float(np.max(np.abs(s))) > 0:
            peak = float(np.max(np.abs(s)))
    return h * peak, peak


def display_maps(
    groups: Sequence[Sequence[Any]],
    *,
    signed: bool,
    scale: str | float,
    channel_axis: int | None = None,
) -> list[list[DisplayMap]]:
    """Display maps for groups of targets (one group per explanation).

    ``scale``: ``"target"`` gives each map its own scale (its peak at full
    colour); ``"explanation"`` one scale per group; ``"shared"`` one scale for
    all groups; a number fixes ``vmax`` in raw units. Unsigned maps are the
    heatmaps in [0, 1]; on a common scale each is weighted by its target's peak
    signed attribution, so weaker evidence looks fainter. Signed maps are the
    channel sums of ``attribution`` (see :func:`signed_map`).
    """
    scale = check_scale(scale)
    raws = [[_raw_map(t, signed, channel_axis) for t in group] for group in groups]
    every = [peak for group in raws for _, peak in group]
    shared = max(every, default=0.0)
    out = []
    for group, raw_group in zip(groups, raws, strict=True):
        group_peak = max((peak for _, peak in raw_group), default=0.0)
        maps = []
        for t, (m, peak) in zip(group, raw_group, strict=True):
            if isinstance(scale, float):
                vmax = scale
            elif scale == "target":
                vmax = peak
            elif scale == "explanation":
                vmax = group_peak
            else:
                vmax = shared
            values = m / vmax if vmax > 0 else np.zeros_like(m)
            values = np.clip(values, -1.0 if signed else 0.0, 1.0)
            maps.append(DisplayMap(t.target, values, float(vmax), peak, signed))
        out.append(maps)
    return out
