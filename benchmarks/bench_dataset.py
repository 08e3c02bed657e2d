"""Explaining whole datasets: throughput of ``explain_dataset`` against
``explain_predictions`` on the same items, Ray against the local engine, and peak memory
at 10,000 against 1,000 items.

- dataset vs pipeline: Integrated Gradients on the benchmark's ResNet-style net, the
  same items through ``explain_predictions`` (one call, no files) and through
  ``explain_dataset`` (chunks, Parquet shards); best of alternated runs. Target ≥ 0.9×.
- Ray vs local: the local engine in one Python process with two intra-op threads,
  against Ray with two actors of one intra-op thread each (``ray.init(num_cpus=2)``),
  both given the model by the same loader, which warms it up (one backward pass: torch
  loads modules on its first ``autograd.grad``, about 0.9 s of CPU), start-up excluded:
  throughput counted from the moment each engine finished its first round of shards (one
  shard local, one per actor on Ray) to its last; best of 2 alternated runs each.
  Target ≥ 0.85×.
- memory: peak resident memory above the process's level before the call (sampled every
  2 ms), in a fresh process explaining 1,000 and 10,000 streamed items (a small CNN,
  gradients, full attributions written). Target: 10,000 ≤ 1.1× 1,000.

``python benchmarks/bench_dataset.py [--quick]`` prints the rows and, last, a
``RESULT`` line.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import eli5_nn  # noqa: E402
from benchmarks.timing import speed_row  # noqa: E402
from eli5_nn.datasets import explain_dataset  # noqa: E402
from tests.models import ResNetish, randomize_bn  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def make_model() -> torch.nn.Module:
    """The benchmarks' ResNet-style net (as bench_torch), for images of 3 channels."""
    torch.manual_seed(0)
    return randomize_bn(ResNetish(n_classes=10, width=16, blocks=(1, 1, 1, 1))).eval()


def load_warm_model() -> torch.nn.Module:
    """:func:`make_model` after one forward and backward pass, as a service warms up its
    model: the process's first-call costs (torch imports sympy on its first
    ``autograd.grad`` with a gradient given, about 0.9 s of CPU) fall in loading, for
    both engines, rather than in the first shard of whichever worker starts last."""
    model = make_model()
    x = torch.zeros(1, 3, 32, 32, requires_grad=True)
    out = model(x)
    torch.autograd.grad(out, x, grad_outputs=torch.ones_like(out))
    return model


def _settings(quick: bool) -> dict[str, Any]:
    if quick:
        return {"size": 32, "n": 48, "steps": 8, "shard": 8, "chunk": 4}
    return {"size": 64, "n": 96, "steps": 16, "shard": 12, "chunk": 6}


def _items(n: int, size: int) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, 3, size, size)).astype(np.float32)


def pipeline_vs_dataset(quick: bool) -> dict[str, Any]:
    """explain_dataset (default chunks and shards) against explain_predictions on the same
    items (best of 2 alternated runs each, after one warm-up round)."""
    cfg = _settings(quick)
    model, x = make_model(), _items(cfg["n"], cfg["size"])
    args = {"method": "integrated-gradients", "steps": cfg["steps"]}
    ours = floor = float("inf")
    for r in range(3):
        t0 = time.perf_counter()
        eli5_nn.explain_predictions(model, x, progress=False, **args)
        t1 = time.perf_counter()
        with tempfile.TemporaryDirectory() as d:
            explain_dataset(model, x, out=Path(d) / "o", progress=False, **args)  # defaults
        t2 = time.perf_counter()
        if r:  # the first round warms up
            floor, ours = min(floor, t1 - t0), min(ours, t2 - t1)
    return speed_row("PyTorch", "explain_dataset vs explain_predictions (IG)", ours, floor,
                     f"{cfg['n']} items {cfg['size']}×{cfg['size']}, {cfg['steps']} steps; "
                     "target ≤ 1.11 (throughput ≥ 0.9×)")


def _steady(finished: list[tuple[str, int, float, str]], rounds: int) -> float:
    """Items per second after the first ``rounds`` shards finished."""
    finished = sorted(finished, key=lambda f: f[2])
    after = finished[rounds:]
    return sum(f[1] for f in after) / (after[-1][2] - finished[rounds - 1][2])


def ray_vs_local(quick: bool, rounds: int = 2) -> dict[str, Any]:
    """Ray (two 1-thread actors) against the local engine (two threads), start-up excluded;
    ``rounds`` alternated runs of each (Ray started and shut down around each of its own,
    so that no Ray process runs beside the local engine), each keeping its best."""
    import ray

    cfg = _settings(quick)
    # 16 shards: the steady rate is read over the 14 after the first two, so that the
    # order in which two workers happen to finish their last shards weighs little. A
    # shard holds 4x the items of the other rows (still 1/30 of the default 1,000), a
    # chunk 2x: a few tenths of a second of work per shard, not one tenth
    shard, chunk = 4 * cfg["shard"], 2 * cfg["chunk"]
    x = _items(16 * shard, cfg["size"])
    args = {"method": "integrated-gradients", "steps": cfg["steps"], "progress": False,
            "shard_size": shard, "chunk_size": chunk}
    threads = torch.get_num_threads()
    best_local = best_ray = 0.0
    for _ in range(rounds):
        torch.set_num_threads(2)
        try:
            with tempfile.TemporaryDirectory() as d:
                local = explain_dataset(load_warm_model, x, out=Path(d) / "local", **args)
        finally:
            torch.set_num_threads(threads)
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}})
        try:
            with tempfile.TemporaryDirectory() as d:
                dist = explain_dataset(load_warm_model, x, out=Path(d) / "ray", engine="ray",
                                       workers=2, **args)
        finally:
            ray.shutdown()
        best_local = max(best_local, _steady(local.finished_at, 1))
        best_ray = max(best_ray, _steady(dist.finished_at, 2))
    return speed_row("PyTorch", "explain_dataset on Ray (2 actors × 1 thread) vs local "
                     "(2 threads)", 1 / best_ray, 1 / best_local,
                     f"seconds per item, start-up excluded, best of {rounds} alternated runs, "
                     f"16 shards of {shard} items in chunks of {chunk}; "
                     f"{best_ray / best_local:.2f}× the local throughput; target ≥ 0.85×")


_MEMORY_RUN = """
import resource, sys, tempfile


class NoKeras:  # this run needs neither Keras nor TensorFlow: keep them out of the peak
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("keras", "tensorflow", "jax"):
            raise ImportError(name)


sys.meta_path.insert(0, NoKeras())
import numpy as np, torch
from pathlib import Path
from eli5_nn.datasets import explain_dataset
from benchmarks.timing import peak_extra_mb
n = int(sys.argv[1])


def batches():  # items streamed as a DataLoader would, 100 at a time
    for i in range(0, n, 100):
        rng = np.random.default_rng(i)
        yield rng.normal(size=(min(100, n - i), 1, 28, 28)).astype(np.float32)


torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3), torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 3),
                            torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                            torch.nn.Linear(8, 10)).eval()
with tempfile.TemporaryDirectory() as d:
    extra = peak_extra_mb(lambda: explain_dataset(
        model, batches(), method="gradient", out=Path(d) / "o", shard_size=500,
        chunk_size=100, progress=False, full=True))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, extra)
"""


def memory_rows(quick: bool) -> list[dict[str, Any]]:
    """Peak extra resident memory of fresh processes explaining 1,000 and 10,000 items."""
    rows = []
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    for n in (1000, 10000):
        out = subprocess.run([sys.executable, "-c", _MEMORY_RUN, str(n)], capture_output=True,
                             text=True, check=True, env=env)
        peak, extra = (float(v) for v in out.stdout.split()[-2:])
        rows.append({"framework": "PyTorch", "method": f"explain_dataset, {n} items (28×28, "
                     f"streamed, gradient, full attribution; process peak {peak:.0f} MB)",
                     "peak_mb": extra})
    return rows


def run(quick: bool = False) -> list[dict[str, Any]]:
    """The speed rows (ours / floor: dataset / pipeline, Ray / local seconds per item)."""
    return [pipeline_vs_dataset(quick), ray_vs_local(quick)]


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    rows = run(quick)
    mem = memory_rows(quick)
    for r in rows:
        print(f"{r['method']}: ours {r['ours_s']:.3f}s floor {r['floor_s']:.3f}s "
              f"ratio {r['ratio']:.2f} ({r['note']})")
    for r in mem:
        print(f"{r['method']}: peak extra {r['peak_mb']:.0f} MB")
    print(f"RESULT dataset_vs_pipeline={1 / rows[0]['ratio']:.2f} "
          f"ray_vs_local={1 / rows[1]['ratio']:.2f} "
          f"memory_10k_vs_1k={mem[1]['peak_mb'] / mem[0]['peak_mb']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
