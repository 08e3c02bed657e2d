"""explain_dataset on Keras: a tf.data.Dataset source, and the Ray engine equal to the local
one item by item.

The Ray test runs on the TensorFlow backend only: starting Ray costs ~30 s per backend
process, the engine code is framework-neutral (tests/datasets/test_ray.py runs it on
PyTorch) and the TensorFlow run covers Keras models in Ray actors.
"""

from __future__ import annotations

import numpy as np
import pytest

from eli5_nn.datasets import explain_dataset, read_items
from tests.keras.conftest import BACKEND, SIZE, keras_cnn

pytest.importorskip("pyarrow")
N = 10


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(N, SIZE, SIZE, 3)).astype(np.float32)


def _rows(out):
    return read_items(out).to_pandas()


def test_tf_data_source_equals_the_array(x, tmp_path):
    tf = pytest.importorskip("tensorflow")
    ds = tf.data.Dataset.from_tensor_slices((x, np.arange(N) % 5)).batch(4)
    model = keras_cnn()
    a = explain_dataset(model, ds, method="gradient-x-input", out=tmp_path / "tf",
                        shard_size=6, progress=False)
    b = explain_dataset(model, x, labels=np.arange(N) % 5, method="gradient-x-input",
                        out=tmp_path / "np", shard_size=6, progress=False)
    ta, tb = _rows(tmp_path / "tf"), _rows(tmp_path / "np")
    assert a.n_items == b.n_items == N and ta["label"].tolist() == tb["label"].tolist()
    assert list(ta["attribution_shape"][0]) == [SIZE, SIZE]  # channels (last) summed
    np.testing.assert_allclose(np.stack(ta["attribution"]), np.stack(tb["attribution"]),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(BACKEND != "tensorflow", reason="Ray is exercised once, on TensorFlow "
                    "(start-up cost); the engine is framework-neutral")
def test_ray_equals_local_on_keras(x, tmp_path):
    ray = pytest.importorskip("ray")
    import os
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[2])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": root, "KERAS_BACKEND": BACKEND,
                                       "TF_CPP_MIN_LOG_LEVEL": "3",
                                       "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS",
                                                                         "1")}})
    try:
        args = {"method": "integrated-gradients", "steps": 4, "shard_size": 4,
                "progress": False}
        explain_dataset(keras_cnn(), x, out=tmp_path / "local", **args)
        run = explain_dataset(keras_cnn, x, out=tmp_path / "ray", engine="ray", workers=2,
                              **args)
    finally:
        ray.shutdown()
    assert run.n_items == N and len(run.shards_written) == 3
    ta, tb = _rows(tmp_path / "local"), _rows(tmp_path / "ray")
    assert ta["index"].tolist() == tb["index"].tolist() == list(range(N))
    assert ta["target"].tolist() == tb["target"].tolist()
    for a, b in zip(ta["attribution"], tb["attribution"], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
