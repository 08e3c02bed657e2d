"""Keras text models on the active backend: the same network as in PyTorch, with
copied weights, gives the same token weights; padding and errors as for torch."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import torch

import eli5_nn
from tests.text.models import BiLSTM, TextCNN

V, D, C, H, T = 50, 8, 16, 8, 7
IDS = np.array([[5, 7, 9, 7, 3, 0, 0]])
TOKENS = ["good", "movie", "<b>bold</b>", "movie", "end", "<pad>", "<pad>"]
METHODS = ["grad-cam", "gradient", "gradient-x-input", "integrated-gradients", "occlusion"]


def keras_cnn() -> keras.Model:
    inp = keras.Input((T,), dtype="int64")
    h = keras.layers.Embedding(V, D, name="embedding")(inp)
    h = keras.layers.Conv1D(C, 3, padding="same", name="conv")(h)
    h = keras.layers.Activation("relu", name="relu")(h)
    h = keras.layers.GlobalMaxPooling1D()(h)
    return keras.Model(inp, keras.layers.Dense(2, name="fc")(h), name="keras_text_cnn")


def keras_lstm() -> keras.Model:
    inp = keras.Input((T,), dtype="int64")
    h = keras.layers.Embedding(V, D, name="embedding")(inp)
    h = keras.layers.LSTM(H, return_sequences=True, name="rnn")(h)
    h = keras.layers.GlobalAveragePooling1D()(h)
    return keras.Model(inp, keras.layers.Dense(2, name="fc")(h), name="keras_lstm")


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy()


def twins(kind: str) -> tuple[keras.Model, torch.nn.Module]:
    torch.manual_seed(0)
    if kind == "cnn":
        net = TextCNN(vocab=V, dim=D, channels=C).eval()
        model = keras_cnn()
        model.get_layer("conv").set_weights([_np(net.conv.weight).transpose(2, 1, 0),
                                             _np(net.conv.bias)])
    else:
        net = BiLSTM(vocab=V, dim=D, hidden=H, layers=1).eval()
        # a one-directional LSTM twin: keep the forward direction, zero the backward one
        with torch.no_grad():
            net.fc.weight[:, H:] = 0
        model = keras_lstm()
        rnn = net.rnn
        model.get_layer("rnn").set_weights([
            _np(rnn.weight_ih_l0).T, _np(rnn.weight_hh_l0).T,
            _np(rnn.bias_ih_l0 + rnn.bias_hh_l0),
        ])
    model.get_layer("embedding").set_weights([_np(net.embedding.weight)])
    fc = model.get_layer("fc")
    w = _np(net.fc.weight)
    fc.set_weights([w[:, :C].T if kind == "cnn" else w[:, :H].T, _np(net.fc.bias)])
    return model, net


# (Grad-CAM is compared on the CNN: the torch twin's LSTM map is bidirectional)
@pytest.mark.parametrize(
    ("kind", "method"),
    [("cnn", m) for m in METHODS] + [("lstm", m) for m in METHODS if m != "grad-cam"],
)
def test_same_token_weights_as_pytorch(kind: str, method: str) -> None:
    model, net = twins(kind)
    kw: dict[str, object] = {"tokens": TOKENS, "pad_value": 0, "targets": [0, 1]}
    if method == "integrated-gradients":
        kw["steps"] = 16
    if method == "grad-cam":
        kw["layer"] = "relu"
    ek = eli5_nn.explain_prediction_nn(model, IDS, method=method, **kw)
    et = eli5_nn.explain_prediction_nn(net, IDS, method=method, **kw)
    for tk, tt in zip(ek.targets, et.targets, strict=True):
        wk = [w for _, _, w in tk.weighted_spans.docs_weighted_spans[0].spans]
        wt = [w for _, _, w in tt.weighted_spans.docs_weighted_spans[0].spans]
        scale = max(np.abs(wt).max(), 1e-6)
        np.testing.assert_allclose(np.asarray(wk) / scale, np.asarray(wt) / scale, atol=1e-4)
        np.testing.assert_allclose(tk.heatmap, tt.heatmap, atol=1e-4)
        assert tk.heatmap.shape == (5,)


def test_completeness_and_errors() -> None:
    model, _ = twins("cnn")
    expl = eli5_nn.explain_prediction_nn(model, IDS, method="integrated-gradients",
                                         pad_value=0, steps=128)
    f = np.asarray(keras.ops.convert_to_numpy(model(IDS)))[0]
    f0 = np.asarray(keras.ops.convert_to_numpy(model(np.zeros_like(IDS))))[0]
    t = expl.targets[0]
    c = int(t.target)
    assert abs(t.attribution.sum() - (f[c] - f0[c])) <= 0.01 * abs(f[c] - f0[c]) + 1e-6
    with pytest.raises(TypeError, match="token ids must be integers"):
        eli5_nn.explain_prediction_nn(model, IDS.astype("float32"), method="gradient")
    with pytest.raises(ValueError, match="outside the vocabulary"):
        eli5_nn.explain_prediction_nn(model, IDS + 45, method="gradient")
    with pytest.raises(ValueError, match="tokens has 2 entries"):
        eli5_nn.explain_prediction_nn(model, IDS, tokens=["a", "b"])


def test_keras_attention_weights() -> None:
    inp = keras.Input((T,), dtype="int64")
    e = keras.layers.Embedding(V, D)(inp)
    h = keras.layers.MultiHeadAttention(2, 4, name="mha")(e, e)
    h = keras.layers.GlobalAveragePooling1D()(h)
    model = keras.Model(inp, keras.layers.Dense(2)(h))
    t = eli5_nn.explain_prediction_nn(model, IDS, method="attention", pad_value=0).targets[0]
    _, scores = model.get_layer("mha")(
        model.get_layer(index=1)(IDS), model.get_layer(index=1)(IDS),
        return_attention_scores=True,
    )
    by_hand = np.asarray(keras.ops.convert_to_numpy(scores))[0].mean(axis=(0, 1))
    np.testing.assert_allclose(t.attribution[:5], by_hand[:5], rtol=1e-5)
    assert np.all(t.attribution[5:] == 0)
