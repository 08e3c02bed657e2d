"""Contextual decomposition through the torch adapter (:meth:`TorchAdapter.decompose`).

The decomposition itself lives in :mod:`eli5_nn.decomposition`; this module
only places the masks on the model's device and runs it without a graph.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ..decomposition.cd import contextual_decomposition
from ..errors import ExplanationError
from .base import ModelInput


def decompose(model: nn.Module, x: Any, masks: np.ndarray) -> np.ndarray:
    """For each row ``i`` of ``x`` the relevant part (C,) of the model's scores when
    ``masks[i]`` (the shape of a row of ``x``, or (T,) for token ids) marks the
    relevant region; (N, C) float64.

    ``x`` is a float tensor, a token-id tensor, or a :class:`ModelInput` whose
    first positional input is the token ids (further inputs follow it).
    """
    extra: tuple[Any, ...] = ()
    if isinstance(x, ModelInput):
        if x.keys is not None or x.token != 0:
            raise ExplanationError(
                "method 'cd' supports text models whose first positional input is the "
                "token ids (extra inputs after it); pass a tuple (ids, ...)"
            )
        extra, x = tuple(x.values[1:]), x.values[0]
    masks = np.asarray(masks)
    if masks.shape[0] != x.shape[0] or masks.shape[1:] != tuple(x.shape[1:]):
        raise ExplanationError(
            f"CD masks of shape {masks.shape} do not match the input rows of shape "
            f"{tuple(x.shape)}: one mask per row, shaped as the row"
        )
    dtype = x.dtype if x.is_floating_point() else torch.float32
    if x.is_floating_point() and x.shape[0] > 1 and torch.equal(x, x[:1].expand_as(x)):
        # one input repeated with many masks (a CD map of one image): broadcast
        # it, and the decomposition carries the activations once for all rows
        x = x[:1].expand_as(x)
    with torch.no_grad():
        m = torch.as_tensor(masks, dtype=dtype, device=x.device)
        relevant, _ = contextual_decomposition(model, x, m, extra_inputs=extra)
    return relevant.double().cpu().numpy().reshape(x.shape[0], -1)


__all__ = ["decompose"]
