"""Old import path of :class:`eli5_nn.results.NNExplanation` (a re-export)."""

from ..results.explanation import NNExplanation

__all__ = ["NNExplanation"]
