"""What the metrics rank: the explanation's map, its target, and the features it covers."""

from __future__ import annotations

from typing import Any

import numpy as np
from eli5.base import Explanation, TargetExplanation

from ..adapters.base import Adapter, Tensor
from ..errors import Eli5NNTypeError, ExplanationError
from ..patches import block_ids, patch_size
from ..targets import class_index


def checked_shape(adapter: Adapter, x: Tensor, what: str) -> tuple[int, ...]:
    """The shape of one doc with its batch axis; an error for a batch or NaN input."""
    shape = adapter.ops.shape(x)
    if len(shape) < 2 or shape[0] != 1:
        raise ExplanationError(
            f"{what} takes one input with a leading batch axis of 1 and at least one feature "
            f"axis; got shape {shape}. Add the batch axis with x[None]."
        )
    if adapter.is_floating(x) and not adapter.ops.all_finite(x):
        raise ExplanationError("the input contains NaN or infinite values")
    return shape


def _chosen_target(explanation: Explanation, target: Any) -> TargetExplanation:
    targets = list(explanation.targets or [])
    if not targets:
        raise ExplanationError("the explanation has no targets; explain the doc first")
    if target is None:
        return targets[0]
    found = [t for t in targets if t.target == target]
    if not found:
        raise ExplanationError(
            f"target {target!r} is not among the explanation's targets "
            f"{[t.target for t in targets]}"
        )
    return found[0]


def map_and_target(explanation: Any, target: Any, target_names: Any, scores: np.ndarray
                   ) -> tuple[np.ndarray, int]:
    """The feature-score map and the class index it is evaluated for."""
    n_classes = scores.shape[1]
    if isinstance(explanation, Explanation):
        explanation = _chosen_target(explanation, target)
        target = None
    if isinstance(explanation, TargetExplanation):
        if explanation.heatmap is None:
            raise ExplanationError(
                "the target explanation has no heatmap to rank features by; pass an "
                "explanation from eli5_nn or an array of feature scores"
            )
        score_map = np.asarray(explanation.heatmap, dtype=np.float64)
        label = explanation.target if target is None else target
        cls = class_index(label, target_names, n_classes)
    else:
        try:
            score_map = np.asarray(explanation, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise Eli5NNTypeError(
                f"explanation must be an eli5 Explanation, a TargetExplanation or an array of "
                f"feature scores, got {type(explanation).__name__}"
            ) from exc
        cls = (int(np.argmax(scores[0])) if target is None
               else class_index(target, target_names, n_classes))
    if not np.all(np.isfinite(score_map)):
        raise ExplanationError("the explanation's map contains NaN or infinite values")
    return score_map, cls


def _valid_positions(
    values: np.ndarray, shape: tuple[int, ...], channel: int | None, ids: np.ndarray | None,
    pad_value: int | None,
) -> tuple[np.ndarray, np.ndarray, int | None]:
    """The map (token scores spread over all positions), which positions are features,
    and the axis (batch included) where a mask gets the channel axis back."""
    full = shape[1:]
    spatial = tuple(s for i, s in enumerate(shape) if i not in (0, channel))
    if ids is not None and pad_value is not None:
        valid = ids != pad_value
        if values.shape == full:
            return values, valid, None
        if values.ndim == 1 and ids.ndim == 1 and values.shape[0] == int(valid.sum()):
            spread = np.zeros(full)
            spread[valid] = values
            return spread, valid, None
        raise ExplanationError(
            f"the explanation's map has shape {values.shape}; for token ids of shape "
            f"{shape} expected {full} or one score per non-pad token "
            f"({int(valid.sum())} with pad_value={pad_value}). Was it computed for this "
            "doc, with this pad_value?"
        )
    if values.shape == full:
        return values, np.ones(full, dtype=bool), None
    if channel is not None and values.shape == spatial:
        return values, np.ones(spatial, dtype=bool), channel
    wanted = f"{spatial} (one score per position) or {full}" if channel is not None else full
    raise ExplanationError(
        f"the explanation's map has shape {values.shape} but the doc has shape {shape}: "
        f"expected {wanted}. Was the explanation computed for this doc?"
    )


def features(
    score_map: np.ndarray, shape: tuple[int, ...], channel: int | None, ids: np.ndarray | None,
    pad_value: int | None, patch: Any,
) -> tuple[np.ndarray, np.ndarray, int | None]:
    """Feature id per map position (-1: not a feature), each feature's mean score, and
    the axis (batch included) where the mask gets the channel axis back.

    ``channel`` is the doc's channel axis (batch included), from its layout; features
    are patches of ``patch`` (:mod:`eli5_nn.patches`; default single positions)."""
    values, valid, expand = _valid_positions(
        np.asarray(score_map, dtype=np.float64), shape, channel, ids, pad_value
    )
    cells = block_ids(values.shape, patch_size(patch, values.shape))
    groups, gid_valid = np.unique(cells[valid], return_inverse=True)
    if len(groups) == 0:
        raise ExplanationError("the doc has no features to remove (every token is padding)")
    gid = np.full(values.shape, -1, dtype=np.int64)
    gid[valid] = gid_valid.ravel()
    sums = np.bincount(gid_valid.ravel(), weights=values[valid], minlength=len(groups))
    sizes = np.bincount(gid_valid.ravel(), minlength=len(groups))
    return gid, sums / sizes, expand


__all__ = ["checked_shape", "features", "map_and_target"]
