"""Faithfulness and the randomisation check on Keras (run once per backend)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import torch

import eli5_nn
from eli5_nn.metrics import deletion_insertion, randomization_check

N_DIGITS = 10


@pytest.fixture(scope="module")
def digits_keras(digits_model: tuple) -> tuple[keras.Model, np.ndarray, torch.nn.Module]:
    """A functional Keras twin (channels-last) of the digits CNN, with its weights."""
    net, x, _ = digits_model
    inp = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(inp)
    h = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv2")(h)
    h = keras.layers.MaxPooling2D(2, name="pool")(h)
    h = keras.layers.Flatten(name="flatten")(h)
    model = keras.Model(inp, keras.layers.Dense(10, name="dense")(h), name="digits")

    def t(p: torch.Tensor) -> np.ndarray:
        return p.detach().numpy()

    for name, conv in (("conv1", net.features[0]), ("conv2", net.features[2])):
        model.get_layer(name).set_weights([t(conv.weight).transpose(2, 3, 1, 0), t(conv.bias)])
    w = t(net.head[1].weight)  # torch flattens (C, H, W), Keras (H, W, C)
    model.get_layer("dense").set_weights(
        [w.reshape(10, 16, 4, 4).transpose(2, 3, 1, 0).reshape(256, 10), t(net.head[1].bias)]
    )
    x_np = x[:N_DIGITS].numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model(x_np)), net(x[:N_DIGITS]).detach().numpy(), atol=1e-4
    )
    return model, x_np, net


def test_curves_match_pytorch(digits_keras: tuple) -> None:
    model, x, net = digits_keras
    m = np.random.default_rng(0).random((8, 8))
    k = deletion_insertion(model, x[:1], m, patch_size=2, baseline="mean")
    t = deletion_insertion(net, torch.as_tensor(x[:1].transpose(0, 3, 1, 2)), m, patch_size=2,
                           baseline="mean")
    assert k.target == t.target and k.n_features == 16
    np.testing.assert_allclose(k.deletion_curve, t.deletion_curve, atol=1e-4)
    np.testing.assert_allclose(k.insertion_curve, t.insertion_curve, atol=1e-4)


def test_integrated_gradients_beat_random_maps(digits_keras: tuple) -> None:
    model, x, _ = digits_keras
    expls = eli5_nn.explain_predictions(model, x, method="integrated-gradients", progress=False)
    rng = np.random.default_rng(1)
    ig = [deletion_insertion(model, x[i:i + 1], e) for i, e in enumerate(expls)]
    rand = [deletion_insertion(model, x[i:i + 1], rng.random((8, 8))) for i in range(len(x))]
    lower = np.mean([a.deletion_auc < b.deletion_auc for a, b in zip(ig, rand, strict=True)])
    higher = np.mean([a.insertion_auc > b.insertion_auc for a, b in zip(ig, rand, strict=True)])
    assert lower > 0.6 and higher > 0.6, (lower, higher)


def test_randomisation_check_leaves_the_model_alone(digits_keras: tuple) -> None:
    model, x, _ = digits_keras
    before = [np.array(keras.ops.convert_to_numpy(v)) for v in model.weights]
    checks = [randomization_check(model, x[i:i + 1], method="gradient") for i in range(3)]
    assert checks[0].layers == ["dense", "conv2", "conv1"]
    final = np.array([c.correlations[-1] for c in checks])
    assert final.mean() < 0.3, final
    after = [np.array(keras.ops.convert_to_numpy(v)) for v in model.weights]
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))


def test_text_tokens_are_replaced_by_padding() -> None:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((6,), dtype="int32"),
        keras.layers.Embedding(20, 4),
        keras.layers.GlobalAveragePooling1D(),
        keras.layers.Dense(3),
    ])
    ids = np.array([[4, 9, 13, 2, 0, 0]], dtype="int32")
    r = deletion_insertion(model, ids, np.array([0.1, 0.9, 0.5, 0.3]), pad_value=0)
    assert r.n_features == 4

    def proba(a: np.ndarray) -> float:
        s = keras.ops.convert_to_numpy(model(a)).astype(np.float64)[0]
        return float(np.exp(s - s.max())[r.target] / np.exp(s - s.max()).sum())

    assert r.deletion_curve[0] == pytest.approx(proba(ids), rel=1e-5)
    assert r.deletion_curve[-1] == pytest.approx(proba(np.zeros_like(ids)), rel=1e-5)
    # second step: the two top-ranked tokens (positions 1 and 2) are padded
    assert r.deletion_curve[2] == pytest.approx(proba(np.array([[4, 0, 0, 2, 0, 0]])), rel=1e-5)
    assert r.insertion_curve[1] == pytest.approx(proba(np.array([[0, 9, 0, 0, 0, 0]])), rel=1e-5)
