"""Loading saved models and raw inputs for the ``eli5-nn explain`` command.

Models are loaded without unpickling arbitrary objects: TorchScript archives
(``torch.jit.save``), ``torch.export`` archives (``torch.export.save``,
``.pt2``) and Keras ``.keras`` files in Keras' safe mode. A pickled
``torch.save(model)`` file is refused, since loading it can run any code.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .errors import InputError

_WORD = re.compile(r"[\w']+")


KERAS, EXPORT, TORCHSCRIPT = "Keras", "torch.export", "TorchScript"


@dataclass(frozen=True)
class ModelInfo:
    """What a saved model states about itself.

    ``kind``: :data:`KERAS`, :data:`EXPORT` or :data:`TORCHSCRIPT`.
    ``input_shape``: the shape of its (first) input with the batch axis, where
    the file states it (``None`` for an axis of any size), else ``None``.
    ``channels_last``: for Keras models, the image data format.
    """

    kind: str
    input_shape: tuple[int | None, ...] | None
    channels_last: bool = False


def load_model(path: str | Path) -> Any:
    """The model saved at ``path``: ``.keras`` (Keras 3, safe mode), ``.pt2``
    (``torch.export``), or a TorchScript archive (any other name)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"model file {str(p)!r} does not exist")
    if p.suffix == ".keras":
        try:
            import keras
        except ImportError as exc:
            raise InputError(f"{p} is a Keras model but Keras is not installed") from exc
        try:
            return keras.saving.load_model(p, safe_mode=True)
        except Exception as exc:  # noqa: BLE001 - Keras raises many kinds
            raise InputError(f"could not load the Keras model {str(p)!r}: {exc}") from exc
    if not zipfile.is_zipfile(p):
        raise InputError(
            f"{str(p)!r} is neither a Keras .keras file nor a TorchScript / torch.export "
            "archive. Save PyTorch models with torch.jit.save(torch.jit.script(model), path) "
            "or torch.export.save(torch.export.export(model, (x,)), 'model.pt2'); pickled "
            "models (torch.save(model)) are not loaded, since unpickling can run any code."
        )
    with zipfile.ZipFile(p) as archive:
        names = archive.namelist()
    if any(n.endswith("/data.pkl") for n in names) and not any("/code/" in n for n in names):
        raise InputError(
            f"{str(p)!r} is a pickled model (torch.save); it is not loaded, since unpickling "
            "can run any code. Save it with torch.jit.save(torch.jit.script(model), path) or "
            "torch.export.save(torch.export.export(model, (x,)), 'model.pt2')."
        )
    try:
        import torch
    except ImportError as exc:
        raise InputError(f"{p} is a PyTorch archive but torch is not installed") from exc
    if p.suffix == ".pt2":
        try:
            program = torch.export.load(str(p))
            # unflattened, the exported program keeps its submodules (for CAM layers)
            return torch.export.unflatten(program)
        except Exception as exc:  # noqa: BLE001
            raise InputError(f"could not load the torch.export archive {str(p)!r}: {exc}") from exc
    try:
        # traced archives keep their example inputs: restore their shapes on the graph
        return torch.jit.load(str(p), map_location="cpu", _restore_shapes=True).eval()
    except Exception as exc:  # noqa: BLE001
        raise InputError(
            f"could not load {str(p)!r} as a TorchScript archive: {exc}. Use a .pt2 name for "
            "torch.export archives and .keras for Keras models."
        ) from exc


def _static(dims: Any) -> tuple[int | None, ...] | None:
    try:
        return tuple(d if type(d) is int else None for d in dims)
    except TypeError:
        return None


def model_info(model: Any) -> ModelInfo:
    """The kind of a model from :func:`load_model` and the input shape it states:
    Keras' ``input_shape``, a ``torch.export`` archive's input spec, or the
    example input a traced TorchScript archive keeps."""
    from .adapters import is_keras_model

    if is_keras_model(model):
        import keras

        shape = getattr(model, "input_shape", None)
        shape = _static(shape) if isinstance(shape, tuple) else None
        return ModelInfo(KERAS, shape, keras.config.image_data_format() == "channels_last")
    if getattr(model, "module_call_graph", None) is not None:
        for node in model.graph.nodes:
            if node.op == "placeholder":
                val = node.meta.get("val")
                return ModelInfo(EXPORT, None if val is None else _static(val.shape))
        return ModelInfo(EXPORT, None)
    try:
        sizes = list(model.graph.inputs())[1].type().sizes()
    except (AttributeError, IndexError, RuntimeError):
        sizes = None
    return ModelInfo(TORCHSCRIPT, None if sizes is None else _static(sizes))


def fixed_batch_size(model: Any) -> int | None:
    """1 for a model unflattened from ``torch.export`` with a static batch axis of 1
    (it then runs one input per pass), else ``None``."""
    if getattr(model, "module_call_graph", None) is None:
        return None
    for node in model.graph.nodes:
        if node.op == "placeholder":
            shape = getattr(node.meta.get("val"), "shape", None)
            if shape is not None and len(shape) and type(shape[0]) is int and shape[0] == 1:
                return 1
    return None


def load_images(
    paths: Sequence[str | Path], size: tuple[int, int], channels: int, channels_last: bool,
    mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
) -> tuple[np.ndarray, list[Image.Image]]:
    """Images resized to ``size`` (H, W), scaled to [0, 1], then ``(x - mean) / std``.

    Returns the batch (N, C, H, W) or (N, H, W, C) as float32 and the resized
    pictures (for drawing on)."""
    if channels not in (1, 3):
        raise InputError(f"--channels must be 1 or 3, got {channels}")
    arrays, pictures = [], []
    for path in paths:
        p = Path(path)
        if not p.is_file():
            raise InputError(f"input file {str(p)!r} does not exist")
        try:
            with Image.open(p) as im:
                pic = im.convert("L" if channels == 1 else "RGB").resize(
                    (size[1], size[0]), Image.Resampling.BILINEAR
                )
        except OSError as exc:
            raise InputError(f"{str(p)!r} is not an image PIL can read: {exc}") from exc
        a = np.asarray(pic, dtype=np.float32) / 255.0
        a = a[..., None] if a.ndim == 2 else a
        arrays.append(a)
        pictures.append(pic.convert("RGB"))
    x = np.stack(arrays)
    for name, values in (("--mean", mean), ("--std", std)):
        if values is not None and len(values) not in (1, channels):
            raise InputError(f"{name} takes 1 or {channels} values, got {len(values)}")
    if mean is not None:
        x = x - np.asarray(mean, dtype=np.float32)
    if std is not None:
        s = np.asarray(std, dtype=np.float32)
        if np.any(s <= 0):
            raise InputError("--std values must be positive")
        x = x / s
    if not channels_last:
        x = x.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x, dtype=np.float32), pictures


def read_vocabulary(path: str | Path) -> list[str]:
    """One token per line; the line number (from 0) is the token's id."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"vocabulary file {str(p)!r} does not exist")
    words = p.read_text(encoding="utf-8").splitlines()
    if not words:
        raise InputError(f"vocabulary file {str(p)!r} is empty")
    return words


def encode_texts(
    texts: Sequence[str], vocabulary: Sequence[str], length: int | None,
    pad: str = "<pad>", unk: str = "<unk>",
) -> tuple[np.ndarray, list[list[str]], int]:
    """Lower-case words → ids (N, length), the tokens, and the padding id.

    Words not in the vocabulary become ``unk`` (which must then be in it);
    padding is ``pad`` if the vocabulary has it, else id 0.
    """
    index = {w: i for i, w in enumerate(vocabulary)}
    pad_id = index.get(pad, 0)
    docs = [_WORD.findall(t.lower()) for t in texts]
    n = length or max((len(d) for d in docs), default=1) or 1
    ids = np.full((len(docs), n), pad_id, dtype=np.int64)
    tokens: list[list[str]] = []
    for i, words in enumerate(docs):
        words = words[:n]
        row = []
        for j, w in enumerate(words):
            if w not in index:
                if unk not in index:
                    raise InputError(
                        f"the word {w!r} is not in the vocabulary, which has no {unk!r} entry "
                        "for unknown words"
                    )
                w = unk
            ids[i, j] = index[w]
            row.append(w)
        tokens.append(row + [vocabulary[pad_id]] * (n - len(row)))
    return ids, tokens, pad_id
