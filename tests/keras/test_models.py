"""Sequential, functional and subclassed models; channels-first layers."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import eli5_nn

from .conftest import METHODS, keras_cnn, subclassed_cnn


def _run(model: keras.Model, x: np.ndarray, method: str, **extra: object) -> object:
    kw: dict[str, object] = {}
    if method == "smoothgrad":
        kw = {"samples": 2, "random_state": 0}
    elif method == "integrated-gradients":
        kw = {"steps": 4}
    return eli5_nn.explain_prediction_nn(model, x, method=method, **kw, **extra)


@pytest.mark.parametrize("method", METHODS)
def test_sequential_equals_functional(method: str, x: np.ndarray) -> None:
    a = _run(keras_cnn("sequential"), x, method)
    b = _run(keras_cnn("functional"), x, method)
    np.testing.assert_allclose(a.targets[0].attribution, b.targets[0].attribution,  # type: ignore[attr-defined]
                               rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("method", METHODS)
def test_subclassed_model(method: str, x: np.ndarray) -> None:
    model = subclassed_cnn()
    expl = _run(model, x, method)
    t = expl.targets[0]  # type: ignore[attr-defined]
    assert np.all(np.isfinite(t.attribution))
    assert t.heatmap.min() >= 0 and t.heatmap.max() <= 1
    if method.startswith("grad-cam"):  # the only reachable spatial layer is conv1
        assert "conv2d" in expl.description  # type: ignore[attr-defined]


@pytest.mark.parametrize("method", METHODS)
def test_channels_first_layers(method: str, x: np.ndarray) -> None:
    last = keras_cnn("functional", "channels_last")
    first = keras_cnn("functional", "channels_first")
    for a, b in zip(last.weights, first.weights, strict=True):
        b.assign(a)
    # SmoothGrad's noise is drawn in the input's own layout, so a transposed input
    # gets other noise: compare the two layouts without noise (the sample loop still runs)
    extra = {"noise": 0.0} if method == "smoothgrad" else {}
    try:
        ef = _run(first, x.transpose(0, 3, 1, 2).copy(), method, **extra)
    except Exception as exc:  # noqa: BLE001
        if "NHWC" in str(exc) or "channels_first" in str(exc):
            pytest.skip(f"this backend cannot run channels_first convolutions on CPU: {exc}")
        raise
    el = _run(last, x, method, **extra)
    a, b = ef.targets[0].attribution, el.targets[0].attribution  # type: ignore[attr-defined]
    np.testing.assert_allclose(np.moveaxis(a, 0, -1), b, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ef.targets[0].heatmap, el.targets[0].heatmap,  # type: ignore[attr-defined]
                               rtol=1e-4, atol=1e-5)
