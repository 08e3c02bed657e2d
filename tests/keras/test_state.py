"""No side effects, no growth, dispatch and thread safety."""

from __future__ import annotations

import gc
import threading

import eli5
import keras
import numpy as np
import psutil
import pytest

import eli5_nn
from eli5_nn.adapters import get_adapter
from eli5_nn.adapters.keras import KerasAdapter

from .conftest import BACKEND, METHODS


def _state(model: keras.Model) -> tuple[list[np.ndarray], list[bool], list[set[str]]]:
    layers = KerasAdapter(model)._all
    return (
        [np.array(keras.ops.convert_to_numpy(v)) for v in model.weights],
        [layer.trainable for layer in [model, *layers]],
        [set(vars(layer)) for layer in layers],
    )


def _assert_same(before: tuple, after: tuple) -> None:
    for a, b in zip(before[0], after[0], strict=True):
        np.testing.assert_array_equal(a, b)
    assert before[1] == after[1]
    assert before[2] == after[2]


@pytest.mark.parametrize("method", METHODS)
def test_model_left_as_found(method: str, cnn: keras.Model, x: np.ndarray) -> None:
    cnn.get_layer("conv1").trainable = False
    before = _state(cnn)
    eli5_nn.explain_prediction_nn(cnn, x, method=method, samples=2, steps=3) if method in (
        "smoothgrad", "integrated-gradients") else eli5_nn.explain_prediction_nn(
        cnn, x, method=method)
    _assert_same(before, _state(cnn))


def test_model_left_as_found_after_errors(cnn: keras.Model, x: np.ndarray) -> None:
    before = _state(cnn)
    with pytest.raises(ValueError):
        eli5_nn.explain_prediction_nn(cnn, x, targets=[99])  # fails inside the backward set-up
    with pytest.raises(ValueError):
        eli5_nn.explain_prediction_nn(cnn, x, method="fullgrad", targets=[99])
    _assert_same(before, _state(cnn))


def test_no_memory_growth_over_200_calls(cnn: keras.Model, x: np.ndarray) -> None:
    proc = psutil.Process()
    for _ in range(20):
        eli5_nn.explain_prediction_nn(cnn, x, targets=[1])
    gc.collect()
    start = proc.memory_info().rss
    for _ in range(200):
        eli5_nn.explain_prediction_nn(cnn, x, targets=[1])
    gc.collect()
    grown = (proc.memory_info().rss - start) / 2**20
    assert grown < 8, f"memory grew by {grown:.1f} MB over 200 calls"


def test_keras_model_reaches_keras_handler(cnn: keras.Model) -> None:
    assert isinstance(get_adapter(cnn), KerasAdapter)
    handler = eli5.explain_prediction.dispatch(type(cnn))
    assert handler.__module__ == "eli5_nn.registration"
    assert handler.__name__ == "_explain_keras"
    if BACKEND == "torch":
        import torch

        assert isinstance(cnn, torch.nn.Module)


def test_threads_give_sequential_results(cnn: keras.Model, xs: np.ndarray) -> None:
    expected = [
        eli5_nn.explain_prediction_nn(cnn, xs[i:i + 1], method="grad-cam").targets[0].attribution
        for i in range(len(xs))
    ]
    got: dict[int, np.ndarray] = {}

    def work(i: int) -> None:
        expl = eli5_nn.explain_prediction_nn(cnn, xs[i:i + 1], method="grad-cam")
        got[i] = expl.targets[0].attribution

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, e in enumerate(expected):
        np.testing.assert_allclose(got[i], e, rtol=1e-5, atol=1e-7)
