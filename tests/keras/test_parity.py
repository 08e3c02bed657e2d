"""The same CNN in PyTorch and Keras (copied weights) gives the same attributions."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
import torch

import eli5_nn
from eli5_nn.adapters.torch import TorchOps

from .conftest import METHODS, keras_cnn, torch_twin

# CAM layers: the second ReLU in both
LAYERS = {"keras": "relu2", "torch": "4"}


def _numpy_noise_torch(self: TorchOps, like: torch.Tensor, std: object, seed: int) -> object:
    """Keras's noise (numpy, channels-last), laid out channels-first for torch."""
    n, c, h, w = like.shape
    noise = np.random.default_rng(int(seed)).standard_normal((n, h, w, c))
    return torch.as_tensor(noise.transpose(0, 3, 1, 2).copy(), dtype=like.dtype) * std


def _close(a: np.ndarray, b: np.ndarray) -> None:
    scale = max(float(np.abs(b).max()), 1e-6)
    assert float(np.abs(a - b).max()) / scale < 1e-4


#: the functional CNN of conftest, saved once on TensorFlow and committed
SAVED = Path(__file__).parent / "data" / "cnn.keras"


@pytest.mark.parametrize("saved", [False, True], ids=["built", "saved-on-tensorflow"])
@pytest.mark.parametrize("method", METHODS)
def test_same_attribution_as_pytorch(
    method: str, saved: bool, x: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Built here, or loaded from the file saved on TensorFlow: on every backend the
    Keras model gives the PyTorch twin's attributions."""
    monkeypatch.setattr(TorchOps, "normal", _numpy_noise_torch)
    model = keras.saving.load_model(SAVED, safe_mode=True) if saved else keras_cnn()
    net = torch_twin(model)
    kw: dict[str, object] = {"method": method, "targets": [0, 3]}
    if method.startswith("grad-cam"):
        kw_k, kw_t = {**kw, "layer": LAYERS["keras"]}, {**kw, "layer": LAYERS["torch"]}
    else:
        kw_k = kw_t = kw
    if method == "smoothgrad":
        kw_k = {**kw_k, "samples": 4, "random_state": 0}
        kw_t = {**kw_t, "samples": 4, "random_state": 0}
    if method == "integrated-gradients":
        kw_k = {**kw_k, "steps": 8}
        kw_t = {**kw_t, "steps": 8}
    ek = eli5_nn.explain_prediction_nn(model, x, **kw_k)
    et = eli5_nn.explain_prediction_nn(net, torch.from_numpy(x.transpose(0, 3, 1, 2).copy()),
                                       **kw_t)
    for tk, tt in zip(ek.targets, et.targets, strict=True):
        assert tk.target == tt.target
        assert tk.score == pytest.approx(tt.score, rel=1e-4, abs=1e-5)
        # channels-last (H, W, C) vs channels-first (C, H, W)
        _close(np.transpose(tk.attribution, (2, 0, 1)), tt.attribution)
        _close(tk.heatmap, tt.heatmap)
