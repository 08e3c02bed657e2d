"""Keras Grad-CAM on TensorFlow against its floor and against eli5 0.16 (CPU).

The floor is the usual hand-written Keras Grad-CAM: a model exposing the layer
output and the scores (built once, outside the timing), one forward pass and
one backward pass to the layer under ``tf.GradientTape``, then the channel
weighting. eli5 0.16's ``explain_prediction_keras`` is timed on the same model
and input. The measurements run in a child process with
``KERAS_BACKEND=tensorflow`` (the backend is fixed when Keras is imported).
Ratios are medians of repeated runs in the same process.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SIZE = 224
LAYER = "block4_conv"


def _median_time(fn: Callable[[], Any], repeat: int) -> float:
    fn()
    fn()  # warm-up (and the adapter's caches)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _measure(quick: bool) -> list[dict[str, Any]]:
    import eli5
    import keras
    import numpy as np
    import tensorflow as tf
    from eli5.keras.explain_prediction import explain_prediction_keras

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import eli5_nn  # noqa: F401

    keras.utils.set_random_seed(0)
    inp = keras.Input((SIZE, SIZE, 3))
    h = inp
    for i, width in enumerate((16, 32, 64, 64), start=1):
        h = keras.layers.Conv2D(width, 3, padding="same", use_bias=False)(h)
        h = keras.layers.BatchNormalization()(h)
        h = keras.layers.Activation("relu", name=f"block{i}_conv" if i == 4 else None)(h)
        if i < 4:
            h = keras.layers.MaxPooling2D(2)(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    model = keras.Model(inp, keras.layers.Dense(10)(h), name="bench_cnn")
    x = np.random.default_rng(0).random((1, SIZE, SIZE, 3)).astype("float32")
    layer = model.get_layer(LAYER)
    repeat = 5 if quick else 20

    def ours() -> None:
        eli5.explain_prediction(model, x, layer=LAYER)

    grad_model = keras.Model(model.inputs, [layer.output, model.outputs[0]])
    xt = tf.convert_to_tensor(x)

    def floor() -> None:
        with tf.GradientTape() as tape:
            conv, preds = grad_model(xt, training=False)
            c = int(tf.argmax(preds[0]))
            score = preds[:, c]
        grads = tape.gradient(score, conv)
        weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
        tf.nn.relu(tf.reduce_sum(weights * conv, axis=-1)).numpy()

    def eli5_016() -> None:
        explain_prediction_keras(model, x, layer=LAYER)

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t_ours = _median_time(ours, repeat)
    peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
    t_floor = _median_time(floor, repeat)
    t_eli5 = _median_time(eli5_016, repeat)
    return [
        {"framework": "keras-tensorflow", "method": "grad-cam", "ours_s": t_ours,
         "floor_s": t_floor, "ratio": t_ours / t_floor, "peak_mb": peak,
         "note": "GradientTape to the layer, grad model built once"},
        {"framework": "keras-tensorflow", "method": "grad-cam vs eli5 0.16",
         "ours_s": t_ours, "floor_s": t_eli5, "ratio": t_ours / t_eli5, "peak_mb": peak,
         "note": "floor = eli5 0.16's explain_prediction_keras"},
    ]


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Rows {framework, method, ours_s, floor_s, ratio, peak_mb} for the table.

    The second row's ``floor_s`` is eli5 0.16's own call (ratio < 1: we are faster).
    """
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child"]
    cmd += ["--quick"] if quick else []
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    return list(json.loads(out.stdout.strip().splitlines()[-1]))


if __name__ == "__main__":
    if "--child" in sys.argv:
        print(json.dumps(_measure("--quick" in sys.argv)))
    else:
        for row in run("--quick" in sys.argv):
            print(row)
