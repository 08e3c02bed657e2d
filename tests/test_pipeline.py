"""The pipeline's own arguments: layout=, quadrature=, and what reaches the results."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from eli5_nn import explain_prediction_nn as explain
from eli5_nn.layout import Layout
from eli5_nn.methods import METHODS
from eli5_nn.methods.params import ARGUMENTS, QUADRATURES
from eli5_nn.methods.quadrature import matched_weights
from tests import models


class ChannelsLast(nn.Module):
    """A torch model that takes (N, H, W, C) images and permutes them itself."""

    def __init__(self) -> None:
        super().__init__()
        self.net = models.plain_cnn()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.permute(0, 3, 1, 2))


class Tokens(nn.Module):
    """Patches → a token sequence (N, 16, 8) → a linear map per token → mean → head."""

    def __init__(self) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, 8, 2, stride=2)
        self.proj = nn.Linear(8, 8)
        self.head = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.patch(x).flatten(2).transpose(1, 2)
        return self.head(torch.relu(self.proj(tokens)).mean(dim=1))


def test_layout_overrides_the_input_layout():
    torch.manual_seed(0)
    model = ChannelsLast().eval()
    x = torch.rand(1, 8, 8, 3)
    e = explain(model, x, method="gradient", layout="NHWC")
    t = e.targets[0]
    assert t.layout == Layout("HWC") and t.heatmap.shape == (8, 8)
    assert t.attribution.shape == (8, 8, 3)
    assert e.image.size == (8, 8) and e.image.mode == "RGB"
    same = explain(model, x, method="gradient", layout={"axes": "HWC"}).targets[0]
    np.testing.assert_array_equal(same.heatmap, t.heatmap)


def test_layout_of_a_token_layer_for_cam():
    torch.manual_seed(0)
    model = Tokens().eval()
    x = torch.rand(1, 3, 8, 8)
    t = explain(model, x, layer="proj", layout={"axes": "NTC", "grid": (4, 4)}).targets[0]
    assert t.attribution.shape == (16, 8) and t.layout.grid == (4, 4)
    assert t.heatmap.shape == (8, 8)
    cam = np.clip(t.attribution.sum(axis=1).reshape(4, 4), 0, None)
    assert np.argmax(cam) // 4 * 2 == np.argmax(t.heatmap) // 8 // 2 * 2  # same quadrant row
    with pytest.raises(ValueError, match=r"layout 'NCHW' has 4 axes.*pass layout="):
        explain(model, x, layer="proj", layout="NCHW")


def test_every_target_carries_its_layout(arch_model, image_batch):
    x = image_batch[:1]
    assert explain(arch_model, x, method="gradient").targets[0].layout == Layout("CHW")
    cam = explain(arch_model, x).targets[0]
    assert cam.layout is not None and cam.layout.channel_axis == 0
    assert cam.layout.channel_sum(cam.attribution).ndim == 2


def test_bad_layout_values():
    model = models.plain_cnn().eval()
    with pytest.raises(ValueError, match="not valid"):
        explain(model, torch.rand(1, 3, 8, 8), layout="NXYZ")
    with pytest.raises(TypeError, match="layout must be"):
        explain(model, torch.rand(1, 3, 8, 8), layout=3)
    with pytest.raises(ValueError, match=r"layout 'NTC' has 3 axes but the input"):
        explain(model, torch.rand(1, 3, 8, 8), method="gradient", layout="NTC")


@pytest.mark.parametrize("rule", QUADRATURES)
def test_every_quadrature_rule_is_reachable(rule):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 2)).eval()
    x = torch.randn(1, 3, 2, 2)
    e = explain(model, x, method="integrated-gradients", quadrature=rule, steps=5, targets=[1])
    w = model[1].weight[1].detach().reshape(3, 2, 2)  # exact for a linear model, any rule
    np.testing.assert_allclose(e.targets[0].attribution, (w * x[0]).numpy(), rtol=1e-4,
                               atol=1e-6)
    assert "5 steps" in e.description


def test_bad_quadrature_lists_the_rules():
    model = models.plain_cnn().eval()
    with pytest.raises(ValueError, match="not a quadrature rule; use one of 'gausslegendre'"):
        explain(model, torch.rand(1, 3, 8, 8), method="integrated-gradients",
                quadrature="simpson")
    with pytest.warns(UserWarning, match="quadrature= does not apply to method 'gradient'"):
        explain(model, torch.rand(1, 3, 8, 8), method="gradient", quadrature="riemann_middle")


def test_matched_rule_streams_over_chunks(arch_model, image_batch):
    import eli5_nn

    x = image_batch[:2]
    kw = {"method": "integrated-gradients", "quadrature": "matched_trapezoid", "steps": 12}
    whole = eli5_nn.explain_predictions(arch_model, x, targets=[[1, 3], [0]], **kw)
    small = eli5_nn.explain_predictions(arch_model, x, targets=[[1, 3], [0]], batch_size=5,
                                        **kw)
    for a, b in zip(whole, small, strict=True):
        for ta, tb in zip(a.targets, b.targets, strict=True):
            np.testing.assert_allclose(ta.attribution, tb.attribution, rtol=1e-4, atol=1e-6)
    assert "matched trapezoid" in whole[0].description
    # the same weights as quadrature.matched_weights on all nodes at once
    alphas = np.linspace(0, 1, 12)
    path = torch.stack([x[0] * float(a) for a in alphas]).requires_grad_(True)
    out = arch_model(path)[:, 1]
    (g,) = torch.autograd.grad(out.sum(), path)
    f = out.detach().double().numpy()[None]
    slopes = (g * x[0]).sum(dim=(1, 2, 3)).double().numpy()[None]
    w = torch.as_tensor(matched_weights(f, slopes)[0], dtype=torch.float32)
    expected = (x[0] * (w[:, None, None, None] * g).sum(0)).numpy()
    np.testing.assert_allclose(whole[0].targets[0].attribution, expected, rtol=1e-4,
                               atol=1e-6)


def test_every_declared_argument_is_taken_by_a_method_and_documented():
    taken = set().union(*(m.params for m in METHODS.values()))
    assert taken == set(ARGUMENTS)
    for name in ARGUMENTS:
        assert f"\n    {name} : " in explain.__doc__
    assert "layout : " in explain.__doc__


@pytest.mark.parametrize("method", ["grad-cam", "gradient"])
def test_image_heatmaps_are_resized_and_reduced_only_when_read(monkeypatch, method):
    """Nothing computed that nobody asked for: the display map (resized to the input,
    channels reduced) and the region sums are built on first read, and then equal
    the recipe they replace."""
    from eli5_nn.modalities import image as image_mod

    calls: list[str] = []
    for name in ("resize_map", "reduce_channels", "normalise"):
        original = getattr(image_mod, name)
        monkeypatch.setattr(image_mod, name, lambda *a, _f=original, _n=name, **k:
                            calls.append(_n) or _f(*a, **k))
    torch.manual_seed(0)
    model = models.ResNetish().eval()
    x = torch.rand(1, 3, 32, 32)
    t = explain(model, x, method=method, targets=[1]).targets[0]
    assert calls == []
    heat = t.heatmap
    assert heat.shape == (32, 32) and 0 <= heat.min() and heat.max() == 1
    assert "normalise" in calls
    if method == "grad-cam":
        cam = np.clip(t.layout.channel_sum(t.attribution), 0, None)
        expected = image_mod.normalise(image_mod.resize_map(cam, (32, 32)))
    else:
        expected = image_mod.normalise(np.abs(t.attribution).max(axis=0))
    np.testing.assert_allclose(heat, expected)
    assert t.heatmap is heat  # computed once
    assert t.feature_weights.pos or t.feature_weights.neg


def test_a_call_leaves_cam_sums_probabilities_and_notes_to_the_first_read(monkeypatch):
    """The CAM's channel sum, the softmax behind ``proba`` and the description's notes
    on the outputs and the input's values are computed when first read, once for
    all targets, and read as the eager recipe did."""
    from eli5_nn import pipeline
    from eli5_nn.modalities import dense
    from eli5_nn.modalities import image as image_mod

    calls: list[str] = []
    for owner, name in ((dense, "layer_maps"), (pipeline, "proba"),
                        (image_mod, "rescale_note")):
        original = getattr(owner, name)
        monkeypatch.setattr(owner, name, lambda *a, _f=original, _n=name, **k:
                            calls.append(_n) or _f(*a, **k))
    torch.manual_seed(0)
    model = models.ResNetish().eval()
    x = torch.randn(2, 3, 32, 32)  # a normalised input, which the picture rescales: a note
    from eli5_nn import explain_predictions

    expls = explain_predictions(model, x, method="grad-cam", top_targets=2)
    assert calls == []
    scores = model(x).detach().double().numpy()
    p = np.exp(scores - scores.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    for d, e in enumerate(expls):
        for t in e.targets:
            assert t.proba == pytest.approx(p[d, t.target], rel=1e-5)
    assert calls.count("proba") == 1  # every row's probability from one softmax
    t = expls[1].targets[1]
    assert calls.count("layer_maps") == 0
    assert t.feature_weights.pos or t.feature_weights.neg  # region sums of the signed map
    assert calls.count("layer_maps") == 1
    signed = t.layout.channel_sum(t.attribution)
    expected = image_mod.normalise(image_mod.resize_map(np.clip(signed, 0, None), (32, 32)))
    np.testing.assert_allclose(t.heatmap, expected)
    assert calls.count("layer_maps") == 1  # the heatmap reuses the row's sum
    text = expls[0].description
    assert "Outputs read as logits" in text and "Note: the image was rescaled" in text
    assert calls.count("rescale_note") == 1 and expls[0].description is text


def test_unread_image_results_keep_no_model_alive():
    """What an image result leaves to its first read (probabilities, maps, notes, the
    picture) holds arrays, not the model, its adapter or the modality."""
    import gc
    import weakref

    torch.manual_seed(0)
    model = models.ResNetish().eval()
    x = torch.randn(2, 3, 32, 32)
    expls = [explain(model, x[:1], method="grad-cam"), explain(model, x[1:], method="gradient")]
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None
    for e in expls:
        t = e.targets[0]
        assert 0 < t.proba < 1 and t.heatmap.shape == (32, 32) and "Outputs read" in e.description


def test_maps_that_cannot_be_resized_are_told_apart_before_any_resizing():
    from eli5_nn.modalities import image as image_mod

    with pytest.raises(Exception, match="cannot resize a map of shape"):
        image_mod.check_resizable((2, 3, 4), (8, 8, 8))
    image_mod.check_resizable((4, 4), (8, 8))
    image_mod.check_resizable((2, 3, 4), (2, 3, 4))


@pytest.mark.parametrize("values", [[1.0, np.nan], [np.inf, -np.inf], [3e38, 3e38, np.nan]])
def test_the_finiteness_check_finds_every_non_finite_value(values):
    """The torch check the pipeline runs on every attribution: one sum, and the
    value-by-value check only where the sum is not finite (also an overflow)."""
    from eli5_nn.adapters.torch_ops import TorchOps

    ops = TorchOps()
    assert not ops.all_finite(torch.tensor(values, dtype=torch.float32))
    assert ops.all_finite(torch.tensor([3e38, 3e38]))  # the sum overflows; values fine
    assert ops.all_finite(torch.arange(5))
    # any memory order (a channels-last map), each position checked
    grid = torch.zeros(2, 5, 3, 4).contiguous(memory_format=torch.channels_last)
    assert ops.all_finite(grid)
    for idx in [(0, 0, 0, 0), (1, 4, 2, 3), (0, 2, 1, 0)]:
        bad = grid.clone()
        bad[idx] = values[-1]
        assert not bad.is_contiguous() and not ops.all_finite(bad)


def test_a_model_with_nan_weights_gives_an_error_not_a_nan_map():
    torch.manual_seed(0)
    model = models.ResNetish().eval()
    with torch.no_grad():
        model.fc.weight[1, 0] = float("nan")
    with pytest.raises(ValueError, match="non-finite attributions"):
        explain(model, torch.rand(1, 3, 16, 16), method="gradient", targets=[1])
