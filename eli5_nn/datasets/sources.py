"""Where the items of a dataset come from: arrays and memmaps, iterables of batches
(a torch ``DataLoader``, a ``tf.data.Dataset``, a generator), and folders of images.

Every source yields :class:`Items`: consecutive items with their global index, id,
label (when known) and, for items that could not be loaded, the reason. Framework
tensors are turned into numpy arrays through their own methods (``.numpy()``), so
this module imports no framework; Keras is read only to pick the channel order of
images loaded from a folder.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import Eli5NNTypeError, InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


@dataclass
class Items:
    """Consecutive items ``start .. start + len(x)`` of a dataset."""

    start: int
    x: list[np.ndarray | None] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    labels: list[int | None] = field(default_factory=list)
    errors: list[str | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.x)

    @property
    def end(self) -> int:
        return self.start + len(self.x)

    def append(self, x: np.ndarray | None, id_: str, label: int | None,
               error: str | None = None) -> None:
        self.x.append(x)
        self.ids.append(id_)
        self.labels.append(label)
        self.errors.append(error)

    def take(self, lo: int, hi: int) -> Items:
        """Items ``lo .. hi`` (global indices) of these."""
        a, b = lo - self.start, hi - self.start
        return Items(lo, self.x[a:b], self.ids[a:b], self.labels[a:b], self.errors[a:b])


def to_numpy(value: Any) -> np.ndarray:
    """A numpy array from a numpy array, a torch tensor or a TensorFlow / JAX array."""
    if hasattr(value, "detach"):  # torch
        value = value.detach().cpu().numpy()
    elif hasattr(value, "numpy") and not isinstance(value, np.ndarray):  # tf EagerTensor
        value = value.numpy()
    return np.asarray(value)


def _label(value: Any) -> int | None:
    if value is None:
        return None
    arr = np.asarray(value)
    if arr.ndim != 0 or not np.issubdtype(arr.dtype, np.integer):
        raise InputError(f"labels must be class indices (integers), got {value!r}")
    return int(arr)


class ArraySource:
    """Items of an array (or memmap) along its first axis; ids are the indices."""

    random_access = True

    def __init__(self, x: np.ndarray, labels: Sequence[int] | None = None,
                 ids: Sequence[Any] | None = None) -> None:
        self.x = x
        self.labels = None if labels is None else np.asarray(labels)
        self.ids = None if ids is None else [str(i) for i in ids]
        for name, v in (("labels", self.labels), ("ids", self.ids)):
            if v is not None and len(v) != len(x):
                raise InputError(f"{name}= has {len(v)} entries for {len(x)} items")

    @property
    def n_items(self) -> int:
        return int(self.x.shape[0])

    def describe(self) -> dict[str, Any]:
        return {"kind": "memmap" if isinstance(self.x, np.memmap) else "array",
                "n_items": self.n_items, "item_shape": list(self.x.shape[1:]),
                "dtype": str(self.x.dtype), "labels": self.labels is not None}

    def read(self, start: int, end: int) -> Items:
        out = Items(start)
        block = np.asarray(self.x[start:end])
        for i, row in enumerate(block):
            j = start + i
            out.append(row, self.ids[j] if self.ids else str(j),
                       None if self.labels is None else int(self.labels[j]))
        return out

    def __reduce__(self) -> Any:
        # A memmap travels as its file name (Ray workers open it themselves), not its data.
        x = self.x
        if isinstance(x, np.memmap) and isinstance(x.base, mmap.mmap) and x.filename:
            spec = (str(x.filename), str(x.dtype), tuple(x.shape), int(x.offset))
            return (_reopen, (spec, self.labels, self.ids))
        return (ArraySource, (np.asarray(x), self.labels, self.ids))


def _reopen(spec: tuple[str, str, tuple[int, ...], int], labels: Any, ids: Any) -> ArraySource:
    filename, dtype, shape, offset = spec
    return ArraySource(np.memmap(filename, dtype=dtype, mode="r", shape=shape, offset=offset),
                       labels, ids)


class IterableSource:
    """Items of an iterable of batches, read in order (a rerun reads it again from the start).

    A batch is an array or tensor (N, ...), a tuple or list ``(x, labels)`` or
    ``(x, labels, ids)`` (what a torch ``DataLoader`` over (image, label) pairs
    yields), or a dict with ``x``/``image``/``input`` and optionally
    ``label``/``y`` and ``id``. ``x`` may also be a list of per-item arrays.
    """

    random_access = False

    def __init__(self, data: Iterable[Any], n_items: int | None = None) -> None:
        self.data = data
        self.n_items = n_items if n_items is not None else _guess_length(data)

    def describe(self) -> dict[str, Any]:
        return {"kind": "iterable", "type": type(self.data).__name__}

    def __iter__(self) -> Iterator[Items]:
        data = self.data
        if hasattr(data, "as_numpy_iterator"):  # tf.data.Dataset
            data = data.as_numpy_iterator()
        index = 0
        for batch in data:
            items = self.unpack(batch, index)
            index = items.end
            yield items

    @staticmethod
    def unpack(batch: Any, start: int) -> Items:
        """One batch as :class:`Items` starting at index ``start``."""
        labels = ids = None
        if isinstance(batch, Mapping):
            key = next((k for k in ("x", "image", "input", "inputs") if k in batch), None)
            if key is None:
                raise InputError(
                    f"a dict batch needs its inputs under 'x', 'image' or 'input'; got keys "
                    f"{sorted(batch)}"
                )
            x = batch[key]
            labels = next((batch[k] for k in ("label", "labels", "y") if k in batch), None)
            ids = batch.get("id", batch.get("ids"))
        elif isinstance(batch, (tuple, list)) and len(batch) in (2, 3):
            x, labels = batch[0], batch[1]
            ids = batch[2] if len(batch) == 3 else None
        elif isinstance(batch, (tuple, list)):
            raise InputError(
                f"a tuple or list batch must be (x, labels) or (x, labels, ids); got "
                f"{len(batch)} parts"
            )
        else:
            x = batch
        rows = list(x) if isinstance(x, (list, tuple)) else to_numpy(x)
        lab = None if labels is None else to_numpy(labels).reshape(-1)
        out = Items(start)
        for i in range(len(rows)):
            row = rows[i]
            out.append(to_numpy(row) if row is not None else None,
                       str(to_numpy(ids[i]).item()) if ids is not None else str(start + i),
                       None if lab is None else _label(lab[i]))
        return out


def _guess_length(data: Any) -> int | None:
    dataset = getattr(data, "dataset", None)  # torch DataLoader
    if dataset is not None and hasattr(dataset, "__len__"):
        try:
            return int(len(dataset))
        except TypeError:
            return None
    return None


class FolderSource:
    """The images under a folder, sorted by path; ``root/<class>/image`` gives labels
    (the class folders in sorted order), image files directly under ``root`` none.

    Each image is resized to ``size`` (H, W), scaled to [0, 1], reduced to
    ``channels`` (1 grey, 3 RGB), normalised by ``mean``/``std`` and laid out
    channels-first, or channels-last when ``channels_last``.
    """

    random_access = True

    def __init__(self, root: str | Path, size: tuple[int, int], channels: int = 3,
                 channels_last: bool = False, mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None) -> None:
        self.root = Path(root)
        if channels not in (1, 3):
            raise InputError(f"channels must be 1 or 3, got {channels!r}")
        self.size, self.channels, self.channels_last = (int(size[0]), int(size[1])), channels, \
            bool(channels_last)
        self.mean = np.asarray(mean if mean is not None else [0.0], dtype=np.float32)
        self.std = np.asarray(std if std is not None else [1.0], dtype=np.float32)
        files = sorted(p for p in self.root.rglob("*") if p.is_file() and
                       p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise InputError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) under {str(root)!r}")
        self.files = [str(p.relative_to(self.root)) for p in files]
        classes = sorted({Path(f).parts[0] for f in self.files if len(Path(f).parts) > 1})
        self.class_names = classes or None
        index = {c: i for i, c in enumerate(classes)}
        self.labels = [index.get(Path(f).parts[0]) if len(Path(f).parts) > 1 else None
                       for f in self.files]

    @property
    def n_items(self) -> int:
        return len(self.files)

    def describe(self) -> dict[str, Any]:
        return {"kind": "folder", "root": str(self.root), "n_items": self.n_items,
                "size": list(self.size), "channels": self.channels,
                "channels_last": self.channels_last, "mean": self.mean.tolist(),
                "std": self.std.tolist(), "class_names": self.class_names}

    def read(self, start: int, end: int) -> Items:
        out = Items(start)
        for j in range(start, min(end, self.n_items)):
            try:
                x, err = self._load(self.root / self.files[j]), None
            except Exception as exc:  # noqa: BLE001 - any unreadable file is recorded
                x, err = None, f"unreadable image file: {type(exc).__name__}: {exc}"
            out.append(x, self.files[j], self.labels[j], err)
        return out

    def _load(self, path: Path) -> np.ndarray:
        from PIL import Image

        with Image.open(path) as img:
            pic = img.convert("L" if self.channels == 1 else "RGB").resize(
                (self.size[1], self.size[0]), Image.Resampling.BILINEAR)
            a = np.asarray(pic, dtype=np.float32) / 255.0
        a = a.reshape(*self.size, self.channels)
        a = (a - self.mean) / self.std
        return np.ascontiguousarray(a if self.channels_last else np.moveaxis(a, -1, 0))


def open_source(data: Any, *, labels: Sequence[int] | None = None,
                ids: Sequence[Any] | None = None, n_items: int | None = None,
                image_size: tuple[int, int] | None = None, channels: int = 3,
                channels_last: bool | None = None, mean: Sequence[float] | None = None,
                std: Sequence[float] | None = None, model: Any = None) -> Any:
    """The source for ``data`` (see :func:`eli5_nn.explain_dataset`)."""
    if isinstance(data, (str, Path)):
        if not Path(data).is_dir():
            raise InputError(f"{str(data)!r} is not a folder of images")
        if image_size is None:
            raise InputError("a folder of images needs image_size=(height, width)")
        if channels_last is None:
            channels_last = _keras_channels_last(model)
        return FolderSource(data, image_size, channels, channels_last, mean, std)
    if not isinstance(data, np.ndarray) and hasattr(data, "shape") and hasattr(data, "dtype"):
        data = to_numpy(data)  # a torch / TensorFlow / JAX tensor of items
    if isinstance(data, np.ndarray):
        if data.ndim < 2:
            raise InputError(f"an array of items needs a leading item axis; got shape "
                             f"{data.shape}")
        return ArraySource(data, labels, ids)
    if labels is not None or ids is not None:
        raise InputError("labels= and ids= apply to arrays; an iterable's batches carry "
                         "their own (x, labels[, ids])")
    if hasattr(data, "__iter__") and not isinstance(data, (bytes, Mapping)):
        return IterableSource(data, n_items)
    raise Eli5NNTypeError(
        "data must be a numpy array or memmap, an iterable of batches (a torch DataLoader, "
        f"a tf.data.Dataset), or a folder of images; got {type(data).__name__}"
    )


def _keras_channels_last(model: Any) -> bool:
    """Keras models take channels-last images unless Keras is configured otherwise."""
    from ..adapters import is_keras_model

    if model is not None and is_keras_model(model):
        import keras

        return bool(keras.config.image_data_format() == "channels_last")
    return False
