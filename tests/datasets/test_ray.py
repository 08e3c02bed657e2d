"""explain_dataset(engine="ray") on a local Ray instance (PyTorch): the same rows as the
local engine, item by item, and nothing lost when a worker dies."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from eli5_nn.datasets import DatasetExplainer, explain_dataset, read_items
from tests.models import ResNetish, randomize_bn

ray = pytest.importorskip("ray")
pytest.importorskip("pyarrow")
ROOT = Path(__file__).resolve().parents[2]
N = 20


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}})
    yield
    ray.shutdown()


def make_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return randomize_bn(ResNetish(n_classes=4, width=4, channels=1)).eval()


class DiesOnce(torch.nn.Module):
    """The model, except that the first forward pass anywhere kills its process."""

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.net = make_model()
        self.marker = marker

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not os.path.exists(self.marker):
            Path(self.marker).touch()
            os._exit(1)  # the worker process dies without any clean-up
        return self.net(x)


class SlowOnce(torch.nn.Module):
    """The model, except that the first process to run it sleeps 4 s in its first forward
    pass (a worker that falls behind)."""

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.net = make_model()
        self.marker = marker

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        try:
            fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            pass
        else:
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            time.sleep(4)
        return self.net(x)


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(N, 1, 12, 12)).astype(np.float32)


def _assert_same_rows(a: Path, b: Path) -> None:
    ta, tb = read_items(a).to_pandas(), read_items(b).to_pandas()
    assert ta["index"].tolist() == tb["index"].tolist() == list(range(N))
    for col in ("id", "label", "predicted", "target"):
        assert ta[col].fillna(-1).tolist() == tb[col].fillna(-1).tolist()
    np.testing.assert_allclose(ta["score"], tb["score"], rtol=1e-5)
    for ra, rb in zip(ta["attribution"], tb["attribution"], strict=True):
        np.testing.assert_allclose(ra, rb, rtol=1e-5, atol=1e-7)
    for ra, rb in zip(ta["heatmap"], tb["heatmap"], strict=True):
        np.testing.assert_allclose(ra, rb, rtol=1e-5, atol=1e-7)


def test_ray_equals_the_local_engine(local_ray, x, tmp_path):
    labels = np.arange(N) % 4
    args = {"method": "integrated-gradients", "steps": 4, "shard_size": 6, "chunk_size": 4,
            "labels": labels, "progress": False}
    local = explain_dataset(make_model(), x, out=tmp_path / "local", **args)
    dist = explain_dataset(make_model, x, out=tmp_path / "ray", engine="ray", workers=2,
                           **args)
    assert dist.shards_written == local.shards_written
    assert dist.n_items == N and dist.n_errors == 0
    _assert_same_rows(tmp_path / "local", tmp_path / "ray")
    again = explain_dataset(make_model, x, out=tmp_path / "ray", engine="ray", **args)
    assert again.shards_written == [] and len(again.shards_skipped) == 4


def test_a_worker_that_falls_behind_holds_at_most_the_shards_in_flight(local_ray, x, tmp_path):
    # two ranges in flight per actor: a worker that falls behind holds the shard it is on
    # and at most one waiting; the other worker takes the rest, and each shard records
    # the worker that wrote it
    marker = tmp_path / "slow"
    run = explain_dataset(SlowOnce(str(marker)), x, out=tmp_path / "ray", engine="ray",
                          workers=2, method="gradient", shard_size=4, progress=False)
    slow = f"{socket.gethostname()}:{marker.read_text()}"
    by_worker = [f[3] for f in run.finished_at]
    assert len(set(by_worker)) == 2 and 1 <= by_worker.count(slow) <= 2
    assert sorted(f[0] for f in run.finished_at) == run.shards_written
    local = explain_dataset(make_model(), x, out=tmp_path / "local", method="gradient",
                            shard_size=4, progress=False)
    assert {f[3] for f in local.finished_at} == {f"{socket.gethostname()}:{os.getpid()}"}
    _assert_same_rows(tmp_path / "local", tmp_path / "ray")


def test_a_killed_worker_is_retried_and_nothing_is_lost(local_ray, x, tmp_path):
    marker = tmp_path / "died"
    run = explain_dataset(DiesOnce(str(marker)), x, out=tmp_path / "ray", engine="ray",
                          workers=2, method="gradient", shard_size=5, progress=False)
    assert marker.exists()  # a worker did die
    assert sorted(run.shards_written) == [f"items-{s:09d}-{s + 5:09d}.parquet"
                                          for s in range(0, N, 5)]
    assert not list((tmp_path / "ray").glob(".*"))  # the dead worker's partial file is gone
    explain_dataset(make_model(), x, out=tmp_path / "local", method="gradient",
                    shard_size=5, progress=False)
    _assert_same_rows(tmp_path / "local", tmp_path / "ray")


def test_the_explainer_class_with_ray_data_map_batches(local_ray, x):
    ds = ray.data.from_items([{"x": x[i], "label": i % 4, "id": f"item{i}"}
                              for i in range(6)])
    out = ds.map_batches(DatasetExplainer, fn_constructor_args=(make_model,),
                         fn_constructor_kwargs={"method": "gradient"}, batch_size=3,
                         concurrency=1).to_pandas()
    assert sorted(out["id"]) == [f"item{i}" for i in range(6)]
    assert (out["error"] == "").all()
    local = DatasetExplainer(make_model(), "gradient")
    from eli5_nn.datasets.sources import IterableSource

    cols, _ = local.explain_items(IterableSource.unpack({"x": x[:6]}, 0))
    out = out.sort_values("id", key=lambda s: s.str[4:].astype(int))
    for a, b in zip(out["attribution"], cols["attribution"], strict=True):
        np.testing.assert_allclose(np.asarray(a).ravel(), b.ravel(), rtol=1e-5, atol=1e-7)
