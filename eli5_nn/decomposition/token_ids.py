"""Token ids as they travel through a decomposition: the ids with the mask of
the relevant positions, until an embedding turns them into parts."""

from __future__ import annotations

from typing import Any

import torch

from .parts import Parts


class TokenIds:
    """Token ids entering the model, with the relevant mask per position."""

    def __init__(self, ids: torch.Tensor, mask: torch.Tensor) -> None:
        self.ids = ids
        self.mask = mask


def plain_value(value: Any) -> Any:
    """``value``, or the plain id tensor when it is :class:`TokenIds`."""
    if isinstance(value, TokenIds):
        return value.ids
    return value


def plain(value: Any) -> Any:
    """``value`` with token ids replaced by the plain id tensor (nested)."""
    if isinstance(value, (tuple, list)):
        return type(value)(plain(v) for v in value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return plain_value(value)


def embed(e: torch.Tensor, mask: torch.Tensor) -> Parts:
    """Split embeddings ``e`` by the position mask: relevant where it is 1."""
    m = mask.to(e.dtype).reshape(*mask.shape, *([1] * (e.dim() - mask.dim())))
    rel = e * m
    return Parts(rel, e - rel)
