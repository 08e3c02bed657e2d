"""Targets: several at once, names, top-k, and batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import eli5_nn
from eli5_nn import explain_prediction_nn as explain
from tests.models import IMAGE_METHODS

STEP_KW = {"integrated-gradients": {"steps": 8}, "smoothgrad": {"samples": 4, "random_state": 0}}


@pytest.mark.parametrize("method", IMAGE_METHODS)
def test_several_targets_equal_each_alone(arch_model, image_batch, method):
    x = image_batch[:1]
    kw = STEP_KW.get(method, {})
    both = explain(arch_model, x, method=method, targets=[3, 1], **kw)
    assert [t.target for t in both.targets] == [3, 1]
    for t in both.targets:
        alone = explain(arch_model, x, method=method, targets=[t.target], **kw).targets[0]
        np.testing.assert_allclose(t.attribution, alone.attribution, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(t.heatmap, alone.heatmap, rtol=1e-5, atol=1e-6)
        assert t.score == pytest.approx(alone.score)


@pytest.mark.parametrize("method", IMAGE_METHODS)
def test_explain_predictions_equals_single_calls(arch_model, image_batch, method):
    kw = STEP_KW.get(method, {})
    targets = [[0], [1, 2], [4], [3, 0]]
    many = eli5_nn.explain_predictions(arch_model, image_batch, method=method, targets=targets,
                                       **kw)
    assert len(many) == 4
    for i, e in enumerate(many):
        one = explain(arch_model, image_batch[i : i + 1], method=method, targets=targets[i], **kw)
        assert [t.target for t in e.targets] == targets[i]
        for a, b in zip(e.targets, one.targets, strict=True):
            np.testing.assert_allclose(a.attribution, b.attribution, rtol=1e-4, atol=1e-6)
            assert a.proba == pytest.approx(b.proba, rel=1e-5)


def test_default_target_is_top_class_and_top_targets(arch_model, image_batch):
    x = image_batch[:1]
    with torch.no_grad():
        scores = arch_model(x)[0].numpy()
    order = np.argsort(-scores)
    assert explain(arch_model, x).targets[0].target == order[0]
    top = explain(arch_model, x, top_targets=3)
    assert [t.target for t in top.targets] == list(order[:3])
    probs = np.exp(scores - scores.max())
    probs /= probs.sum()
    for t in top.targets:
        assert t.score == pytest.approx(float(scores[t.target]), rel=1e-5)
        assert t.proba == pytest.approx(float(probs[t.target]), rel=1e-5)


def test_target_names_list_and_dict(arch_model, image_batch):
    x = image_batch[:1]
    names = ["cat", "dog", "owl", "eel", "yak"]
    e = explain(arch_model, x, targets=[1, 4], target_names=names)
    assert [t.target for t in e.targets] == ["dog", "yak"]
    e = explain(arch_model, x, targets=["owl"], target_names=names)
    assert e.targets[0].target == "owl"
    e = explain(arch_model, x, targets=[2], target_names={2: "two"})
    assert e.targets[0].target == "two"


def test_probabilities_are_read_from_softmax_outputs(image_batch):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 4),
                                torch.nn.Softmax(dim=1))
    t = explain(model, image_batch[:1], method="gradient").targets[0]
    assert t.proba == pytest.approx(t.score)


def test_rows_read_as_probabilities_sum_to_one_within_1e_4():
    from eli5_nn.targets import proba

    near = np.array([[0.3, 0.7 + 5e-5], [0.5, 0.5]])
    np.testing.assert_array_equal(proba(near), near)  # as given
    off = np.array([[0.3, 0.7 + 5e-4], [0.5, 0.5]])
    soft = proba(off)
    assert soft is not None and not np.array_equal(soft, off)
    np.testing.assert_allclose(soft.sum(axis=1), 1.0)
