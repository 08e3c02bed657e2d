"""Pictures as input: PIL images given as ``doc``, and inputs whose channel axis is
on the wrong side.

:func:`from_pil` converts a PIL image (or a list of them) to the float array
the model takes, trying RGB or grayscale, channels first or last, values in
[0, 1]; the description says which conversion was used. :func:`layout_hint`
turns a failed call on a channels-last image (for a channels-first model, or
the reverse) into an error that suggests the transpose.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from ..adapters.base import Adapter
from ..errors import ExplanationError

#: the transposes tried, and how the input then looks
_TRANSPOSES = {
    (0, 3, 1, 2): "channels last (N, H, W, C)",
    (0, 2, 3, 1): "channels first (N, C, H, W)",
}

_HOW_TO_CONVERT = (
    "Convert it as the model expects, e.g. x = (np.asarray(img.convert('RGB'), "
    "dtype=np.float32) / 255).transpose(2, 0, 1)[None] for a channels-first model (drop "
    ".transpose(2, 0, 1) for channels last), plus the model's own preprocessing (resizing, "
    "normalisation), and pass image=img to draw on the original picture."
)


def is_pil(doc: Any) -> bool:
    """Whether ``doc`` is a PIL image or a non-empty list / tuple of them."""
    if isinstance(doc, Image.Image):
        return True
    return (isinstance(doc, (list, tuple)) and bool(doc)
            and all(isinstance(d, Image.Image) for d in doc))


def _modes(first: Image.Image) -> list[str]:
    gray = first.mode in ("1", "L", "LA", "I", "I;16", "F")
    return ["L", "RGB"] if gray else ["RGB", "L"]


def _arrays(pics: Sequence[Image.Image], mode: str) -> np.ndarray:
    """(N, H, W, C) float32 in [0, 1]."""
    arr = np.stack([np.asarray(p.convert(mode), dtype=np.float32) for p in pics]) / 255.0
    return arr[..., None] if arr.ndim == 3 else arr


def from_pil(adapter: Adapter, doc: Any) -> tuple[np.ndarray, list[Image.Image], str]:
    """The array the model takes for PIL image(s) ``doc``, the pictures (one per
    doc) and a note for the description.

    Tries the image's own colour mode first (RGB or grayscale), channels first,
    then channels last, values scaled to [0, 1]; the first array the model
    runs on wins. Raises :class:`ExplanationError` saying how to convert the
    image when none runs.
    """
    pics = [doc] if isinstance(doc, Image.Image) else list(doc)
    if len({p.size for p in pics}) > 1:
        raise ExplanationError(
            "doc is a list of PIL images of different sizes; resize them to the model's "
            "input size first. " + _HOW_TO_CONVERT
        )
    failure: Exception | None = None
    for mode in _modes(pics[0]):
        hwc = _arrays(pics, mode)
        for axes, arr in (("NCHW", hwc.transpose(0, 3, 1, 2)), ("NHWC", hwc)):
            try:
                adapter.forward(adapter.as_batch(np.ascontiguousarray(arr[:1])))
            except Exception as err:  # noqa: BLE001 - a trial: the next conversion may run
                failure = err
                continue
            note = (
                f"doc was {'a PIL image' if len(pics) == 1 else 'PIL images'}, converted to "
                f"{mode} values in [0, 1] of shape {arr.shape} ({axes}) without any other "
                "preprocessing; pass an array for the model's own preprocessing"
            )
            return np.ascontiguousarray(arr), [p.convert(mode) for p in pics], note
    raise ExplanationError(
        f"doc is a PIL image ({pics[0].mode}, {pics[0].size[0]}×{pics[0].size[1]}); the model "
        f"ran neither on its RGB nor on its grayscale values in [0, 1], channels first or "
        f"last ({failure}). " + _HOW_TO_CONVERT
    )


def layout_hint(adapter: Adapter, doc: Any, err: ExplanationError) -> ExplanationError | None:
    """A clearer error than ``err`` when ``doc`` (the model input, or the user's doc
    where it could not be converted) is an image batch whose channel axis is on the
    wrong side for the model (its transpose runs), else ``None``."""
    try:
        arr = adapter.ops.to_numpy(doc)
    except Exception:  # noqa: BLE001 - not a tensor of this framework: maybe array-like
        try:
            arr = np.asarray(doc)
        except Exception:  # noqa: BLE001 - not array-like at all
            return None
    if arr.ndim != 4 or not np.issubdtype(arr.dtype, np.floating):
        return None
    if _runs(adapter, np.ascontiguousarray(arr[:1])):
        return None  # the failure is not the layout
    for perm, given in _TRANSPOSES.items():
        moved = np.ascontiguousarray(arr[:1].transpose(perm))
        if moved.shape == arr[:1].shape:
            continue
        if not _runs(adapter, moved):
            continue
        fix = f"np.transpose(x, {perm}) (torch: x.permute{perm})"
        return ExplanationError(
            f"{err}\nThe input of shape {arr.shape} looks {given} but the model takes its "
            f"transpose: pass {fix}."
        )
    return None


def _runs(adapter: Adapter, arr: np.ndarray) -> bool:
    """Whether the model runs on ``arr`` (a diagnosis: any failure means no)."""
    try:
        adapter.forward(adapter.as_batch(arr))
    except Exception:  # noqa: BLE001 - adapters wrap most errors, not every one
        return False
    return True
