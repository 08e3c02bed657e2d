"""Bad input gets the same clear errors as for PyTorch."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import eli5_nn

from .conftest import subclassed_cnn


def test_wrong_shape_names_the_expected_one(cnn: keras.Model, x: np.ndarray) -> None:
    with pytest.raises(ValueError, match=r"expects input of shape \(1, 12, 12, 3\)"):
        eli5_nn.explain_prediction_nn(cnn, x[:, :8])


def test_missing_batch_axis_is_pointed_out(cnn: keras.Model, x: np.ndarray) -> None:
    with pytest.raises(ValueError, match=r"x\[None\]"):
        eli5_nn.explain_prediction_nn(cnn, x[0])


def test_nan_input(cnn: keras.Model, x: np.ndarray) -> None:
    bad = x.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        eli5_nn.explain_prediction_nn(cnn, bad, method="gradient")


def test_target_out_of_range(cnn: keras.Model, x: np.ndarray) -> None:
    with pytest.raises(ValueError, match="out of range"):
        eli5_nn.explain_prediction_nn(cnn, x, targets=[5])


def test_unknown_layer(cnn: keras.Model, x: np.ndarray) -> None:
    with pytest.raises(ValueError, match=r"no layer named 'conv9'.*conv1"):
        eli5_nn.explain_prediction_nn(cnn, x, layer="conv9")
    with pytest.raises(ValueError, match="out of range"):
        eli5_nn.explain_prediction_nn(cnn, x, layer=42)
    with pytest.raises(ValueError, match="not a layer of"):
        eli5_nn.explain_prediction_nn(cnn, x, layer=keras.layers.Dense(2))


def test_string_input(cnn: keras.Model) -> None:
    with pytest.raises(TypeError, match="numeric"):
        eli5_nn.explain_prediction_nn(cnn, np.array([["a"]]))


def test_unreachable_layer_points_to_gradient_methods(x: np.ndarray) -> None:
    model = subclassed_cnn()
    with pytest.raises(ValueError, match="cannot be reached.*method='gradient'"):
        eli5_nn.explain_prediction_nn(model, x, layer=model.hidden)
