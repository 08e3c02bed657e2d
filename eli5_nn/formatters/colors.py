"""Colormaps, overlays and colour bars (PIL and matplotlib colormaps only)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import matplotlib
import numpy as np
from matplotlib.colors import Colormap, LinearSegmentedColormap
from PIL import Image

from ..errors import Eli5NNTypeError, ExplanationError

#: diverging map for signed values, the colours of eli5's text highlighting:
#: red for evidence against the target, white at zero, green for evidence for it
SIGNED_COLORMAP = LinearSegmentedColormap.from_list(
    "eli5_nn_signed", [(0.0, "#d7191c"), (0.5, "#ffffff"), (1.0, "#1a9641")]
)
#: sequential map for unsigned values (eli5's own default)
UNSIGNED_COLORMAP = "viridis"

ColormapLike = str | Colormap | Callable[[np.ndarray], np.ndarray] | None


def get_colormap(colormap: ColormapLike, signed: bool) -> Callable[[np.ndarray], np.ndarray]:
    """A callable mapping values in [0, 1] to RGBA floats in [0, 1].

    ``colormap`` is a matplotlib colormap name, a ``Colormap``, any callable of
    that kind (as eli5's ``format_as_image`` takes) or ``None`` for the default:
    :data:`SIGNED_COLORMAP` for signed maps, viridis for unsigned ones. Signed
    values are passed as ``(v + 1) / 2``, so 0.5 is zero.
    """
    if colormap is None:
        return SIGNED_COLORMAP if signed else matplotlib.colormaps[UNSIGNED_COLORMAP]
    if isinstance(colormap, str):
        try:
            return matplotlib.colormaps[colormap]
        except KeyError:
            raise ExplanationError(
                f"unknown colormap {colormap!r}; pass a matplotlib colormap name such as "
                "'viridis' or 'RdBu_r', or a callable"
            ) from None
    if callable(colormap):
        return colormap
    raise Eli5NNTypeError(f"colormap must be a name, a matplotlib Colormap or a callable, got "
                    f"{type(colormap).__name__}")


def check_alpha(alpha_limit: Any) -> float:
    """Validate the overlay's maximum opacity (a number in [0, 1])."""
    if isinstance(alpha_limit, bool) or not isinstance(alpha_limit, (int, float, np.number)):
        raise Eli5NNTypeError(f"alpha_limit must be a number in [0, 1], got {alpha_limit!r}")
    value = float(alpha_limit)
    if not 0.0 <= value <= 1.0:
        raise ExplanationError(f"alpha_limit must be between 0 and 1, got {alpha_limit!r}")
    return value


def colorize(values: np.ndarray, signed: bool, cmap: Callable[[np.ndarray], np.ndarray],
             alpha_limit: float) -> np.ndarray:
    """RGBA uint8 array of a display map; opacity grows with ``|value|`` up to
    ``alpha_limit``, so weak values let the picture through."""
    v = np.asarray(values, dtype=np.float64)
    t = (np.clip(v, -1.0, 1.0) + 1.0) / 2.0 if signed else np.clip(v, 0.0, 1.0)
    rgba = np.array(cmap(t), dtype=np.float64, copy=True)
    if rgba.shape != (*v.shape, 4):
        raise ExplanationError(
            f"the colormap returned shape {rgba.shape}; expected {(*v.shape, 4)}"
        )
    rgba[..., 3] = alpha_limit * np.clip(np.abs(v), 0.0, 1.0)
    return np.asarray(np.rint(rgba * 255.0), dtype=np.uint8)


def resize_values(values: np.ndarray, size: tuple[int, int], resampling_filter: Any
                  ) -> np.ndarray:
    """Resize a 2-D float map to ``size`` = (width, height) with a PIL filter."""
    v = np.asarray(values, dtype=np.float32)
    if (v.shape[1], v.shape[0]) == tuple(size):
        return v.astype(np.float64)
    img = Image.fromarray(v, mode="F").resize(size, resample=resampling_filter)
    return np.asarray(img, dtype=np.float64)


def enlarge(image: Image.Image, factor: int) -> Image.Image:
    """``image`` enlarged ``factor`` times with nearest neighbour (pixels stay crisp)."""
    if factor == 1:
        return image
    return image.resize((image.width * factor, image.height * factor), Image.Resampling.NEAREST)


def is_grey(image: Image.Image) -> bool:
    """Whether ``image`` comes from a one-channel input (PIL modes L, LA, 1, I, F)."""
    return image.mode in ("L", "LA", "1", "I", "I;16", "F")


def outline(image: Image.Image, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray] | None:
    """The contour of the input's bright strokes at ``size`` = (width, height).

    The grey picture is resized smoothly and cut at half its range; returns the
    boolean masks of the pixels just inside and just outside that contour, or
    None for a flat picture.
    """
    grey = np.asarray(image.convert("L").resize(size, Image.Resampling.BILINEAR),
                      dtype=np.float64)
    lo, hi = float(grey.min()), float(grey.max())
    if hi - lo < 16:
        return None
    inside = grey > (lo + hi) / 2
    padded = np.pad(inside, 1, mode="edge")
    shifts = [padded[1:-1, :-2], padded[1:-1, 2:], padded[:-2, 1:-1], padded[2:, 1:-1]]
    eroded = inside & np.logical_and.reduce(shifts)
    dilated = inside | np.logical_or.reduce(shifts)
    return inside & ~eroded, dilated & ~inside


def overlay(image: Image.Image, values: np.ndarray, signed: bool,
            cmap: Callable[[np.ndarray], np.ndarray], alpha_limit: float,
            resampling_filter: Any, factor: int = 1, contour: bool = False) -> Image.Image:
    """The display map coloured and blended over ``image`` (RGBA).

    The picture is enlarged ``factor`` times first (nearest neighbour) and the
    map resized to it, so the heat stays smooth on small inputs. With
    ``contour``, the input's strokes are drawn on top as a thin dark line with
    a light halo, so the input stays visible under strong values.
    """
    base = enlarge(image, factor).convert("RGBA")
    v = resize_values(values, base.size, resampling_filter)
    heat = Image.fromarray(colorize(v, signed, cmap, alpha_limit), mode="RGBA")
    out = Image.alpha_composite(base, heat)
    lines = outline(image, base.size) if contour else None
    if lines is not None:
        arr = np.array(out)
        inner, outer = lines
        arr[inner, :3] = (arr[inner, :3] * 0.15 + 20).astype(np.uint8)
        arr[outer, :3] = (arr[outer, :3] * 0.3 + 178).astype(np.uint8)
        out = Image.fromarray(arr, mode="RGBA")
    return out


def colour_bar(length: int, thickness: int, signed: bool,
               cmap: Callable[[np.ndarray], np.ndarray], vertical: bool = False) -> Image.Image:
    """An opaque colour bar (RGB): low to high from left to right, or bottom to top."""
    ramp = np.linspace(-1.0 if signed else 0.0, 1.0, length)
    t = (ramp + 1.0) / 2.0 if signed else ramp
    rgb = np.asarray(np.rint(np.array(cmap(t))[:, :3] * 255.0), dtype=np.uint8)
    if vertical:
        arr = np.repeat(rgb[::-1, None, :], thickness, axis=1)
    else:
        arr = np.repeat(rgb[None, :, :], thickness, axis=0)
    return Image.fromarray(np.ascontiguousarray(arr), mode="RGB")


def format_number(value: float) -> str:
    """A short human form of a scale value (3 significant digits)."""
    if value == 0:
        return "0"
    return f"{value:.3g}"
