"""The conformance suite on Keras models, on the backend of this process
(the Makefile runs ``tests/keras`` once per ``KERAS_BACKEND``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import keras
import numpy as np

from tests.conformance.cases import TEXT_FAMILIES
from tests.conformance.suite import ConformanceSuite, Harness, generate, token_docs

from .conftest import N_CLASSES, SIZE, keras_cnn

pytest_generate_tests = generate

LENGTH, VOCAB, DIM = 7, 50, 8


def _seeded(make: Any) -> Any:
    def build() -> keras.Model:
        keras.utils.set_random_seed(0)
        return make()

    return build


def _text(body: Any, name: str) -> keras.Model:
    inp = keras.Input((LENGTH,), dtype="int64")
    h = keras.layers.Embedding(VOCAB, DIM, name="embedding")(inp)
    return keras.Model(inp, keras.layers.Dense(2, name="fc")(body(h)), name=name)


def text_cnn() -> keras.Model:
    def body(h: Any) -> Any:
        h = keras.layers.Conv1D(8, 3, padding="same", activation="relu", name="conv")(h)
        return keras.layers.GlobalMaxPooling1D()(h)

    return _text(body, "keras_text_cnn")


def text_rnn() -> keras.Model:
    def body(h: Any) -> Any:
        # unrolled: JAX then runs it op by op with cached kernels instead of compiling its
        # scan on every call (tests/keras/test_text.py covers the scan)
        h = keras.layers.LSTM(6, return_sequences=True, unroll=True, name="rnn")(h)
        return keras.layers.GlobalAveragePooling1D()(h)

    return _text(body, "keras_text_rnn")


def text_attention() -> keras.Model:
    def body(h: Any) -> Any:
        h = keras.layers.MultiHeadAttention(2, 4, name="attention")(h, h)
        return keras.layers.GlobalAveragePooling1D()(h)

    return _text(body, "keras_text_attention")


def mlp() -> keras.Model:
    return keras.Sequential([
        keras.Input((SIZE, SIZE, 3)), keras.layers.Flatten(),
        keras.layers.Dense(16, activation="relu"), keras.layers.Dense(N_CLASSES),
    ], name="keras_mlp")


def _layers(model: keras.Model) -> list[Any]:
    return list(model._flatten_layers(include_self=False, recursive=True))


class KerasHarness(Harness):
    framework = "keras"
    families: ClassVar[dict[str, Any]] = {
        "image": _seeded(keras_cnn),  # BatchNormalization, channels last
        "mlp": _seeded(mlp),
        "text-cnn": _seeded(text_cnn),
        "text-rnn": _seeded(text_rnn),
        "text-attention": _seeded(text_attention),
    }

    def fresh(self, family: str) -> keras.Model:
        model = super().fresh(family)
        model(self.docs(family, 1))  # lazy attributes (an LSTM's dropout masks) set now
        return model

    def docs(self, family: str, n: int = 3) -> np.ndarray:
        if family in TEXT_FAMILIES:
            return token_docs(n, VOCAB, LENGTH, seed=5)
        rng = np.random.default_rng(5)
        return rng.random((n, SIZE, SIZE, 3)).astype(np.float32)

    def disturb(self, model: keras.Model) -> None:
        next(layer for layer in _layers(model) if layer.weights).trainable = False

    def snapshot(self, model: keras.Model) -> Any:
        layers = _layers(model)
        return (
            [np.array(keras.ops.convert_to_numpy(v)) for v in model.weights],
            [layer.trainable for layer in [model, *layers]],
            [sorted(vars(layer)) for layer in [model, *layers]],
            [type(layer).call for layer in layers],
        )

    def assert_same(self, before: Any, after: Any) -> None:
        for a, b in zip(before[0], after[0], strict=True):
            np.testing.assert_array_equal(a, b)
        assert before[1:] == after[1:]

    @contextmanager
    def broken(self, model: keras.Model) -> Iterator[None]:
        last = _layers(model)[-1]
        original = type(last).call

        def boom(self_: Any, *args: Any, **kwargs: Any) -> Any:
            raise ValueError("kaboom")

        subclass = type(type(last).__name__, (type(last),), {"call": boom})
        last.__class__ = subclass
        try:
            yield
        finally:
            last.__class__ = subclass.__mro__[1]
            assert type(last).call is original


class TestKerasConformance(ConformanceSuite):
    harness = KerasHarness()
