"""Keras models for the suite, which runs once per backend in its own process:
``KERAS_BACKEND=tensorflow|jax|torch python -m pytest tests/keras``."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import torch
from torch import nn

import eli5_nn  # noqa: F401  (registers the handlers)
from tests.conformance.cases import CASES

BACKEND = keras.backend.backend()
#: the methods that explain Keras image models, read from the conformance table (so a new
#: method is never silently left out of the Keras tests)
METHODS = sorted({
    c.method for c in CASES
    if c.family == "image" and c.expected_error("keras") is None and "keras" not in c.skip
})
SIZE, N_CLASSES = 12, 5


def keras_cnn(kind: str = "functional", data_format: str = "channels_last") -> keras.Model:
    """conv - BN - ReLU - conv - ReLU - GAP - dense, as Sequential or functional."""
    cf = data_format == "channels_first"
    shape = (3, SIZE, SIZE) if cf else (SIZE, SIZE, 3)
    layers = [
        keras.layers.Conv2D(4, 3, padding="same", data_format=data_format, name="conv1"),
        keras.layers.BatchNormalization(axis=1 if cf else -1, epsilon=1e-5, name="bn"),
        keras.layers.Activation("relu", name="relu1"),
        keras.layers.Conv2D(6, 3, data_format=data_format, name="conv2"),
        keras.layers.Activation("relu", name="relu2"),
        keras.layers.GlobalAveragePooling2D(data_format=data_format, name="gap"),
        keras.layers.Dense(N_CLASSES, name="fc"),
    ]
    if kind == "sequential":
        model = keras.Sequential([keras.Input(shape), *layers], name="seq_cnn")
    else:
        inp = keras.Input(shape)
        h = inp
        for layer in layers:
            h = layer(h)
        model = keras.Model(inp, h, name="func_cnn")
    rng = np.random.default_rng(0)
    for v in model.weights:
        value = rng.normal(0.0, 0.5, tuple(v.shape)).astype("float32")
        if "variance" in v.path:
            value = np.abs(value) + 0.5
        v.assign(value)
    return model


def torch_twin(model: keras.Model) -> nn.Module:
    """The same network in PyTorch (channels-first) with the Keras weights copied."""
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4, eps=1e-5), nn.ReLU(),
        nn.Conv2d(4, 6, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(6, N_CLASSES),
    )

    def t(a: object) -> torch.Tensor:
        return torch.as_tensor(np.asarray(keras.ops.convert_to_numpy(a)))

    with torch.no_grad():
        for i, name in ((0, "conv1"), (3, "conv2")):
            layer = model.get_layer(name)
            net[i].weight.copy_(t(layer.kernel).permute(3, 2, 0, 1))
            net[i].bias.copy_(t(layer.bias))
        bn = model.get_layer("bn")
        net[1].weight.copy_(t(bn.gamma))
        net[1].bias.copy_(t(bn.beta))
        net[1].running_mean.copy_(t(bn.moving_mean))
        net[1].running_var.copy_(t(bn.moving_variance))
        fc = model.get_layer("fc")
        net[7].weight.copy_(t(fc.kernel).T)
        net[7].bias.copy_(t(fc.bias))
    return net.eval()


class SubclassedCNN(keras.Model):
    """A subclassed model: conv1 is called as a layer (reachable); ``hidden`` is
    built but its kernel is used directly, so its output is never reachable."""

    def __init__(self) -> None:
        super().__init__(name="subclassed_cnn")
        self.conv1 = keras.layers.Conv2D(4, 3, padding="same", activation="relu")
        self.hidden = keras.layers.Conv2D(6, 3)
        self.pool = keras.layers.GlobalAveragePooling2D()
        self.fc = keras.layers.Dense(N_CLASSES)

    def call(self, x: object) -> object:
        h = self.conv1(x)
        if not self.hidden.built:
            self.hidden.build(h.shape)
        h = keras.ops.relu(keras.ops.conv(h, self.hidden.kernel) + self.hidden.bias)
        return self.fc(self.pool(h))


def subclassed_cnn() -> keras.Model:
    keras.utils.set_random_seed(0)
    model = SubclassedCNN()
    model(np.zeros((1, SIZE, SIZE, 3), dtype="float32"))
    return model


@pytest.fixture
def cnn() -> keras.Model:
    return keras_cnn("functional")


@pytest.fixture
def x() -> np.ndarray:
    return np.random.default_rng(1).random((1, SIZE, SIZE, 3)).astype("float32")


@pytest.fixture
def xs() -> np.ndarray:
    return np.random.default_rng(2).random((3, SIZE, SIZE, 3)).astype("float32")
