"""eli5's explanation classes, extended with the raw attribution."""

from __future__ import annotations

from typing import Any

import numpy as np
from eli5.base import TargetExplanation
from eli5.base_utils import attrs


@attrs
class NNTargetExplanation(TargetExplanation):
    """:class:`eli5.base.TargetExplanation` plus ``attribution``.

    ``attribution`` holds the method's raw, signed values in the model's units,
    with the shape of the attributed tensor without the batch axis (the input
    for gradient methods, the layer map for CAM methods). ``heatmap`` is the
    display map in [0, 1]. ``faithfulness``, when asked for, holds the
    explanation's scores from :func:`eli5_nn.metrics.faithfulness`
    (``{"deletion_auc": ..., "insertion_auc": ...}``), else ``None``.
    """

    def __init__(
        self,
        target: Any,
        feature_weights: Any = None,
        proba: float | None = None,
        score: float | None = None,
        weighted_spans: Any = None,
        heatmap: np.ndarray | None = None,
        attribution: np.ndarray | None = None,
        faithfulness: dict[str, float] | None = None,
    ) -> None:
        super().__init__(target, feature_weights, proba, score, weighted_spans, heatmap)
        self.attribution = attribution
        self.faithfulness = faithfulness
