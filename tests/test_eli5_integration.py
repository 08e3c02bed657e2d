"""eli5's dispatch and formatters accept every result."""

from __future__ import annotations

import json

import eli5
import numpy as np
import pytest
import torch
from PIL import Image

import eli5_nn
from eli5_nn.base import NNTargetExplanation
from tests import models
from tests.models import IMAGE_METHODS

STEP_KW = {"integrated-gradients": {"steps": 6}, "smoothgrad": {"samples": 3}}


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return models.randomize_bn(models.ResNetish()).eval()


@pytest.mark.parametrize("method", IMAGE_METHODS)
def test_dispatch_and_every_formatter(model, method):
    x = torch.rand(1, 3, 16, 16)
    kw = STEP_KW.get(method, {})
    expl = eli5.explain_prediction(model, x, method=method, **kw)
    assert expl.method == eli5_nn.METHODS[method].name
    assert expl.estimator == "ResNetish"
    t = expl.targets[0]
    assert isinstance(t, NNTargetExplanation)
    assert t.heatmap.shape == (16, 16) and 0 <= t.heatmap.min() <= t.heatmap.max() <= 1
    overlay = eli5.format_as_image(expl)
    assert isinstance(overlay, Image.Image) and overlay.size == (16, 16)
    d = eli5.format_as_dict(expl)
    text = json.dumps(d)
    assert d["targets"][0]["heatmap"][0][0] == pytest.approx(float(t.heatmap[0, 0]))
    assert d["image"]["image_size"] == [16, 16] and "png_base64" in d["image"]
    assert method.split("-")[0].lower() in text.lower()
    plain = eli5.format_as_text(expl)
    assert expl.method in plain and "region rows" in plain
    html = eli5.format_as_html(expl)
    assert "region rows" in html
    shown = eli5.show_prediction(model, x, method=method, **kw)
    assert isinstance(shown, Image.Image)


def test_image_made_from_channels_first_input(model):
    x = torch.zeros(1, 3, 16, 16)
    x[0, 0] = 1.0  # pure red in [0, 1]
    img = eli5.explain_prediction(model, x).image
    assert img.mode == "RGB" and img.size == (16, 16)
    assert img.getpixel((3, 4)) == (255, 0, 0)


def test_normalised_input_is_rescaled_and_user_image_is_used(model):
    x = torch.randn(1, 3, 16, 16)
    e = eli5.explain_prediction(model, x)
    assert "pass image=" in e.description
    arr = np.asarray(e.image)
    assert arr.min() == 0 and arr.max() == 255
    mine = Image.new("RGB", (64, 64), (1, 2, 3))
    e = eli5.explain_prediction(model, x, image=mine)
    assert e.image.size == (64, 64) and e.image.getpixel((0, 0)) == (1, 2, 3)
    assert eli5.format_as_image(e).size == (64, 64)
    assert "pass image=" not in e.description


def test_grayscale_input_gives_grayscale_image():
    torch.manual_seed(0)
    net = models.plain_cnn(channels=1).eval()
    e = eli5.explain_prediction(net, torch.rand(1, 1, 8, 8) * 255)
    assert e.image.mode == "L" and e.image.size == (8, 8)


def test_description_names_layer_and_settings(model):
    e = eli5.explain_prediction(model, torch.rand(1, 3, 16, 16), layer="layers.1")
    assert "'layers.1'" in e.description and "relu=True" in e.description
    e = eli5.explain_prediction(model, torch.rand(1, 3, 16, 16), method="integrated-gradients",
                                steps=7)
    assert "7 steps" in e.description and "completeness error" in e.description


def test_layer_by_name_index_and_module_agree(model):
    x = torch.rand(1, 3, 16, 16)
    names = [n for n, _ in model.named_modules() if n]
    idx = names.index("layers.1")
    by_name = eli5.explain_prediction(model, x, layer="layers.1").targets[0].attribution
    by_index = eli5.explain_prediction(model, x, layer=idx).targets[0].attribution
    by_module = eli5.explain_prediction(model, x, layer=model.layers[1]).targets[0].attribution
    np.testing.assert_array_equal(by_name, by_index)
    np.testing.assert_array_equal(by_name, by_module)


def test_automatic_layer_is_the_last_spatial_map(model):
    e = eli5.explain_prediction(model, torch.rand(1, 3, 16, 16))
    # the last module whose output keeps a spatial map: the last residual stage
    assert "'layers'" in e.description
    assert e.targets[0].attribution.shape == (32, 4, 4)


def test_counterfactual_explains_the_negated_score(model):
    x = torch.rand(1, 3, 16, 16)
    pos = eli5.explain_prediction(model, x, method="gradient", targets=[1]).targets[0]
    neg = eli5.explain_prediction(model, x, method="gradient", targets=[1],
                                  counterfactual=True).targets[0]
    np.testing.assert_allclose(neg.attribution, -pos.attribution, rtol=1e-6)
    cam = eli5.explain_prediction(model, x, targets=[1], counterfactual=True)
    assert "counterfactual" in cam.description


def test_relu_switch_for_cam(model):
    x = torch.rand(1, 3, 16, 16)
    off = eli5.explain_prediction(model, x, relu=False).targets[0]
    on = eli5.explain_prediction(model, x, relu=True).targets[0]
    np.testing.assert_array_equal(off.attribution, on.attribution)  # raw values unchanged
    assert off.heatmap.max() == pytest.approx(1.0)


def test_numpy_input_and_non_image_input():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 3)).eval()
    e = eli5_nn.explain_prediction_nn(net, np.random.rand(1, 6).astype(np.float32),
                                      method="gradient-x-input")
    assert e.image is None and e.targets[0].heatmap.shape == (6,)
    json.dumps(eli5.format_as_dict(e))
