"""Keras-specific axioms on every backend: FullGrad with activations fused into
layers, saved-and-loaded models give the same results. (Completeness, several
targets, batches: tests/keras/test_conformance.py, from the shared table.)"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

import eli5_nn

from .conftest import keras_cnn

FAST = {"samples": 3, "steps": 6}


def _kw(method: str) -> dict[str, object]:
    if method == "smoothgrad":
        return {"samples": FAST["samples"], "random_state": 0}
    if method == "integrated-gradients":
        return {"steps": FAST["steps"]}
    return {}


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
