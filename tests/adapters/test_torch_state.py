"""Each call leaves the model exactly as it found it, also when it raises."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from torch import nn

import eli5_nn
from eli5_nn import explain_prediction_nn as explain
from tests import models
from tests.models import IMAGE_METHODS


def _snapshot(model: nn.Module) -> dict:
    return {
        "modes": [m.training for m in model.modules()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "grads": [None if p.grad is None else p.grad.clone() for p in model.parameters()],
        "state": {k: v.clone() for k, v in model.state_dict().items()},
        "hooks": [
            (len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks),
             len(getattr(m, "_full_backward_hooks", None) or {}))
            for m in model.modules()
        ],
        "n_modules": len(list(model.modules())),
    }


def _assert_same(a: dict, b: dict) -> None:
    assert a["modes"] == b["modes"]
    assert a["requires_grad"] == b["requires_grad"]
    assert a["hooks"] == b["hooks"]
    assert a["n_modules"] == b["n_modules"]
    for ga, gb in zip(a["grads"], b["grads"], strict=True):
        assert (ga is None) == (gb is None)
        if ga is not None:
            assert torch.equal(ga, gb)
    for k in a["state"]:
        assert torch.equal(a["state"][k], b["state"][k]), k


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("method", IMAGE_METHODS)
def test_model_left_as_found(method, training):
    torch.manual_seed(0)
    model = models.randomize_bn(models.ResNetish())
    model.train(training)
    model.stem[0].weight.requires_grad_(False)  # a frozen layer stays frozen
    model(torch.rand(2, 3, 16, 16)).sum().backward()  # existing .grad must survive
    model.layers[0].train(not training)  # mixed modes are restored one by one
    before = _snapshot(model)
    x = torch.rand(2, 3, 16, 16)
    x_before = x.clone()
    kw = {"integrated-gradients": {"steps": 4}, "smoothgrad": {"samples": 2}}.get(method, {})
    eli5_nn.explain_predictions(model, x, method=method, **kw)
    _assert_same(before, _snapshot(model))
    assert torch.equal(x, x_before) and not x.requires_grad


@pytest.mark.parametrize("method", ["grad-cam", "gradient", "fullgrad"])
def test_model_left_as_found_when_the_call_raises(method):
    torch.manual_seed(0)
    model = models.randomize_bn(models.ResNetish()).train()
    before = _snapshot(model)
    with pytest.raises(ValueError, match="out of range"):
        explain(model, torch.rand(1, 3, 16, 16), method=method, targets=[99])
    _assert_same(before, _snapshot(model))

    class Boom(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("kaboom")

    model.fc = nn.Sequential(model.fc, Boom())
    before = _snapshot(model)
    with pytest.raises(ValueError, match="kaboom"):
        explain(model, torch.rand(1, 3, 16, 16), method=method)
    _assert_same(before, _snapshot(model))


def test_inference_mode_is_used_during_the_call():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Dropout(0.9), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 6 * 6, 3)).train()
    x = torch.rand(1, 3, 8, 8)
    a = explain(model, x, method="gradient").targets[0].attribution
    b = explain(model, x, method="gradient").targets[0].attribution
    np.testing.assert_array_equal(a, b)  # dropout off: deterministic
    assert model.training


@pytest.mark.parametrize("method", ["grad-cam", "integrated-gradients", "fullgrad"])
def test_threads_share_one_model(method):
    torch.manual_seed(0)
    model = models.randomize_bn(models.ResNetish()).eval()
    xs = torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(5))
    kw = {"steps": 6} if method == "integrated-gradients" else {}
    sequential = [explain(model, xs[i : i + 1], method=method, **kw) for i in range(8)]
    results: list = [None] * 8
    errors: list = []

    def work(i: int) -> None:
        try:
            results[i] = explain(model, xs[i : i + 1], method=method, **kw)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for a, b in zip(sequential, results, strict=True):
        np.testing.assert_array_equal(a.targets[0].attribution, b.targets[0].attribution)
        assert a.targets[0].target == b.targets[0].target
