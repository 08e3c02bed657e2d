"""Bad input gets an error that says what was expected."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import eli5_nn
from eli5_nn import explain_prediction_nn as explain
from tests import models


@pytest.fixture
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return models.plain_cnn().eval()


def test_unknown_method_lists_valid_ones(model):
    with pytest.raises(ValueError, match="unknown method 'lime'.*'grad-cam'.*'smoothgrad'"):
        explain(model, torch.rand(1, 3, 8, 8), method="lime")


def test_wrong_batch_size_for_a_single_prediction(model):
    with pytest.raises(ValueError, match="batch axis of size 1.*explain_predictions"):
        explain(model, torch.rand(2, 3, 8, 8))


def test_missing_batch_axis(model):
    with pytest.raises(ValueError, match=r"batch axis of size 1.*x\[None\]"):
        explain(model, torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match="leading batch axis"):
        explain(model, np.float32(1.0))


def test_wrong_rank_that_reaches_the_model(model):
    with pytest.raises(ValueError, match=r"could not run on an input of shape \(1, 8, 8\)"):
        explain(model, torch.rand(1, 8, 8))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_input(model, bad):
    x = torch.rand(1, 3, 8, 8)
    x[0, 1, 2, 3] = bad
    for method in ("grad-cam", "integrated-gradients"):
        with pytest.raises(ValueError, match="NaN or infinite"):
            explain(model, x, method=method)


def test_target_out_of_range(model):
    with pytest.raises(ValueError, match="target 5 is out of range.*5 outputs"):
        explain(model, torch.rand(1, 3, 8, 8), targets=[5])
    with pytest.raises(ValueError, match="out of range"):
        explain(model, torch.rand(1, 3, 8, 8), targets=[-1], method="gradient")
    with pytest.raises(ValueError, match="top_targets=9"):
        explain(model, torch.rand(1, 3, 8, 8), top_targets=9)


def test_bad_target_types(model):
    with pytest.raises(TypeError, match="class indices"):
        explain(model, torch.rand(1, 3, 8, 8), targets=[1.5])
    with pytest.raises(ValueError, match="target_names"):
        explain(model, torch.rand(1, 3, 8, 8), targets=["cat"])
    with pytest.raises(ValueError, match="either targets= or top_targets="):
        explain(model, torch.rand(1, 3, 8, 8), targets=[1], top_targets=2)
    with pytest.raises(ValueError, match="one list of targets per doc"):
        eli5_nn.explain_predictions(model, torch.rand(3, 3, 8, 8), targets=[[1], [2]])


def test_unknown_layer(model):
    with pytest.raises(ValueError, match="no layer named 'conv9'"):
        explain(model, torch.rand(1, 3, 8, 8), layer="conv9")
    with pytest.raises(ValueError, match="layer index 42 is out of range"):
        explain(model, torch.rand(1, 3, 8, 8), layer=42)
    with pytest.raises(ValueError, match="not a submodule"):
        explain(model, torch.rand(1, 3, 8, 8), layer=torch.nn.Conv2d(3, 3, 1))
    with pytest.raises(TypeError, match="layer must be"):
        explain(model, torch.rand(1, 3, 8, 8), layer=1.5)


def test_layer_without_spatial_map(model):
    with pytest.raises(ValueError, match="no spatial or temporal axes.*gradient method"):
        explain(model, torch.rand(1, 3, 8, 8), layer="7")  # the Linear layer


@pytest.mark.parametrize("method", ["gradient", "integrated-gradients", "smoothgrad",
                                    "gradient-x-input", "fullgrad"])
def test_integer_input_to_a_gradient_method(model, method):
    with pytest.raises(TypeError, match="integer/bool dtype.*floating-point"):
        explain(model, torch.randint(0, 255, (1, 3, 8, 8)), method=method)


def test_mlp_refuses_grad_cam_and_gradient_methods_work():
    torch.manual_seed(0)
    net = models.mlp().eval()
    x = torch.rand(1, 3, 8, 8)
    for method in ("grad-cam", "grad-cam++"):
        with pytest.raises(ValueError, match="MLP.*method='gradient'"):
            explain(net, x, method=method)
    for method in ("gradient", "gradient-x-input", "smoothgrad", "integrated-gradients",
                   "fullgrad"):
        h = explain(net, x, method=method).targets[0].heatmap
        assert h.shape == (8, 8) and h.max() == pytest.approx(1.0)


def test_bad_scalar_arguments(model):
    x = torch.rand(1, 3, 8, 8)
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        explain(model, x, method="integrated-gradients", steps=0)
    with pytest.raises(ValueError, match="samples must be a positive integer"):
        explain(model, x, method="smoothgrad", samples=-2)
    with pytest.raises(ValueError, match="noise must be"):
        explain(model, x, method="smoothgrad", noise=float("nan"))
    with pytest.raises(ValueError, match="batch_size must be"):
        explain(model, x, method="gradient", batch_size=0)
    with pytest.raises(ValueError, match="baseline has shape"):
        explain(model, x, method="integrated-gradients", baseline=torch.zeros(2, 2))
    with pytest.raises(ValueError, match="baseline contains NaN"):
        explain(model, x, method="integrated-gradients",
                baseline=torch.full((1, 3, 8, 8), float("nan")))
    with pytest.raises(TypeError, match="PIL"):
        explain(model, x, image=np.zeros((8, 8, 3)))
    with pytest.raises(TypeError, match="unexpected keyword"):
        explain(model, x, methd="gradient")


def test_argument_for_another_method_warns(model):
    with pytest.warns(UserWarning, match="steps= does not apply to method 'grad-cam'"):
        explain(model, torch.rand(1, 3, 8, 8), steps=10)


def test_non_model_is_refused():
    with pytest.raises(TypeError, match="torch.nn.Module"):
        explain(object(), np.zeros((1, 3)))
