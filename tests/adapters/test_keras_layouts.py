"""The Keras adapter states layouts from data formats and layer kinds (run once per
backend: ``KERAS_BACKEND=tensorflow|jax|torch pytest tests/adapters/test_keras_layouts.py``)."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from eli5_nn.adapters import get_adapter  # noqa: E402
from eli5_nn.errors import ExplanationError  # noqa: E402
from eli5_nn.layout import Layout  # noqa: E402


def _cnn(data_format: str) -> keras.Model:
    cf = data_format == "channels_first"
    shape = (3, 12, 12) if cf else (12, 12, 3)
    return keras.Sequential([
        keras.Input(shape),
        keras.layers.Conv2D(4, 3, data_format=data_format, name="conv"),
        keras.layers.BatchNormalization(axis=1 if cf else -1, name="bn"),
        keras.layers.Activation("relu", name="relu"),
        keras.layers.GlobalAveragePooling2D(data_format=data_format, name="gap"),
        keras.layers.Dense(3, name="fc"),
    ])


@pytest.mark.parametrize("data_format", ["channels_first", "channels_last"])
def test_image_layouts_follow_the_data_format(data_format):
    cf = data_format == "channels_first"
    model = _cnn(data_format)
    adapter = get_adapter(model)
    x = adapter.as_batch(np.random.default_rng(0).random((2, *model.input_shape[1:]), "float32"))
    want = Layout("CHW" if cf else "HWC")
    assert adapter.input_layout(x) == want
    for name in ("conv", "bn", "relu"):
        assert adapter.layer_layout(adapter.find_layer(name), x) == want, name
    assert adapter.layer_layout(adapter.find_layer("fc"), x) == Layout("C")
    found = adapter.spatial_layers(x)
    assert [(ref.name, shape, layout) for ref, shape, layout in found] == [
        ("conv", (4, 10, 10) if cf else (10, 10, 4), want),
        ("bn", (4, 10, 10) if cf else (10, 10, 4), want),
        ("relu", (4, 10, 10) if cf else (10, 10, 4), want),
    ]


def test_sequence_layers_put_features_last_and_token_ids_are_tokens():
    model = keras.Sequential([
        keras.Input((7,), dtype="int32"),
        keras.layers.Embedding(20, 5, name="embed"),
        keras.layers.LSTM(6, return_sequences=True, name="lstm"),
        keras.layers.Dense(4, name="dense"),
        keras.layers.GlobalAveragePooling1D(name="pool"),
        keras.layers.Dense(2, name="fc"),
    ])
    adapter = get_adapter(model)
    x = adapter.as_batch(np.arange(14).reshape(2, 7) % 20)
    assert adapter.input_layout(x) == Layout("T")
    for name in ("embed", "lstm", "dense"):
        assert adapter.layer_layout(adapter.find_layer(name), x) == Layout("TC"), name


def test_token_map_of_an_image_model_gets_a_grid():
    inp = keras.Input((8, 8, 3))
    h = keras.layers.Conv2D(6, 2, strides=2, name="patches")(inp)
    h = keras.layers.Reshape((16, 6), name="tokens")(h)
    h = keras.layers.Dense(6, name="mix")(h)
    out = keras.layers.Dense(2, name="fc")(keras.layers.GlobalAveragePooling1D()(h))
    adapter = get_adapter(keras.Model(inp, out))
    x = adapter.as_batch(np.zeros((1, 8, 8, 3), "float32"))
    assert adapter.layer_layout(adapter.find_layer("mix"), x) == Layout("TC", grid=(4, 4))


def test_contextual_decomposition_is_refused_with_what_to_use():
    model = _cnn("channels_last")
    adapter = get_adapter(model)
    x = adapter.as_batch(np.zeros((1, 12, 12, 3), "float32"))
    with pytest.raises(ExplanationError, match="PyTorch models only.*integrated-gradients"):
        adapter.decompose(x, np.ones((1, 12, 12, 3), "float32"))
