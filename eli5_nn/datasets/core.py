"""``explain_dataset``: a whole dataset through the batched pipeline, into Parquet shards."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import Eli5NNTypeError, ExplanationError
from ..methods import get_method
from . import store
from .explainer import DatasetExplainer, resolve_model
from .sources import Items, open_source

DEFAULT_SHARD = 1000
DEFAULT_CHUNK = 64


@dataclass
class DatasetRun:
    """What :func:`explain_dataset` did: where it wrote, what it wrote.

    ``items()`` and ``errors()`` read the tables back (pyarrow tables; ``.to_pandas()``
    for DataFrames).
    """

    out: Path
    manifest: dict[str, Any]
    n_items: int = 0
    n_errors: int = 0
    shards_written: list[str] = field(default_factory=list)
    shards_skipped: list[str] = field(default_factory=list)
    #: (shard, items, time.time() when it was done, the worker's ``host:pid``), in the
    #: order shards were reported
    finished_at: list[tuple[str, int, float, str]] = field(default_factory=list)

    def items(self, columns: Sequence[str] | None = None) -> Any:
        return store.read_items(self.out, columns)

    def errors(self) -> Any:
        return store.read_errors(self.out)


def explain_dataset(
    model: Any, data: Any, method: str = "grad-cam", out: str | Path = "explained", *,
    engine: str = "local", full: bool = False, faithfulness: bool = False,
    shard_size: int = DEFAULT_SHARD, chunk_size: int = DEFAULT_CHUNK,
    labels: Sequence[int] | None = None, ids: Sequence[Any] | None = None,
    n_items: int | None = None, image_size: tuple[int, int] | None = None,
    channels: int = 3, channels_last: bool | None = None,
    mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
    item_shape: Sequence[int] | None = None, progress: bool | None = None,
    address: str | None = None, workers: int | None = None, num_gpus: float | None = None,
    **explain_args: Any,
) -> DatasetRun:
    """Explain every item of a dataset and write the results to Parquet shards.

    Items stream through :func:`eli5_nn.explain_predictions` ``chunk_size`` at a
    time; each shard of ``shard_size`` items is written as it finishes, so memory
    stays bounded whatever the size of the dataset. Rerun with the same arguments
    after a crash, it skips the finished shards and gives the same files.

    Parameters
    ----------
    model : torch.nn.Module, keras.Model, or a callable returning one
        The classifier (a loader function is called once; on Ray once per worker).
    data : array, memmap, tensor, iterable of batches, DataLoader, tf.data.Dataset, or folder
        The items. An array, memmap or framework tensor holds them along its first
        axis (``labels=`` and ``ids=`` may go with it). An iterable yields batches: an array or
        tensor, ``(x, labels)`` or ``(x, labels, ids)``, or a dict with ``x`` (a
        ``DataLoader`` or a batched ``tf.data.Dataset`` works as is). A folder
        (path) holds image files, in class sub-folders for labels; they are
        resized to ``image_size`` and normalised by ``mean``/``std``.
    method : str
        The explanation method (see :func:`eli5_nn.explain_prediction_nn`).
    out : str or Path
        The output folder: ``manifest.json``, ``items-<start>-<end>.parquet``
        (one row per item and explained target: ``index``, ``id``, ``label``,
        ``predicted``, ``target``, ``target_rank``, ``score``, ``proba``,
        ``attribution`` and ``heatmap`` flattened with their ``*_shape``), and
        ``errors-<start>-<end>.parquet`` for items that could not be explained.
    engine : {"local", "ray"}
        ``"ray"`` runs the shards on Ray actors (``ray.data``); ``address`` names
        the cluster (default: the running one, else a local one), ``workers`` the
        number of actors, ``num_gpus`` the GPUs per actor.
    full : bool
        Store the full attribution tensor instead of the attribution reduced as the
        heatmap is (channels summed; one value per token for text).
    faithfulness : bool
        Also store each target's deletion and insertion AUC.
    shard_size, chunk_size : int
        Items per Parquet file, and items per call of the pipeline.
    progress : bool, optional
        Show a progress bar (default: shown).
    **explain_args
        Passed to :func:`eli5_nn.explain_predictions`: ``targets``, ``top_targets``,
        ``target_names`` (stored in the manifest; the tables hold class indices),
        ``layer``, ``steps``, ``baseline``, ``samples``, ``noise``,
        ``random_state`` (when None, a seed is drawn and recorded in the manifest
        so that a resumed run uses it too), ``batch_size``...

    Returns
    -------
    DatasetRun
        The folder, the manifest, counts of items and errors, the shards written
        and skipped; ``.items()`` and ``.errors()`` read the tables.
    """
    for name, v in (("shard_size", shard_size), ("chunk_size", chunk_size)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ExplanationError(f"{name} must be a positive integer, got {v!r}")
    if engine not in ("local", "ray"):
        raise ExplanationError(f"engine must be 'local' or 'ray', got {engine!r}")
    out = Path(out)
    if engine == "local":
        model = resolve_model(model)  # a loader is called once, here
    source = open_source(data, labels=labels, ids=ids, n_items=n_items, image_size=image_size,
                         channels=channels, channels_last=channels_last, mean=mean, std=std,
                         model=model)
    spec = get_method(method)
    args = _prepare_args(spec, dict(explain_args), out)
    manifest = _manifest(spec, args, source, full, faithfulness, shard_size, chunk_size,
                         explain_args.get("target_names"), model, item_shape)
    previous = store.check_resumable(out, manifest)
    store.write_manifest(out, manifest if previous is None else previous)
    _remove_partial_files(out)
    settings = {"full": full, "faithfulness": faithfulness, "item_shape": item_shape,
                **args["pipeline"]}
    run = DatasetRun(out=out, manifest=manifest)
    if engine == "ray":
        from .ray_engine import run_ray

        run_ray(model, spec.key, settings, source, run, shard_size, chunk_size,
                address=address, workers=workers, num_gpus=num_gpus, progress=progress)
    else:
        explainer = DatasetExplainer(model, spec.key, **settings)
        _run_local(explainer, source, run, shard_size, chunk_size, progress)
    return run


def _prepare_args(spec: Any, explain_args: dict[str, Any], out: Path) -> dict[str, Any]:
    """The pipeline's arguments (targets as indices, the seed fixed) and their record."""
    names = explain_args.pop("target_names", None)
    targets = explain_args.get("targets")
    if targets is not None and names is not None:
        explain_args["targets"] = [_class_index(t, names) for t in targets]
    seed, drawn = None, False
    if "random_state" in spec.params:
        rs = explain_args.get("random_state")
        if rs is None:
            old = _old_manifest(out)
            if old is not None and old["settings"].get("seed_drawn"):
                seed = int(old["settings"]["seed"])
            else:
                seed = int(np.random.default_rng().integers(0, 2**63 - 1))
            drawn = True
        elif isinstance(rs, np.random.Generator):
            seed = int(rs.integers(0, 2**63 - 1))
        elif isinstance(rs, (int, np.integer)) and not isinstance(rs, bool):
            seed = int(rs)
        else:
            raise Eli5NNTypeError(
                f"random_state must be None, an int or a numpy Generator, got "
                f"{type(rs).__name__}"
            )
        explain_args["random_state"] = seed
    record = {k: _jsonable(v) for k, v in sorted(explain_args.items()) if k != "random_state"}
    return {"pipeline": explain_args, "record": record, "seed": seed, "drawn": drawn}


def _class_index(t: Any, names: Any) -> int:
    if isinstance(t, (int, np.integer)):
        return int(t)
    items = names.items() if isinstance(names, Mapping) else enumerate(names)
    for i, n in items:
        if n == t:
            return int(i)
    raise ExplanationError(f"target {t!r} is not among target_names")


def _old_manifest(out: Path) -> dict[str, Any] | None:
    return store.read_manifest(out) if (out / store.MANIFEST).is_file() else None


def _jsonable(v: Any) -> Any:
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (list, tuple)):
        return [_jsonable(e) for e in v]
    if isinstance(v, Mapping):
        return {str(k): _jsonable(e) for k, e in v.items()}
    if hasattr(v, "shape") and hasattr(v, "dtype"):
        a = np.ascontiguousarray(np.asarray(v))
        return {"array_sha256": hashlib.sha256(a.tobytes()).hexdigest(),
                "shape": list(a.shape), "dtype": str(a.dtype)}
    return f"<{type(v).__name__}>"


def _manifest(spec: Any, args: dict[str, Any], source: Any, full: bool, faithfulness: bool,
              shard_size: int, chunk_size: int, names: Any, model: Any,
              item_shape: Sequence[int] | None) -> dict[str, Any]:
    desc = source.describe()
    if isinstance(names, Mapping):
        class_names: Any = {str(k): str(v) for k, v in names.items()}
    elif names is not None:
        class_names = [str(n) for n in names]
    else:
        class_names = desc.get("class_names")
    return {
        "format": store.FORMAT_VERSION,
        "model": type(model).__name__,
        "method": spec.key, "method_name": spec.name,
        "settings": {"method": spec.key, "args": args["record"], "full": full,
                     "faithfulness": faithfulness, "seed": args["seed"],
                     "seed_drawn": args["drawn"],
                     "item_shape": None if item_shape is None else list(item_shape)},
        "source": desc, "class_names": class_names,
        "shard_size": int(shard_size), "chunk_size": int(chunk_size),
    }


def _remove_partial_files(out: Path) -> None:
    for p in out.glob(".*.tmp"):
        p.unlink(missing_ok=True)


def _run_local(explainer: DatasetExplainer, source: Any, run: DatasetRun, shard_size: int,
               chunk_size: int, progress: bool | None) -> None:
    from tqdm import tqdm

    finished = store.finished_shards(run.out)
    bar = tqdm(total=source.n_items, unit="item", disable=progress is False,
               desc=f"explain_dataset {run.out.name}")
    writer: store.ShardWriter | None = None
    try:
        for shard_start, items, last in chunks(source, shard_size, chunk_size, finished, run,
                                               bar):
            if writer is None:
                writer = store.ShardWriter(run.out, shard_start, explainer.faithfulness)
            columns, errors = explainer.explain_items(items)
            writer.write(columns)
            writer.add_errors(errors)
            run.n_errors += len(errors)
            run.n_items += len(items)
            bar.update(len(items))
            if last:
                name = writer.finish(items.end)
                run.shards_written.append(name)
                run.finished_at.append((name, items.end - writer.start, time.time(),
                                        store.worker_name()))
                writer = None
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        bar.close()


def chunks(source: Any, shard_size: int, chunk_size: int, finished: Mapping[int, int],
           run: DatasetRun, bar: Any) -> Iterator[tuple[int, Items, bool]]:
    """``(shard_start, items, last_of_shard)`` for the unfinished shards, in order."""
    if source.random_access:
        for s in range(0, source.n_items, shard_size):
            e = min(s + shard_size, source.n_items)
            if s in finished:
                _skip(run, bar, s, finished[s])
                continue
            for c in range(s, e, chunk_size):
                yield s, source.read(c, min(c + chunk_size, e)), c + chunk_size >= e
        return
    pending: Items | None = None
    for batch in source:
        for k in range(len(batch)):
            i = batch.start + k
            s = i - i % shard_size
            if s in finished:
                if i == s:
                    _skip(run, bar, s, finished[s])
                continue
            c = s + (i - s) // chunk_size * chunk_size
            if pending is not None and pending.start != c:
                yield pending.start - pending.start % shard_size, pending, \
                    pending.start - pending.start % shard_size != s
                pending = None
            if pending is None:
                pending = Items(c)
            pending.append(batch.x[k], batch.ids[k], batch.labels[k], batch.errors[k])
    if pending is not None:
        yield pending.start - pending.start % shard_size, pending, True


def _skip(run: DatasetRun, bar: Any, start: int, end: int) -> None:
    run.shards_skipped.append(store.shard_name("items", start, end))
    bar.update(end - start)
