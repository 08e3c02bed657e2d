"""Axioms on every backend: IG completeness, several targets = each alone,
N docs = N single calls, saved-and-loaded models give the same results."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

import eli5_nn
from eli5_nn.adapters import get_adapter

from .conftest import METHODS, keras_cnn

FAST = {"samples": 3, "steps": 6}


def _kw(method: str) -> dict[str, object]:
    if method == "smoothgrad":
        return {"samples": FAST["samples"], "random_state": 0}
    if method == "integrated-gradients":
        return {"steps": FAST["steps"]}
    return {}


def test_integrated_gradients_completeness(cnn: keras.Model, x: np.ndarray) -> None:
    expl = eli5_nn.explain_prediction_nn(
        cnn, x, method="integrated-gradients", targets=[1, 2], steps=128
    )
    base = get_adapter(cnn).forward(get_adapter(cnn).as_batch(np.zeros_like(x)))
    for t in expl.targets:
        expected = t.score - float(base[0, t.target])
        # the quadrature error comes from the ReLU kinks along the path
        assert float(t.attribution.sum()) == pytest.approx(expected, rel=1e-2, abs=1e-4)


def test_fullgrad_sums_to_logit(cnn: keras.Model, x: np.ndarray) -> None:
    expl = eli5_nn.explain_prediction_nn(cnn, x, method="fullgrad", targets=[0, 4])
    for t in expl.targets:
        assert float(t.attribution.sum()) == pytest.approx(t.score, rel=1e-4, abs=1e-5)


def test_fullgrad_fused_activation_uses_pre_activation(x: np.ndarray) -> None:
    keras.utils.set_random_seed(3)
    model = keras.Sequential([
        keras.Input(x.shape[1:]),
        keras.layers.Conv2D(4, 3, activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(8, activation="relu"),
        keras.layers.Dense(3),
    ])
    expl = eli5_nn.explain_prediction_nn(model, x, method="fullgrad", targets=[0, 1, 2])
    for t in expl.targets:
        assert float(t.attribution.sum()) == pytest.approx(t.score, rel=1e-4, abs=1e-5)


@pytest.mark.parametrize("method", METHODS)
def test_several_targets_equal_each_alone(method: str, cnn: keras.Model, x: np.ndarray) -> None:
    both = eli5_nn.explain_prediction_nn(cnn, x, method=method, targets=[3, 1], **_kw(method))
    for t in both.targets:
        alone = eli5_nn.explain_prediction_nn(
            cnn, x, method=method, targets=[t.target], **_kw(method)
        )
        np.testing.assert_allclose(t.attribution, alone.targets[0].attribution,
                                   rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("method", METHODS)
def test_batch_equals_one_by_one(method: str, cnn: keras.Model, xs: np.ndarray) -> None:
    many = eli5_nn.explain_predictions(cnn, xs, method=method, targets=[2], **_kw(method))
    assert len(many) == len(xs)
    for i, expl in enumerate(many):
        one = eli5_nn.explain_prediction_nn(cnn, xs[i:i + 1], method=method, targets=[2],
                                            **_kw(method))
        np.testing.assert_allclose(expl.targets[0].attribution, one.targets[0].attribution,
                                   rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("kind", ["sequential", "functional"])
def test_saved_and_loaded_model_gives_same_results(
    kind: str, tmp_path: Path, x: np.ndarray
) -> None:
    model = keras_cnn(kind)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    for method in ("grad-cam", "integrated-gradients", "fullgrad"):
        a = eli5_nn.explain_prediction_nn(model, x, method=method, **_kw(method))
        b = eli5_nn.explain_prediction_nn(loaded, x, method=method, **_kw(method))
        np.testing.assert_allclose(a.targets[0].attribution, b.targets[0].attribution,
                                   rtol=1e-5, atol=1e-7)
        assert a.targets[0].target == b.targets[0].target
