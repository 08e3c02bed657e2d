"""No growth over many calls, and dispatch to the Keras handler. (Model left as
found, also on errors, and threads: tests/keras/test_conformance.py, for every
method of the shared table.)"""

from __future__ import annotations

import gc

import eli5
import keras
import numpy as np
import psutil

import eli5_nn
from eli5_nn.adapters import get_adapter
from eli5_nn.adapters.keras import KerasAdapter

from .conftest import BACKEND


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
    assert handler.__name__ == "_explain"  # one handler; get_adapter (above) picks Keras
    if BACKEND == "torch":
        import torch

        assert isinstance(cnn, torch.nn.Module)
