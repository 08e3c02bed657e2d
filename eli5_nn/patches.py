"""The patch grid: blocks of ``patch_size`` over a map (rank 2, numpy only).

Contextual decomposition (``method="cd"``, :mod:`eli5_nn.decomposition.acd`)
and the deletion / insertion metrics split a spatial map (or a token axis)
into blocks and number them row-major over the block grid. Written once here.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from .errors import ExplanationError

#: blocks per axis when no patch size is given and a coarse grid is wanted
DEFAULT_GRID = 8


def _is_positive_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool) and int(v) >= 1


def patch_size(
    patch: Any, map_shape: tuple[int, ...], *, grid: int | None = None,
    name: str = "patch_size",
) -> tuple[int, ...]:
    """One block size per axis of ``map_shape``.

    ``patch`` is an int (the same on every axis) or one int per axis. ``None``
    gives single cells (``grid=None``) or blocks that cut every axis into
    ``grid`` parts (``grid=8``: an 8×8 grid over an image).

    Raises
    ------
    ExplanationError
        When ``patch`` is neither a positive int nor one positive int per axis.
    """
    n = len(map_shape)
    if patch is None:
        if grid is None:
            return (1,) * n
        return tuple(max(1, -(-int(s) // grid)) for s in map_shape)
    if _is_positive_int(patch):
        return (int(patch),) * n
    if isinstance(patch, (tuple, list, np.ndarray)) and len(patch) == n and all(
        _is_positive_int(p) for p in patch
    ):
        return tuple(int(p) for p in patch)
    raise ExplanationError(
        f"{name} must be a positive int or {n} positive ints (one per axis of the map "
        f"{tuple(map_shape)}), got {patch!r}"
    )


def grid_shape(map_shape: tuple[int, ...], patch: tuple[int, ...]) -> tuple[int, ...]:
    """The number of blocks along each axis (the last block of an axis may be smaller)."""
    return tuple(-(-int(s) // int(p)) for s, p in zip(map_shape, patch, strict=True))


def block_ids(map_shape: tuple[int, ...], patch: tuple[int, ...]) -> np.ndarray:
    """The block number of every cell of the map (int64, ``map_shape``), row-major
    over the block grid."""
    coords = tuple(g // p for g, p in zip(np.indices(map_shape), patch, strict=True))
    return np.ravel_multi_index(coords, grid_shape(map_shape, patch)).astype(np.int64)


__all__ = ["DEFAULT_GRID", "block_ids", "grid_shape", "patch_size"]
