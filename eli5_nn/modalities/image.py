"""Images: the picture of an input, maps resized to it, display normalisation.

Display decisions live here, not in the methods: methods return raw signed
attributions and this module turns them into heatmaps in [0, 1].
"""

from __future__ import annotations

import io
from base64 import b64encode
from typing import Any

import attr
import numpy as np
from PIL import Image

from ..errors import Eli5NNTypeError, ExplanationError


class EmbeddedImage(Image.Image):
    """A PIL image that eli5's ``format_as_dict`` turns into JSON-ready data.

    It behaves as any ``PIL.Image.Image``; ``attr.asdict`` (used by
    ``eli5.format_as_dict``) sees its mode, size and a base64 PNG.
    """

    @classmethod
    def from_pil(cls, image: Image.Image) -> EmbeddedImage:
        """A copy of ``image`` as an :class:`EmbeddedImage`."""
        new = cls()
        new.__dict__.update(image.copy().__dict__)
        return new

    @property
    def png_base64(self) -> str:
        """The image as base64-encoded PNG."""
        buf = io.BytesIO()
        Image.Image.copy(self).save(buf, format="PNG")
        return b64encode(buf.getvalue()).decode("ascii")

    @property
    def image_mode(self) -> str:
        """The PIL mode."""
        return str(self.mode)

    @property
    def image_size(self) -> tuple[int, int]:
        """(width, height)."""
        return (int(self.size[0]), int(self.size[1]))


attr.s(
    these={
        "image_mode": attr.ib(),
        "image_size": attr.ib(),
        "png_base64": attr.ib(),
    },
    init=False, repr=False, eq=False, hash=False, slots=False,
)(EmbeddedImage)


def as_image(image: Any) -> EmbeddedImage:
    """Validate the user's ``image=`` (a PIL image) and copy it."""
    if not isinstance(image, Image.Image):
        raise Eli5NNTypeError(
            f"image must be a PIL.Image.Image (e.g. PIL.Image.open(path)), got "
            f"{type(image).__name__}"
        )
    return EmbeddedImage.from_pil(image)


def rescale_note(lo: float, hi: float) -> str | None:
    """What the description says when an input with values in [lo, hi] is drawn:
    [0, 1] and [0, 255] are drawn as they are, anything else is min-max rescaled."""
    if lo >= 0.0 and hi <= 255.0:
        return None
    return "the image was rescaled from a normalised input; pass image= for the original picture"


def image_from_input(x: np.ndarray, channel_axis: int) -> tuple[EmbeddedImage, str | None]:
    """A picture of one input (C, H, W) or (H, W, C) and a note if it was rescaled.

    Values in [0, 1] are scaled by 255, values in [0, 255] are kept; anything
    else (normalised inputs) is min-max rescaled, with a note suggesting ``image=``.
    """
    arr = np.moveaxis(np.asarray(x, dtype=np.float32), channel_axis, -1)
    c = arr.shape[-1]
    if c not in (1, 3, 4):
        arr = arr.mean(axis=-1, keepdims=True)
        c = 1
    lo, hi = float(arr.min()), float(arr.max())
    note = rescale_note(lo, hi)
    if lo >= 0.0 and hi <= 1.0:
        arr = arr * 255.0
    elif note is not None:
        arr = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
    data = np.clip(arr + 0.5, 0, 255).astype(np.uint8)  # rounds: values are >= 0
    if c == 1:
        pil = Image.fromarray(data[..., 0], mode="L")
    else:
        pil = Image.fromarray(data, mode="RGB" if c == 3 else "RGBA")
    return EmbeddedImage.from_pil(pil), note


def check_resizable(shape: tuple[int, ...], size: tuple[int, ...]) -> None:
    """Raise where :func:`resize_map` cannot bring a map of ``shape`` to ``size``."""
    if tuple(shape) != tuple(size) and not (len(shape) == len(size) and len(size) in (1, 2)):
        raise ExplanationError(f"cannot resize a map of shape {tuple(shape)} to {size}")


def resize_map(m: np.ndarray, size: tuple[int, ...]) -> np.ndarray:
    """Bilinear resize of a 1-D or 2-D map to ``size`` (align-corners off)."""
    m = np.asarray(m, dtype=np.float64)
    check_resizable(m.shape, size)
    if m.shape == tuple(size):
        return m
    if m.ndim == 1:
        src = (np.arange(size[0]) + 0.5) * m.shape[0] / size[0] - 0.5
        return np.interp(src, np.arange(m.shape[0]), m)
    img = Image.fromarray(m.astype(np.float32), mode="F")
    out = img.resize((int(size[1]), int(size[0])), Image.Resampling.BILINEAR)
    return np.asarray(out, dtype=np.float64)


def normalise(m: np.ndarray) -> np.ndarray:
    """Divide a non-negative map by its maximum; an all-zero map stays zero."""
    return normalise_rows(np.asarray(m, dtype=np.float64)[None])[0]


def normalise_rows(m: np.ndarray, keep: np.ndarray | None = None) -> np.ndarray:
    """:func:`normalise` applied to every row ``m[i]`` at once; where ``keep`` (a
    boolean mask of ``m``'s shape) is given, the maxima are taken over the kept
    entries only and the others are set to zero."""
    m = np.asarray(m, dtype=np.float64)
    if keep is not None:
        m = np.where(keep, m, 0.0)
    if not np.isfinite(m).all():
        m = np.nan_to_num(m, nan=0.0, posinf=0.0, neginf=0.0)
    m = np.maximum(m, 0.0)
    if m.size == 0:
        return m
    top = m.reshape(m.shape[0], -1).max(axis=1).reshape((-1,) + (1,) * (m.ndim - 1))
    return np.divide(m, top, out=np.zeros_like(m), where=top > 0)


def reduce_channels(
    attribution: np.ndarray, channel_axis: int | None, reduce: str, relu: bool | None
) -> np.ndarray:
    """An unsigned map from a signed attribution (channels reduced).

    ``relu=True`` keeps the positive part of the channel sum (evidence for the
    target); otherwise ``reduce`` is ``"max-abs"`` or ``"sum-abs"``.
    """
    a = np.asarray(attribution, dtype=np.float64)
    if channel_axis is None:
        return np.clip(a, 0.0, None) if relu else np.abs(a)
    if relu:
        return np.clip(a.sum(axis=channel_axis), 0.0, None)
    if reduce == "max-abs":
        return np.abs(a).max(axis=channel_axis)
    return np.abs(a).sum(axis=channel_axis)


def region_sums(m: np.ndarray, input_size: tuple[int, ...], grid: int = 4
                ) -> list[tuple[str, float]]:
    """Signed sums of a map over a grid of regions, named in input coordinates."""
    m = np.asarray(m, dtype=np.float64)
    if m.ndim not in (1, 2):
        return []
    out = []
    splits = [np.array_split(np.arange(n), min(grid, n)) for n in m.shape]
    scale = [s / n for s, n in zip(input_size, m.shape, strict=True)]
    if m.ndim == 1:
        for idx in splits[0]:
            lo, hi = int(idx[0] * scale[0]), int(np.ceil((idx[-1] + 1) * scale[0])) - 1
            out.append((f"positions {lo}-{hi}", float(m[idx].sum())))
        return out
    for ri in splits[0]:
        for ci in splits[1]:
            r0, r1 = int(ri[0] * scale[0]), int(np.ceil((ri[-1] + 1) * scale[0])) - 1
            c0, c1 = int(ci[0] * scale[1]), int(np.ceil((ci[-1] + 1) * scale[1])) - 1
            out.append(
                (f"region rows {r0}-{r1}, cols {c0}-{c1}", float(m[np.ix_(ri, ci)].sum()))
            )
    return out
