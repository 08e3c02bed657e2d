"""``explain_dataset(..., engine="ray")``: the shards explained by Ray Data actors.

The unfinished shards become a ``ray.data`` dataset of item ranges; ``map_batches``
hands them, one at a time, to a pool of :class:`ShardTask` actors. Each actor loads
the model once (with ``num_gpus`` GPUs where asked), reads its items from the source,
explains them with the same :class:`~eli5_nn.datasets.DatasetExplainer` as the local
engine and writes the shard's Parquet file itself, so the files are the same as a
local run's. Ray restarts an actor that dies and retries its task; a shard is only
renamed into place when complete, so nothing is lost or written twice.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ExplanationError
from . import store
from .explainer import DatasetExplainer, resolve_model
from .sources import Items


def explain_range(explainer: DatasetExplainer, source: Any, start: int, end: int,
                  chunk_size: int, out: Path) -> tuple[str, int, int]:
    """Explain items ``start .. end`` of a random-access source into their shard.
    Returns the shard's name, the number of items and of errors."""
    writer = store.ShardWriter(out, start, explainer.faithfulness)
    n_errors = 0
    try:
        for c in range(start, end, chunk_size):
            items: Items = source.read(c, min(c + chunk_size, end))
            columns, errors = explainer.explain_items(items)
            writer.write(columns)
            writer.add_errors(errors)
            n_errors += len(errors)
        return writer.finish(end), end - start, n_errors
    except BaseException:
        writer.abort()
        raise


class ShardTask:
    """A Ray actor's work: explain whole shards given as ``{"start", "end"}`` rows.

    ``model_ref`` and ``source_ref`` hold a Ray object reference (in a list, so that Ray
    passes the reference and the actor fetches the object once).
    """

    def __init__(self, model_ref: list[Any], source_ref: list[Any], method: str,
                 settings: dict[str, Any], out: str, chunk_size: int) -> None:
        import ray

        self.source = ray.get(source_ref[0])
        self.explainer = DatasetExplainer(resolve_model(ray.get(model_ref[0])), method,
                                          **settings)
        self.out, self.chunk_size = Path(out), chunk_size

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        names, counts, errors, done = [], [], [], []
        for s, e in zip(batch["start"].tolist(), batch["end"].tolist(), strict=True):
            name = store.shard_name("items", s, e)
            if (self.out / name).is_file():  # a retried task whose shard got written
                n, k = e - s, 0
            else:
                name, n, k = explain_range(self.explainer, self.source, s, e,
                                           self.chunk_size, self.out)
            names.append(name)
            counts.append(n)
            errors.append(k)
            done.append(time.time())
        return {"shard": np.array(names), "n_items": np.array(counts),
                "n_errors": np.array(errors), "done_at": np.array(done)}


def run_ray(model: Any, method: str, settings: dict[str, Any], source: Any, run: Any,
            shard_size: int, chunk_size: int, *, address: str | None, workers: int | None,
            num_gpus: float | None, progress: bool | None) -> None:
    """Explain the unfinished shards of ``run`` on Ray (see :func:`explain_dataset`)."""
    if not source.random_access:
        raise ExplanationError(
            "engine='ray' reads items by range: pass an array, a memmap or a folder of "
            "images. For other data, build a ray.data dataset with an 'x' column and run "
            "ds.map_batches(eli5_nn.datasets.DatasetExplainer, ...) yourself"
        )
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - ray is an extra
        raise ImportError("engine='ray' needs Ray: pip install 'eli5-nn[ray]'") from exc
    from tqdm import tqdm

    started = not ray.is_initialized()
    if started:
        ray.init(address=address)
    try:
        finished = store.finished_shards(run.out)
        todo = []
        for s in range(0, source.n_items, shard_size):
            e = min(s + shard_size, source.n_items)
            if s in finished:
                run.shards_skipped.append(store.shard_name("items", s, finished[s]))
            else:
                todo.append({"start": s, "end": e})
        if not todo:
            return
        n_workers = workers or max(1, int(ray.available_resources().get("CPU", 1)))
        ds = ray.data.from_items(todo, override_num_blocks=len(todo))
        out = ds.map_batches(
            ShardTask, batch_size=1, concurrency=min(n_workers, len(todo)),
            num_cpus=1, num_gpus=num_gpus or 0,
            fn_constructor_kwargs={
                "model_ref": [ray.put(model)], "source_ref": [ray.put(source)],
                "method": method, "settings": settings, "out": str(run.out.resolve()),
                "chunk_size": chunk_size,
            },
        )
        with tqdm(total=sum(t["end"] - t["start"] for t in todo), unit="item",
                  disable=progress is False, desc=f"explain_dataset {run.out.name} (ray)") as bar:
            for row in out.iter_rows():
                run.shards_written.append(str(row["shard"]))
                run.finished_at.append((str(row["shard"]), int(row["n_items"]),
                                        float(row["done_at"])))
                run.n_items += int(row["n_items"])
                run.n_errors += int(row["n_errors"])
                bar.update(int(row["n_items"]))
        run.shards_written.sort()
        for p in run.out.glob(".*.tmp"):  # left by workers that died; their shards got redone
            p.unlink(missing_ok=True)
    finally:
        if started:
            ray.shutdown()
