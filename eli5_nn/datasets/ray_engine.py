"""``explain_dataset(..., engine="ray")``: the shards explained by Ray Data actors.

The unfinished shards become a ``ray.data`` dataset of item ranges; ``map_batches``
hands them to a pool of :class:`ShardTask` actors, two ranges in flight per actor so
that the next one is waiting when an actor finishes (with one, each actor idled about
0.17 s between shards on the streaming executor's cadence). Each actor loads the model
once (with ``num_gpus`` GPUs where asked), reads its items from the source, explains them
with the same :class:`~eli5_nn.datasets.DatasetExplainer` as the local engine and writes
the shard's Parquet file itself, so the files are the same as a local run's. Ray
restarts an actor that dies and retries its task; a shard is only renamed into place
when complete, so nothing is lost or written twice.
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
    """A Ray Data actor's work: ``map_batches`` calls it on batches of shard ranges
    (``{"start", "end"}`` columns); it explains each range into its shard and returns
    one row per shard (its name, numbers of items and errors, when it was done, and the
    worker).

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

    def explain(self, start: int, end: int) -> tuple[str, int, int, float, str]:
        """Explain items ``start .. end`` into their shard: its name, the numbers of items
        and of errors, ``time.time()`` when it was done, and the worker."""
        name = store.shard_name("items", start, end)
        if (self.out / name).is_file():  # a retried task whose shard got written
            n, k = end - start, 0
        else:
            name, n, k = explain_range(self.explainer, self.source, start, end,
                                       self.chunk_size, self.out)
        return name, n, k, time.time(), store.worker_name()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = [self.explain(s, e) for s, e in
                zip(batch["start"].tolist(), batch["end"].tolist(), strict=True)]
        return {key: np.array([r[i] for r in rows])
                for i, key in enumerate(("shard", "n_items", "n_errors", "done_at", "worker"))}


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
        todo: list[tuple[int, int]] = []
        for s in range(0, source.n_items, shard_size):
            e = min(s + shard_size, source.n_items)
            if s in finished:
                run.shards_skipped.append(store.shard_name("items", s, finished[s]))
            else:
                todo.append((s, e))
        if not todo:
            return
        n_workers = workers or max(1, int(ray.available_resources().get("CPU", 1)))
        ds = ray.data.from_items([{"start": s, "end": e} for s, e in todo],
                                 override_num_blocks=len(todo))
        out = ds.map_batches(
            ShardTask, batch_size=1, num_cpus=1, num_gpus=num_gpus or 0,
            compute=ray.data.ActorPoolStrategy(
                size=min(n_workers, len(todo)),
                max_tasks_in_flight_per_actor=2),
            fn_constructor_kwargs={
                "model_ref": [ray.put(model)], "source_ref": [ray.put(source)],
                "method": method, "settings": settings, "out": str(run.out.resolve()),
                "chunk_size": chunk_size,
            },
        )
        total = sum(e - s for s, e in todo)
        with tqdm(total=total, unit="item", disable=progress is False,
                  desc=f"explain_dataset {run.out.name} (ray)") as bar:
            for row in out.iter_rows():
                name, n, k = str(row["shard"]), int(row["n_items"]), int(row["n_errors"])
                run.shards_written.append(name)
                run.finished_at.append((name, n, float(row["done_at"]), str(row["worker"])))
                run.n_items += n
                run.n_errors += k
                bar.update(n)
        run.shards_written.sort()
        for p in run.out.glob(".*.tmp"):  # left by workers that died; their shards got redone
            p.unlink(missing_ok=True)
    finally:
        if started:
            ray.shutdown()
