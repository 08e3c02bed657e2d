"""Attention rollout on Keras: MultiHeadAttention layers, text and image tokens, against
the rollout by hand (runs once per backend, in its own process)."""

from __future__ import annotations

import eli5
import keras
import numpy as np
import pytest

import eli5_nn  # noqa: F401  (registers the handlers)
from eli5_nn.errors import ExplanationError

T, DIM = 6, 8


def blocks(h: object) -> tuple[object, list[object]]:
    """Two attention blocks (residual + LayerNorm); their outputs and weights."""
    weights = []
    for i in range(2):
        mha = keras.layers.MultiHeadAttention(2, 4, name=f"mha{i}")
        a, w = mha(h, h, return_attention_scores=True)
        h = keras.layers.LayerNormalization(name=f"norm{i}")(h + a)
        weights.append(w)
    return h, weights


def build_text() -> tuple[keras.Model, keras.Model]:
    """A [CLS]-reading text classifier, and a model giving its attention weights."""
    keras.utils.set_random_seed(0)
    ids = keras.Input((T,), dtype="int32")
    h = keras.layers.Embedding(20, DIM, name="embedding")(ids)
    h, weights = blocks(h)
    out = keras.layers.Dense(3, name="head")(h[:, 0])
    return keras.Model(ids, out), keras.Model(ids, weights)


def by_hand(weights: list[np.ndarray]) -> np.ndarray:
    r = None
    for w in weights:
        a = np.asarray(keras.ops.convert_to_numpy(w), dtype=np.float64).mean(axis=1)
        a = 0.5 * a + 0.5 * np.eye(a.shape[-1])
        a = a / a.sum(axis=-1, keepdims=True)
        r = a if r is None else a @ r
    assert r is not None
    return r


def test_text_rollout_is_the_class_token_row() -> None:
    model, probe = build_text()
    ids = np.array([[2, 5, 7, 9, 3, 4]], dtype="int32")
    expl = eli5.explain_prediction(model, ids, method="attention-rollout")
    t = expl.targets[0]
    np.testing.assert_allclose(t.attribution, by_hand(probe(ids))[0, 0], rtol=1e-4, atol=1e-6)
    assert "over 2 attention layer(s) ('mha0' to 'mha1')" in expl.description


def test_image_tokens_go_on_a_square_grid() -> None:
    """A Keras vision transformer: 16 patch tokens after a class token."""
    keras.utils.set_random_seed(1)
    x_in = keras.Input((16, 16, 3))
    p = keras.layers.Conv2D(DIM, 4, strides=4, name="patches")(x_in)
    p = keras.layers.Reshape((16, DIM))(p)
    cls = keras.layers.Dense(DIM, name="cls")(keras.ops.ones_like(p[:, :1, :1]))
    h, weights = blocks(keras.layers.Concatenate(axis=1)([cls, p]))
    out = keras.layers.Dense(3, name="head")(h[:, 0])
    model, probe = keras.Model(x_in, out), keras.Model(x_in, weights)
    x = np.random.default_rng(0).random((1, 16, 16, 3)).astype("float32")
    t = eli5.explain_prediction(model, x, method="attention-rollout").targets[0]
    assert t.layout.prefix_tokens == 1 and t.layout.grid == (4, 4)
    row = by_hand(probe(x))[0, 0]
    np.testing.assert_allclose(t.layout.channel_sum(t.attribution), row[1:].reshape(4, 4),
                               rtol=1e-4, atol=1e-6)
    assert t.heatmap.shape == (16, 16)


def test_a_model_without_attention_is_told_so() -> None:
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 3),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
    with pytest.raises(ExplanationError, match="no attention layer.*grad-cam"):
        eli5.explain_prediction(model, np.zeros((1, 8, 8, 3), "float32"),
                                method="attention-rollout")
