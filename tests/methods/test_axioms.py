"""Axioms and hand computations on PyTorch models, on attribution (the raw values).

The invariants every method shares (several targets, batches and ``batch_size``,
seeds, constant input, model state) run from the table in tests/conformance/; the
closed forms of each method also run there on the numpy fake adapter."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from eli5_nn import explain_prediction_nn as explain
from tests import models


def _delta(model: nn.Module, x: torch.Tensor, c: int, base: torch.Tensor) -> float:
    with torch.no_grad():
        return float(model(x)[0, c] - model(base)[0, c])


def test_integrated_gradients_completeness_on_trained_digits(digits_model):
    model, xs, _ = digits_model
    for i in range(8):
        x = xs[i : i + 1]
        e = explain(model, x, method="integrated-gradients")
        t = e.targets[0]
        expected = _delta(model, x, t.target, torch.zeros_like(x))
        assert abs(t.attribution.sum() - expected) <= 0.01 * abs(expected)


def test_integrated_gradients_completeness_with_baseline(arch_model, image_batch):
    x = image_batch[:1]
    base = torch.full_like(x, 0.5)
    t = explain(arch_model, x, method="integrated-gradients", baseline=base, steps=128).targets[0]
    expected = _delta(arch_model, x, t.target, base)
    assert abs(t.attribution.sum() - expected) <= 0.01 * abs(expected) + 1e-5


def test_fullgrad_completeness_on_relu_nets(arch_model, image_batch):
    for i in range(2):
        x = image_batch[i : i + 1]
        for t in explain(arch_model, x, method="fullgrad", top_targets=2).targets:
            assert t.attribution.shape == (3, 16, 16)
            np.testing.assert_allclose(t.attribution.sum(), t.score, rtol=1e-4, atol=1e-6)


def test_fullgrad_warns_when_completeness_fails():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Tanh(), nn.Flatten(), nn.Linear(4 * 14 * 14, 3))
    with pytest.warns(UserWarning, match="completeness"):
        explain(model, torch.randn(1, 3, 16, 16), method="fullgrad")


def test_grad_cam_equals_hand_computation():
    torch.manual_seed(0)
    model = models.gap_linear().eval()
    x = torch.randn(1, 3, 7, 9)
    for c in range(4):
        e = explain(model, x, targets=[c], layer="0")
        with torch.no_grad():
            a = model[0](x)[0]  # (K, h, w)
        w = model[3].weight[c].detach() / (a.shape[1] * a.shape[2])  # d score / dA_k
        expected = (w[:, None, None] * a).numpy()
        t = e.targets[0]
        np.testing.assert_allclose(t.attribution, expected, rtol=1e-5, atol=1e-7)
        cam = np.clip(expected.sum(0), 0, None)
        assert t.heatmap.shape == (7, 9)  # the map is already at the input's size
        if cam.max() > 0:
            np.testing.assert_allclose(t.heatmap, cam / cam.max(), rtol=1e-5, atol=1e-6)
        # sum of attribution = score - bias on conv → GAP → linear
        np.testing.assert_allclose(
            t.attribution.sum(), t.score - float(model[3].bias[c].detach()), rtol=1e-4, atol=1e-6
        )


def test_grad_cam_pp_equals_hand_computation():
    torch.manual_seed(1)
    model = models.gap_linear().eval()
    x = torch.randn(1, 3, 6, 6)
    c = 2
    e = explain(model, x, method="grad-cam++", targets=[c], layer=0)
    with torch.no_grad():
        a = model[0](x)[0].numpy().astype(np.float64)
    g = np.broadcast_to(model[3].weight[c].detach().numpy()[:, None, None] / 36.0, a.shape)
    denom = 2 * g**2 + a.sum(axis=(1, 2), keepdims=True) * g**3
    alpha = np.where(denom != 0, g**2 / np.where(denom != 0, denom, 1), 0)
    weights = (alpha * np.maximum(g, 0)).sum(axis=(1, 2))
    np.testing.assert_allclose(e.targets[0].attribution, weights[:, None, None] * a,
                               rtol=1e-4, atol=1e-7)


def _linear(n_in: int, n_out: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(n_in, n_out)).eval()


def test_gradient_x_input_of_linear_model_is_w_times_x():
    model = _linear(48, 3, 0)
    x = torch.randn(1, 3, 4, 4)
    for c in range(3):
        t = explain(model, x, method="gradient-x-input", targets=[c]).targets[0]
        w = model[1].weight[c].detach().reshape(3, 4, 4)
        np.testing.assert_allclose(t.attribution, (w * x[0]).numpy(), rtol=1e-6, atol=1e-7)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    steps=st.integers(1, 20),
    scale=st.floats(0.1, 10.0),
)
def test_integrated_gradients_of_linear_model_is_exact(seed, steps, scale):
    """On a linear model IG from zero is w ⊙ x for any number of steps (property test)."""
    model = _linear(12, 2, seed)
    x = torch.randn(1, 3, 2, 2, generator=torch.Generator().manual_seed(seed)) * scale
    t = explain(model, x, method="integrated-gradients", steps=steps, targets=[1]).targets[0]
    w = model[1].weight[1].detach().reshape(3, 2, 2)
    np.testing.assert_allclose(t.attribution, (w * x[0]).numpy(), rtol=1e-4, atol=1e-5)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), batch_size=st.integers(1, 9), null=st.integers(0, 11))
def test_null_player_and_chunking_invariance(seed, batch_size, null):
    """A feature the model ignores gets zero attribution; chunking does not change results."""
    model = _linear(12, 2, seed)
    with torch.no_grad():
        model[1].weight[:, null] = 0.0
    x = torch.randn(1, 3, 2, 2, generator=torch.Generator().manual_seed(seed + 1))
    a = explain(model, x, method="integrated-gradients", steps=9, batch_size=batch_size)
    b = explain(model, x, method="integrated-gradients", steps=9)
    flat = a.targets[0].attribution.reshape(-1)
    assert flat[null] == 0.0
    np.testing.assert_allclose(flat, b.targets[0].attribution.reshape(-1), rtol=1e-5, atol=1e-7)


def test_smoothgrad_of_many_docs_is_the_mean_gradient_under_shared_noise_in_any_chunking():
    """Every doc's sample ``s`` uses the same standard noise (scaled by the doc's own
    range), drawn once per chunk however many rows share it: the result equals the
    hand-computed mean of gradients, whatever the chunking."""
    import eli5_nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3)).eval()
    x = torch.randn(5, 4)
    kw = {"method": "smoothgrad", "samples": 4, "noise": 0.3, "random_state": 7,
          "targets": [0], "progress": False}
    runs = [np.stack([e.targets[0].attribution for e in
                      eli5_nn.explain_predictions(model, x, batch_size=b, **kw)])
            for b in (1, 3, 20)]
    for r in runs[1:]:
        np.testing.assert_allclose(r, runs[0], rtol=1e-5, atol=1e-7)
    # by hand: the noise of sample s, drawn as the torch adapter draws it
    span = (x.amax(1, keepdim=True) - x.amin(1, keepdim=True)) * 0.3
    from eli5_nn.methods.gradient import _sample_seeds

    seeds = _sample_seeds(7, 4)
    total = torch.zeros_like(x)
    for s in seeds:
        eps = torch.randn((1, 4), generator=torch.Generator().manual_seed(int(s)))
        xs = (x + eps * span).requires_grad_(True)
        (g,) = torch.autograd.grad(model(xs)[:, 0].sum(), xs)
        total += g
    np.testing.assert_allclose(runs[0], (total / 4).numpy(), rtol=1e-4, atol=1e-6)
