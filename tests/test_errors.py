"""Bad input gets an error that says what was expected."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

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


# -- errors that help (issue 15) ------------------------------------------------------------
def test_unknown_keyword_names_explain_prediction_and_lists_the_arguments(model):
    x = torch.rand(1, 3, 8, 8)
    with pytest.raises(TypeError, match=r"explain_prediction\(\) got unexpected keyword "
                       r"argument 'methd' \(did you mean 'method'\?\)\. Valid arguments are: "
                       r".*quadrature.*steps"):
        explain(model, x, methd="gradient")
    with pytest.raises(TypeError, match=r"explain_predictions\(\) .*'stpes'"):
        eli5_nn.explain_predictions(model, x, method="integrated-gradients", stpes=3)


@pytest.mark.parametrize("name", ["Grad-CAM", "grad_cam", "GradCAM", "GRAD CAM"])
def test_method_names_ignore_case_and_separators(model, name):
    x = torch.rand(1, 3, 8, 8)
    e = explain(model, x, method=name)
    assert e.method == "Grad-CAM"
    np.testing.assert_array_equal(e.targets[0].attribution,
                                  explain(model, x).targets[0].attribution)


def test_misspelt_method_gets_did_you_mean(model):
    with pytest.raises(ValueError, match=r"unknown method 'integrated-gradient' \(did you mean "
                       r"'integrated-gradients'\?\); valid methods are"):
        explain(model, torch.rand(1, 3, 8, 8), method="integrated-gradient")


@pytest.mark.parametrize("to", ["numpy", "torch"])
def test_channels_last_input_to_a_channels_first_model_suggests_the_transpose(model, to):
    x = torch.rand(1, 8, 8, 3)
    doc = x.numpy() if to == "numpy" else x
    for method in ("grad-cam", "gradient"):
        with pytest.raises(ValueError, match=r"looks channels last.*np\.transpose\(x, "
                           r"\(0, 3, 1, 2\)\) \(torch: x\.permute\(0, 3, 1, 2\)\)"):
            explain(model, doc, method=method)


def test_wrong_shape_that_no_transpose_fixes_gets_no_transpose_hint(model):
    with pytest.raises(ValueError, match="could not run") as err:
        explain(model, torch.rand(1, 8, 8, 5))
    assert "transpose" not in str(err.value)


def test_pil_image_as_doc_is_converted_and_drawn_on(model):
    rgb = Image.fromarray((np.arange(8 * 8 * 3) % 256).astype(np.uint8).reshape(8, 8, 3))
    e = explain(model, rgb, method="gradient")
    assert "PIL image" in e.description and "RGB values in [0, 1]" in e.description
    assert "(1, 3, 8, 8) (NCHW)" in e.description
    assert e.image.size == (8, 8) and e.image.getpixel((1, 0)) == rgb.getpixel((1, 0))
    x = torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 255).permute(2, 0, 1)[None]
    np.testing.assert_allclose(e.targets[0].attribution,
                               explain(model, x, method="gradient").targets[0].attribution,
                               rtol=1e-6)
    mine = Image.new("RGB", (32, 32))
    assert explain(model, rgb, image=mine).image.size == (32, 32)  # image= wins


def test_grayscale_pil_image_and_a_list_of_them():
    torch.manual_seed(0)
    gray_model = models.plain_cnn(channels=1).eval()
    pics = [Image.new("L", (8, 8), v) for v in (0, 128, 255)]
    many = eli5_nn.explain_predictions(gray_model, pics, method="gradient")
    assert len(many) == 3 and all(e.image.mode == "L" for e in many)
    assert "L values in [0, 1] of shape (3, 1, 8, 8)" in many[0].description
    assert many[2].image.getpixel((0, 0)) == 255
    # an RGB picture for a one-channel model: converted to grayscale
    assert "L values" in explain(gray_model, Image.new("RGB", (8, 8))).description


def test_pil_image_the_model_cannot_take_says_how_to_convert():
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 2)).eval()
    with pytest.raises(ValueError, match=r"doc is a PIL image \(RGB, 16×16\).*Convert it as "
                       r"the model expects.*transpose\(2, 0, 1\)\[None\].*image=img"):
        explain(mlp, Image.new("RGB", (16, 16)), method="gradient")
    with pytest.raises(ValueError, match="different sizes"):
        eli5_nn.explain_predictions(mlp, [Image.new("RGB", (8, 8)), Image.new("RGB", (9, 8))])


def test_readme_batched_example_with_a_none_target(model):
    xs = torch.rand(3, 3, 8, 8)
    expls = eli5_nn.explain_predictions(model, xs, method="smoothgrad", samples=3,
                                        random_state=0, targets=[[1], [2, 4], None])
    assert [[t.target for t in e.targets] for e in expls][:2] == [[1], [2, 4]]
    with torch.no_grad():
        top = int(model(xs[2:3]).argmax())
    assert [t.target for t in expls[2].targets] == [top]
