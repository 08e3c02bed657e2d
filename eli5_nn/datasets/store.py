"""What :func:`eli5_nn.explain_dataset` writes: Parquet shards named by item range, a JSON
manifest of the settings, and the readers for both.

Layout of an output folder::

    manifest.json
    items-000000000-000001000.parquet     # one row per (item, explained target)
    errors-000000000-000001000.parquet    # the items of that range that failed, if any

A shard's ``errors-`` file is written before its ``items-`` file, and each file is
written under a temporary name and renamed, so an ``items-`` file means the shard
is complete: a rerun skips it. Files are written with fixed settings, so the same
rows give byte-identical files on any engine. This module imports no framework.
"""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ExplanationError, InputError

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
_SHARD = re.compile(r"^(items|errors)-(\d{9})-(\d{9})\.parquet$")


def _pa() -> Any:
    try:
        import pyarrow  # type: ignore[import-untyped]
    except ImportError as exc:  # pragma: no cover - pyarrow is an extra
        raise ImportError(
            "explaining datasets writes Parquet files with pyarrow: pip install pyarrow "
            "(or eli5-nn[datasets])"
        ) from exc
    return pyarrow


def item_schema(faithfulness: bool) -> Any:
    """The schema of the ``items-`` tables: one row per (item, explained target)."""
    pa = _pa()
    fields = [
        ("index", pa.int64()), ("id", pa.string()), ("label", pa.int64()),
        ("predicted", pa.int64()), ("target", pa.int64()), ("target_rank", pa.int32()),
        ("score", pa.float64()), ("proba", pa.float64()),
        ("attribution", pa.list_(pa.float32())), ("attribution_shape", pa.list_(pa.int32())),
        ("heatmap", pa.list_(pa.float32())), ("heatmap_shape", pa.list_(pa.int32())),
    ]
    if faithfulness:
        fields += [("deletion_auc", pa.float64()), ("insertion_auc", pa.float64())]
    return pa.schema(fields)


def error_schema() -> Any:
    """The schema of the ``errors-`` tables: one row per item that could not be explained."""
    pa = _pa()
    return pa.schema([("index", pa.int64()), ("id", pa.string()), ("stage", pa.string()),
                      ("reason", pa.string())])


def shard_name(kind: str, start: int, end: int) -> str:
    """``items-000000000-000001000.parquet``: items ``start`` (inclusive) to ``end``."""
    return f"{kind}-{start:09d}-{end:09d}.parquet"


def worker_name() -> str:
    """``host:pid`` of this process: the worker that explained a shard."""
    return f"{socket.gethostname()}:{os.getpid()}"


def finished_shards(out_dir: str | Path) -> dict[int, int]:
    """``{start: end}`` of the complete ``items-`` shards in ``out_dir``."""
    found: dict[int, int] = {}
    folder = Path(out_dir)
    if not folder.is_dir():
        return found
    for p in folder.iterdir():
        m = _SHARD.match(p.name)
        if m and m.group(1) == "items":
            found[int(m.group(2))] = int(m.group(3))
    return found


def columns_table(columns: Mapping[str, Sequence[Any]], schema: Any) -> Any:
    """A pyarrow table of ``columns`` (arrays flattened per row) in ``schema``'s order."""
    pa = _pa()
    arrays = []
    for field in schema:
        values = columns.get(field.name)
        if values is None:
            arrays.append(pa.nulls(_length(columns), type=field.type))
        elif pa.types.is_list(field.type):
            arrays.append(_list_array(values, field.type))
        else:
            arrays.append(pa.array(values, type=field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def _length(columns: Mapping[str, Sequence[Any]]) -> int:
    return len(next(iter(columns.values()))) if columns else 0


def _list_array(values: Sequence[Any], type_: Any) -> Any:
    """A list array built from per-row numpy arrays in one copy (no Python floats)."""
    pa = _pa()
    np_type = type_.value_type.to_pandas_dtype()
    flat = [np.asarray(v, dtype=np_type).ravel() for v in values]
    offsets = np.zeros(len(flat) + 1, dtype=np.int32)
    np.cumsum([f.size for f in flat], out=offsets[1:])
    data = np.concatenate(flat) if flat else np.zeros(0, dtype=np_type)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(data, type=type_.value_type))


class ShardWriter:
    """Writes one shard: a row group per explained chunk, renamed into place by
    :meth:`finish` once the shard's last item is done (:meth:`abort` drops it)."""

    def __init__(self, out_dir: str | Path, start: int, faithfulness: bool) -> None:
        self.folder = Path(out_dir)
        self.start = start
        self.schema = item_schema(faithfulness)
        self._tmp = self.folder / f".items-{start:09d}.{os.getpid()}.tmp"
        self._writer: Any = None
        self.errors: list[dict[str, Any]] = []

    def write(self, columns: Mapping[str, Sequence[Any]]) -> None:
        """Append one row group (one explained chunk)."""
        if not columns or _length(columns) == 0:
            return
        if self._writer is None:
            self._writer = _writer(self._tmp, self.schema)
        self._writer.write_table(columns_table(columns, self.schema))

    def add_errors(self, rows: Iterable[dict[str, Any]]) -> None:
        self.errors.extend(rows)

    def finish(self, end: int) -> str:
        """Close the shard as items ``start .. end``; returns its file name."""
        if self._writer is None:  # a shard without explained rows still gets its file
            self._writer = _writer(self._tmp, self.schema)
            self._writer.write_table(self.schema.empty_table())
        self._writer.close()
        if self.errors:
            cols = {k: [e[k] for e in self.errors] for k in ("index", "id", "stage", "reason")}
            write_table(self.folder / shard_name("errors", self.start, end),
                        columns_table(cols, error_schema()))
        name = shard_name("items", self.start, end)
        os.replace(self._tmp, self.folder / name)
        return name

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._tmp.unlink(missing_ok=True)


def _writer(path: Path, schema: Any) -> Any:
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    return pq.ParquetWriter(str(path), schema, compression="zstd", write_statistics=False,
                            use_dictionary=["id"])


def write_table(path: Path, table: Any) -> None:
    """Write ``table`` to ``path`` through a temporary file and a rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    w = _writer(tmp, table.schema)
    w.write_table(table)
    w.close()
    os.replace(tmp, path)


def read_items(out_dir: str | Path, columns: Sequence[str] | None = None) -> Any:
    """All ``items-`` shards of ``out_dir`` as one pyarrow table, ordered by item index.

    ``columns`` limits what is read (the attribution column can be large).
    ``.to_pandas()`` gives a DataFrame; :func:`as_array` turns a row's flat
    ``attribution`` or ``heatmap`` back into its shape.
    """
    return _read(out_dir, "items", columns)


def read_errors(out_dir: str | Path) -> Any:
    """The ``errors`` table of ``out_dir``: index, id, stage and reason of each failed item."""
    return _read(out_dir, "errors", None)


def _read(out_dir: str | Path, kind: str, columns: Sequence[str] | None) -> Any:
    import pyarrow.parquet as pq

    pa = _pa()
    folder = Path(out_dir)
    manifest = read_manifest(folder)
    files = sorted(p for p in folder.iterdir() if (m := _SHARD.match(p.name)) and
                   m.group(1) == kind)
    schema = item_schema(bool(manifest["settings"].get("faithfulness"))) if kind == "items" \
        else error_schema()
    if columns is not None:
        schema = pa.schema([schema.field(c) for c in columns])
    tables = [pq.read_table(str(p), columns=list(columns) if columns else None) for p in files]
    return pa.concat_tables(tables) if tables else schema.empty_table()


def as_array(flat: Any, shape: Sequence[int]) -> np.ndarray:
    """A row's flat ``attribution`` or ``heatmap`` list as a numpy array of ``shape``."""
    return np.asarray(flat, dtype=np.float32).reshape(tuple(int(s) for s in shape))


def write_manifest(out_dir: str | Path, manifest: Mapping[str, Any]) -> None:
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    tmp = folder / f".{MANIFEST}.{os.getpid()}.tmp"
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, folder / MANIFEST)


def read_manifest(out_dir: str | Path) -> dict[str, Any]:
    """The settings ``explain_dataset`` recorded in ``out_dir/manifest.json``."""
    path = Path(out_dir) / MANIFEST
    if not path.is_file():
        raise InputError(
            f"{str(out_dir)!r} holds no {MANIFEST}: pass the folder explain_dataset wrote"
        )
    return dict(json.loads(path.read_text(encoding="utf-8")))


def check_resumable(out_dir: str | Path, manifest: Mapping[str, Any]) -> dict[str, Any] | None:
    """The manifest already in ``out_dir`` if it matches ``manifest`` (a run to resume),
    ``None`` if there is none; raises if it records other settings."""
    path = Path(out_dir) / MANIFEST
    if not path.is_file():
        return None
    old = read_manifest(out_dir)
    keys = ("settings", "source", "shard_size", "chunk_size", "format")
    new_cmp = json.loads(json.dumps({k: manifest.get(k) for k in keys}))
    old_cmp = {k: old.get(k) for k in keys}
    if new_cmp != old_cmp:
        diff = sorted(k for k in keys if new_cmp[k] != old_cmp[k])
        raise ExplanationError(
            f"{str(out_dir)!r} holds a run with other settings ({', '.join(diff)} differ); "
            "resume with the same arguments, or write to a new folder"
        )
    return old
