"""Contextual decomposition is PyTorch-only: Keras models get a clear error."""

from __future__ import annotations

import numpy as np
import pytest

import eli5_nn
from tests.keras.conftest import SIZE, keras_cnn


def test_cd_on_a_keras_model_says_it_is_for_pytorch():
    x = np.random.default_rng(0).random((1, SIZE, SIZE, 3)).astype("float32")
    with pytest.raises(eli5_nn.ExplanationError, match="PyTorch models only"):
        eli5_nn.explain_prediction_nn(keras_cnn(), x, method="cd")
