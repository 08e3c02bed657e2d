"""Does the automatic ``batch_size`` pick well? Auto against fixed chunks, every backend.

Integrated Gradients on the benchmark's image model (the ResNet-style network,
one image, 50 steps) and text CNN (IMDB-length reviews, 20 steps per review) is
run with ``batch_size`` fixed to each of 1, 2, 5, 10, 25, 50 and with the
automatic choice, on PyTorch and on Keras (TensorFlow, JAX, torch backends, each
in its own process). The settings run round-robin (every round runs each once,
so load from other processes hits them alike), ``REPEATS`` rounds, each timed in
process CPU time (the benchmarks run one thread per process, so CPU time is the
work done and other processes' load stays out); each keeps its median. The
fastest fixed chunk is then timed again against auto, alternately, ``REPEATS``
more rounds: picked on one set of rounds and compared on another, the best of
six noisy medians does not carry its luck into the ratio. A row gives the auto
chunk, the best fixed chunk and auto ÷ best (target ≤ 1.10): the median of the
per-round ratios of the second set.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.timing import paired  # noqa: E402

CHUNKS = (1, 2, 5, 10, 25, 50)
REPEATS = 5
IMAGE_STEPS, TEXT_STEPS = 50, 20
BACKENDS = ("torch", "tensorflow", "jax", "keras-torch")


def round_robin(calls: dict[str, Callable[[], Any]], repeats: int) -> dict[str, float]:
    """Median time of each call, run round-robin after one warm-up round."""
    for fn in calls.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in calls}
    keys = list(calls)
    for i in range(repeats):
        for k in keys[i % len(keys):] + keys[:i % len(keys)]:  # rotate who goes first
            t0 = time.process_time()
            calls[k]()
            times[k].append(time.process_time() - t0)
    return {k: float(np.median(v)) for k, v in times.items()}


def batch_row(framework: str, what: str, calls: dict[str, Callable[[], Any]], auto: int,
              repeats: int) -> dict[str, Any]:
    """Times of ``calls`` (keys: "auto" and the fixed chunk sizes) as one table row:
    the best fixed chunk picked on one round-robin, then auto against it on fresh
    alternated rounds."""
    med = round_robin(calls, repeats)
    fixed = {int(k): t for k, t in med.items() if k != "auto"}
    best = min(fixed, key=lambda c: fixed[c])
    t_auto, t_best, ratio = paired(calls["auto"], calls[str(best)], repeats, warmup=0)
    return {"framework": framework, "method": what, "auto": auto, "best": best,
            "auto_s": t_auto, "best_s": t_best, "ratio": ratio,
            "fixed_s": {str(c): t for c, t in fixed.items()}}


def _models(backend: str, size: int, n_docs: int) -> tuple[Any, Any, Any, Any]:
    """(image model, image, text model, token ids) for ``backend``."""
    from benchmarks.timing import reviews

    ids = reviews(n_docs, 160, 6000)
    if backend == "torch":
        import torch

        from benchmarks.bench_text import models
        from benchmarks.bench_torch import make_model

        image = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
        return make_model(), image, models()[0].model, ids
    import keras

    from benchmarks import bench_keras
    from benchmarks.bench_keras_text import KerasText

    bench_keras.SIZE = size
    x = np.random.default_rng(0).random((1, size, size, 3)).astype("float32")
    return bench_keras.Models(keras).model, x, KerasText(keras, "cnn").model, ids.astype("int32")


def measure(backend: str, quick: bool) -> list[dict[str, Any]]:
    """The image and text rows of one backend (in this process)."""
    import eli5_nn

    size, n_docs, repeats = (112, 8, REPEATS) if quick else (224, 16, REPEATS)
    image_model, x, text_model, ids = _models(backend, size, n_docs)
    fw = "torch" if backend == "torch" else f"keras-{backend.removeprefix('keras-')}"
    rows = []
    for what, model, doc, many, kw, units in (
        (f"integrated-gradients {IMAGE_STEPS} steps, 1 image {size}×{size}", image_model, x,
         False, {"steps": IMAGE_STEPS}, IMAGE_STEPS),
        (f"integrated-gradients {TEXT_STEPS} steps, {n_docs} reviews (text CNN)", text_model,
         ids, True, {"steps": TEXT_STEPS, "pad_value": 0}, n_docs * TEXT_STEPS),
    ):
        explain = eli5_nn.explain_predictions if many else eli5_nn.explain_prediction_nn

        def call(batch: int | None, model: Any = model, doc: Any = doc, kw: Any = kw,
                 explain: Any = explain) -> Callable[[], Any]:
            return lambda: explain(model, doc, method="integrated-gradients", progress=False,
                                   batch_size=batch, **kw)

        calls = {"auto": call(None), **{str(c): call(c) for c in CHUNKS}}
        auto = _auto(model, doc, units, many)
        rows.append(batch_row(fw, what, calls, auto, repeats))
    return rows


def _auto(model: Any, doc: Any, units: int, text: bool) -> int:
    """The chunk the automatic rule picks (-1 where it cannot be read here)."""
    from benchmarks.timing import auto_batch_size

    try:
        if text:
            from eli5_nn.adapters import get_adapter

            adapter = get_adapter(model)
            doc = adapter.as_batch(doc)
        return auto_batch_size(model, doc, units)
    except Exception:  # the rule's internals are not public: report, don't fail
        return -1


def child(backend: str, quick: bool) -> list[dict[str, Any]]:
    """Run this benchmark for ``backend`` in a fresh process (Keras: KERAS_BACKEND set)."""
    from benchmarks.bench_keras import child as keras_child

    keras_backend = "torch" if backend == "keras-torch" else backend
    if backend == "torch":
        keras_backend = "tensorflow"  # unused: the PyTorch rows import no Keras
    args = [backend, *(["--quick"] if quick else [])]
    rows: list[dict[str, Any]] = keras_child(keras_backend, *args, script=__file__)
    return rows


def run(quick: bool = False, backends: Sequence[str] = BACKENDS) -> list[dict[str, Any]]:
    """Rows {framework, method, auto, best, auto_s, best_s, ratio, fixed_s}."""
    return [row for b in backends for row in child(b, quick)]


def batch_table_rows(rows: list[dict[str, Any]]) -> list[list[str]]:
    """Cells of the batch-size table."""
    return [[r["framework"], r["method"], str(r["auto"]), str(r["best"]),
             f"{r['auto_s']:.3f}", f"{r['best_s']:.3f}", f"{r['ratio']:.2f}"] for r in rows]


if __name__ == "__main__":
    if "--child" in sys.argv:
        # bench_keras.child passes: --child KERAS_BACKEND BACKEND [--quick]
        i = sys.argv.index("--child")
        print(json.dumps(measure(sys.argv[i + 2], "--quick" in sys.argv)))
    else:
        chosen = [b for b in BACKENDS if b in sys.argv[1:]] or list(BACKENDS)
        for row in run("--quick" in sys.argv, chosen):
            print(row)
