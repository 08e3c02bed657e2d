"""Output kinds: logits (softmax gives proba), probabilities (as given), multi-label
sigmoids, regression (no proba); detected from the model or stated with ``output=``."""

from __future__ import annotations

import eli5
import numpy as np
import pytest
import torch
from torch import nn

import eli5_nn

from .cases import build, scores


def cnn(head: list[nn.Module], n_out: int = 3) -> nn.Module:
    torch.manual_seed(0)
    from .conftest import DEVICE

    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(4, n_out), *head,
    ).eval().to(DEVICE)


@pytest.fixture
def x(device: str) -> torch.Tensor:
    return torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(3)).to(device)


def probas(model: nn.Module, x: torch.Tensor, **kwargs: object) -> tuple[list, np.ndarray]:
    expl = eli5.explain_prediction(model, x, targets=[0, 1, 2][: scores(model, x).shape[1]],
                                   method="gradient", **kwargs)
    return [t.proba for t in expl.targets], np.array([t.score for t in expl.targets])


def test_sigmoid_outputs_are_multilabel_probabilities(x: torch.Tensor) -> None:
    model = cnn([nn.Sigmoid()])
    proba, score = probas(model, x)
    np.testing.assert_allclose(score, scores(model, x)[0], rtol=1e-6)
    np.testing.assert_allclose(proba, score, rtol=1e-6)  # the sigmoids, not a softmax of them


def test_softmax_outputs_are_probabilities(x: torch.Tensor) -> None:
    model = cnn([nn.Softmax(dim=-1)])
    proba, score = probas(model, x)
    np.testing.assert_allclose(proba, score, rtol=1e-6)


def test_logits_get_a_softmax(x: torch.Tensor) -> None:
    model = cnn([])
    proba, score = probas(model, x)
    s = scores(model, x)[0]
    np.testing.assert_allclose(proba, np.exp(s) / np.exp(s).sum(), rtol=1e-6)


def test_output_argument_multilabel_applies_a_sigmoid_per_label(x: torch.Tensor) -> None:
    model = cnn([])
    proba, score = probas(model, x, output="multilabel")
    np.testing.assert_allclose(proba, 1 / (1 + np.exp(-score)), rtol=1e-6)


def test_regression_has_no_proba(x: torch.Tensor) -> None:
    model = cnn([], n_out=1)
    expl = eli5.explain_prediction(model, x, method="gradient")
    t = expl.targets[0]
    assert t.proba is None
    assert np.isclose(t.score, scores(model, x)[0, 0], rtol=1e-6)
    assert "p=" not in eli5_nn.format_as_html(expl)


def test_output_argument_regression_and_unknown_kind(x: torch.Tensor) -> None:
    model = cnn([])
    proba, _ = probas(model, x, output="regression")
    assert proba == [None, None, None]
    with pytest.raises(eli5_nn.errors.ExplanationError, match="multilabel"):
        eli5.explain_prediction(model, x, output="softmaxed")


@pytest.mark.parametrize(("problem", "n_labels"), [("multi_label_classification", 3),
                                                   (None, 1)])
def test_hugging_face_problem_type(problem: str | None, n_labels: int, device: str) -> None:
    pytest.importorskip("transformers")
    from eli5_nn.adapters import architectures

    from . import hf_models

    model, doc = build("hf-bert", device)
    settings = model.config.to_dict()
    for key in ("id2label", "label2id"):
        settings.pop(key, None)
    config = hf_models.transformers.BertConfig(
        **{**settings, "num_labels": n_labels, "problem_type": problem}
    )
    torch.manual_seed(0)
    model = hf_models.transformers.BertForSequenceClassification(config).eval().to(device)
    expl = eli5.explain_prediction(model, doc, method="gradient-x-input")
    t = expl.targets[0]
    if n_labels == 1:
        assert architectures.output_kind(model) == "regression"
        assert t.proba is None
    else:
        assert architectures.output_kind(model) == "multilabel"
        assert np.isclose(t.proba, 1 / (1 + np.exp(-t.score)), rtol=1e-6)
