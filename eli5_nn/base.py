"""Old import path of eli5-nn's result classes (re-exports of :mod:`eli5_nn.results`)."""

from .results import NNExplanation, NNTargetExplanation

__all__ = ["NNExplanation", "NNTargetExplanation"]
