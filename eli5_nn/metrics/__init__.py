"""Can an explanation be trusted? Faithfulness scores and a sanity check (rank 8).

* :func:`deletion_insertion` - remove (or insert) the input's features in the
  order an explanation ranks them and follow the target's probability (the
  deletion and insertion games of Petsiuk et al. 2018, "RISE"; Samek et al.
  2017, "Evaluating the visualization of what a deep neural network has learned").
* :func:`faithfulness` - the two areas for every target of an explanation, as
  stored in ``NNTargetExplanation.faithfulness``.
* :func:`randomization_check` - the cascading model-parameter randomisation
  test of Adebayo et al. 2018, "Sanity Checks for Saliency Maps".

Targets, probabilities and baselines are parsed by :mod:`eli5_nn.targets`, the
patches by :mod:`eli5_nn.patches`; the result classes live in
:mod:`eli5_nn.results`. Importing this package lets
``explain_prediction(..., faithfulness=True)`` score explanations (it registers
:func:`faithfulness` with the pipeline, which does not import the metrics).
"""

from ..explain import register_scorer
from ..results.metrics import DeletionInsertion, RandomizationCheck
from .deletion import (
    DEFAULT_PAD_VALUE,
    MAX_AUTO_BATCH,
    MAX_DEFAULT_STEPS,
    deletion_insertion,
    faithfulness,
)
from .randomization import randomization_check

register_scorer("faithfulness", faithfulness)

__all__ = [
    "DEFAULT_PAD_VALUE",
    "MAX_AUTO_BATCH",
    "MAX_DEFAULT_STEPS",
    "DeletionInsertion",
    "RandomizationCheck",
    "deletion_insertion",
    "faithfulness",
    "randomization_check",
]
