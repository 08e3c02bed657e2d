"""Every result class of eli5-nn: data only (rank 1, above the errors and layouts).

- :class:`NNTargetExplanation`, :class:`NNExplanation`: eli5's explanation
  classes with the raw attribution and its layout;
- :class:`Comparison`: several methods on one input (:func:`eli5_nn.compare`);
- :class:`Hierarchy`, :class:`Level`, :class:`Component`: ACD hierarchies;
- :class:`DeletionInsertion`, :class:`RandomizationCheck`: the metrics' results.

Nothing here imports a formatter, the pipeline or a framework; results reach
the formatters through the hooks in :mod:`eli5_nn.results.display`.
"""

from .comparison import SCALES, Comparison, check_scale
from .display import set_html_formatter
from .explanation import Lazy, NNExplanation, NNTargetExplanation, Once, joined, realise
from .hierarchy import Component, Hierarchy, Level
from .metrics import DeletionInsertion, RandomizationCheck

__all__ = [
    "SCALES",
    "Comparison",
    "Component",
    "DeletionInsertion",
    "Hierarchy",
    "Lazy",
    "Level",
    "NNExplanation",
    "NNTargetExplanation",
    "Once",
    "RandomizationCheck",
    "check_scale",
    "joined",
    "realise",
    "set_html_formatter",
]
