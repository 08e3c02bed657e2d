"""Results of :mod:`eli5_nn.metrics`: deletion/insertion curves and the randomisation check."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DeletionInsertion:
    """Deletion and insertion curves of one target.

    Attributes
    ----------
    target : int
        Index of the class whose probability is followed.
    n_features : int
        Number of features (pixels, patches or tokens) that were ranked.
    fractions : numpy.ndarray
        (steps + 1,) share of the features removed (deletion) or inserted
        (insertion), from 0 to 1.
    deletion_curve, insertion_curve : numpy.ndarray
        (steps + 1,) the target's probability at each fraction. Deletion starts
        at the prediction on the doc; insertion starts from the baseline and
        ends at the prediction on the doc.
    deletion_auc, insertion_auc : float
        Area under each curve (trapezoid rule over ``fractions``), in [0, 1].
        A faithful explanation has a low deletion and a high insertion AUC.
    """

    target: int
    n_features: int
    fractions: np.ndarray
    deletion_curve: np.ndarray
    insertion_curve: np.ndarray
    deletion_auc: float
    insertion_auc: float

    def as_dict(self) -> dict[str, float]:
        """``{"deletion_auc": ..., "insertion_auc": ...}``."""
        return {"deletion_auc": self.deletion_auc, "insertion_auc": self.insertion_auc}


@dataclass(frozen=True)
class RandomizationCheck:
    """Result of :func:`eli5_nn.metrics.randomization_check`.

    Attributes
    ----------
    method : str
        The attribution method checked.
    target : int
        Index of the class explained, the same for every model.
    cascading : bool
        Whether layers were randomised cumulatively (top down) or one at a time.
    layers : list of str
        The layer randomised at each step, top down (nearest the output first).
    correlations : numpy.ndarray
        Spearman rank correlation between the original heatmap and the heatmap
        after each step. A method that depends on the model falls towards 0.
    original : numpy.ndarray
        The heatmap of the trained model.
    heatmaps : list of numpy.ndarray
        The heatmap after each step.
    """

    method: str
    target: int
    cascading: bool
    layers: list[str]
    correlations: np.ndarray
    original: np.ndarray
    heatmaps: list[np.ndarray]

    def as_dict(self) -> dict[str, float]:
        """``{layer name: rank correlation}`` in the order the layers were randomised."""
        return {name: float(c) for name, c in zip(self.layers, self.correlations, strict=True)}


__all__ = ["DeletionInsertion", "RandomizationCheck"]
