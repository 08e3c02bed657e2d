"""output=: what the model's outputs are decides ``proba`` (and the description says which)."""

from __future__ import annotations

import eli5
import numpy as np
import pytest
import torch
from torch import nn

import eli5_nn  # noqa: F401  (registers the handlers)
from eli5_nn.errors import ExplanationError

SIGMOIDS = np.array([0.87, 0.12, 0.62])


class Constant(nn.Module):
    """A conv net whose output does not depend on the input: ``values``, optionally
    through a final ``head`` module."""

    def __init__(self, logits: np.ndarray, head: nn.Module | None = None) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3, padding=1)
        self.fc = nn.Linear(2, len(logits))
        with torch.no_grad():
            self.fc.weight.zero_()
            self.fc.bias.copy_(torch.as_tensor(logits, dtype=torch.float32))
        self.head = head or nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.fc(torch.relu(self.conv(x)).mean(dim=(2, 3))))


def logit(p: np.ndarray) -> np.ndarray:
    return np.log(p / (1 - p))


@pytest.fixture
def x() -> torch.Tensor:
    return torch.rand(1, 3, 6, 6, generator=torch.Generator().manual_seed(0))


def explain(model: nn.Module, x: torch.Tensor, **kwargs: object) -> eli5.base.Explanation:
    n = model.fc.out_features
    return eli5.explain_prediction(model, x, method="gradient", targets=list(range(n)),
                                   **kwargs)


def test_multilabel_sigmoids_come_back_as_given(x: torch.Tensor) -> None:
    """Sigmoid outputs [0.87, 0.12, 0.62] are the per-label probabilities, not the
    input of a softmax."""
    model = Constant(SIGMOIDS)
    expl = explain(model, x, output="probabilities")
    np.testing.assert_allclose([t.proba for t in expl.targets], SIGMOIDS, rtol=1e-6)
    assert "Outputs read as probabilities (output=)" in expl.description


def test_multilabel_logits_get_a_sigmoid_per_label(x: torch.Tensor) -> None:
    expl = explain(Constant(logit(SIGMOIDS)), x, output="multilabel")
    np.testing.assert_allclose([t.proba for t in expl.targets], SIGMOIDS, rtol=1e-5)
    assert "sigmoid per label" in expl.description


def test_final_sigmoid_is_detected(x: torch.Tensor) -> None:
    """Where the model ends in a Sigmoid (or a Softmax) its outputs are the
    probabilities: as given, not the input of a softmax."""
    model = Constant(logit(SIGMOIDS), nn.Sigmoid())
    expl = explain(model, x)
    np.testing.assert_allclose([t.proba for t in expl.targets], SIGMOIDS, rtol=1e-5)
    assert "Outputs read as probabilities (stated by Constant)" in expl.description
    soft = Constant(np.array([1.0, -2.0, 0.5]), nn.Softmax(dim=-1))
    expl = explain(soft, x)
    np.testing.assert_allclose([t.proba for t in expl.targets], [t.score for t in expl.targets])


def test_a_sigmoid_inside_the_model_is_not_its_output(x: torch.Tensor) -> None:
    """A Sigmoid called last whose output the model changes afterwards (here: times
    3) does not make the outputs probabilities."""

    class Scaled(Constant):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return 3 * super().forward(x)

    expl = explain(Scaled(np.zeros(3), nn.Sigmoid()), x)
    assert "Outputs read as logits" in expl.description


def test_one_output_is_a_regression(x: torch.Tensor) -> None:
    expl = explain(Constant(np.array([2.5])), x)
    t = expl.targets[0]
    assert t.proba is None and t.score == pytest.approx(2.5)
    assert "regression" in expl.description and "no proba" in expl.description
    assert explain(Constant(np.array([2.5])), x, output="regression").targets[0].proba is None
    p = explain(Constant(np.array([0.3])), x, output="probabilities").targets[0].proba
    assert p == pytest.approx(0.3)


def test_logits_and_distributions_are_read_from_the_scores(x: torch.Tensor) -> None:
    logits = np.array([1.0, -2.0, 0.5])
    expl = explain(Constant(logits), x)
    soft = np.exp(logits) / np.exp(logits).sum()
    np.testing.assert_allclose([t.proba for t in expl.targets], soft, rtol=1e-5)
    assert "Outputs read as logits (read from the scores" in expl.description
    dist = np.array([0.2, 0.5, 0.3])
    expl = explain(Constant(dist), x)
    np.testing.assert_allclose([t.proba for t in expl.targets], dist, rtol=1e-6)
    assert "Outputs read as probabilities" in expl.description


def test_unknown_output_kind_is_refused(x: torch.Tensor) -> None:
    with pytest.raises(ExplanationError, match="did you mean 'logits'"):
        explain(Constant(SIGMOIDS), x, output="logit")
