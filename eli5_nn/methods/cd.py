"""Contextual decomposition as an explanation method.

Each token (text) or each block of a grid over the input (images; block size
``patch_size``) is decomposed on its own: its score is the relevant part of
the target's output when that unit is the relevant region (Murdoch et al.
2018; Singh et al. 2019). For every mask, relevant + irrelevant equals the
output; the units' scores need not add up to it (CD is not additive across
regions), so the description reports their sum beside the score.

The decomposition itself is the adapter's (:meth:`Adapter.decompose`;
PyTorch models only); this module only builds the masks, from the input's
layout and the shared patch grid (:mod:`eli5_nn.patches`).
"""

from __future__ import annotations

import numpy as np

from ..adapters.base import ModelInput
from ..errors import ExplanationError
from ..patches import DEFAULT_GRID, block_ids, patch_size
from .batching import chunked_map, forward_rows
from .context import MethodContext, MethodResult
from .registry import register


def _text(ctx: MethodContext, scores: np.ndarray) -> np.ndarray:
    """(N, T, C): the CD score of every real token of every doc."""
    space = ctx.space
    assert space is not None
    if isinstance(space.inputs, ModelInput) and (
        space.inputs.keys is not None or space.inputs.token != 0
    ):
        raise ExplanationError(
            "method 'cd' supports text models whose first positional input is the "
            "token ids (extra inputs after it); pass a tuple (ids, ...)"
        )
    doc_of, pos_of = np.nonzero(space.real)
    n, t = space.ids.shape
    masks = np.zeros((len(doc_of), t), dtype=np.float32)
    masks[np.arange(len(doc_of)), pos_of] = 1.0

    def decompose(sl: slice) -> np.ndarray:
        return ctx.adapter.decompose(space.model_input(ctx.adapter, doc_of[sl]), masks[sl])

    out = np.zeros((n, t, scores.shape[1]))
    if len(doc_of):
        out[doc_of, pos_of] = chunked_map(ctx, len(doc_of), decompose, "CD", forward_only=False)
    return out


def _image(ctx: MethodContext, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
    """(N, B, C) CD scores of the B blocks, the block of every map cell, and the
    block size; blocks cover the map axes of the input's layout."""
    layout = ctx.input_layout()
    row_shape = ctx.adapter.ops.shape(ctx.x)[1:]
    map_axes = layout.map_axes or tuple(range(len(row_shape)))
    map_shape = tuple(row_shape[i] for i in map_axes)
    patch = patch_size(ctx.params.get("patch_size"), map_shape, grid=DEFAULT_GRID)
    blocks = block_ids(map_shape, patch)
    n_blocks = int(blocks.max()) + 1
    n = ctx.n_docs
    doc_of, blk_of = np.repeat(np.arange(n), n_blocks), np.tile(np.arange(n_blocks), n)
    # a block's mask on a row: its cells, on every channel
    ch = layout.channel_axis if layout.map_axes else None
    expand = (lambda m: m) if ch is None else (lambda m: np.expand_dims(m, ch + 1))

    def decompose(sl: slice) -> np.ndarray:
        cells = (blocks[None] == blk_of[sl].reshape(-1, *([1] * len(map_shape))))
        masks = np.broadcast_to(expand(cells), (len(cells), *row_shape)).astype(np.float32)
        return ctx.adapter.decompose(ctx.adapter.ops.take(ctx.x, doc_of[sl]), masks)

    out = chunked_map(ctx, len(doc_of), decompose, "CD", forward_only=False)
    return out.reshape(n, n_blocks, -1), blocks, "×".join(str(p) for p in patch)


@register("cd", "Contextual Decomposition", space="input", text="token",
          params=("patch_size",))
def contextual_decomposition(ctx: MethodContext) -> MethodResult:
    """CD score of each token (text) or each block of a grid (images).

    For unit ``u`` the relevant region is ``u`` alone and the attribution is
    the relevant part of the target's output. Images: every cell of a block
    holds the block's score divided by its number of input values, so the
    attribution summed over a block is that block's CD score.
    """
    scores, rows = forward_rows(ctx)
    logits = ctx.sign * scores[rows.doc, rows.cls]
    if ctx.space is not None:
        per_row = ctx.sign * _text(ctx, scores)[rows.doc, :, rows.cls]
        return MethodResult(
            scores=scores, rows=rows,
            attribution=ctx.adapter.ops.asarray(per_row, like=ctx.x),
            notes=[_note(per_row.sum(axis=1), logits, "tokens")],
        )
    out, blocks, size = _image(ctx, scores)
    block_scores = ctx.sign * out[rows.doc, :, rows.cls]  # (R, n_blocks)
    row_shape = ctx.adapter.ops.shape(ctx.x)[1:]
    n_channels = int(np.prod(row_shape)) // blocks.size
    per_block = np.bincount(blocks.ravel(), minlength=block_scores.shape[1]) * n_channels
    cells = (block_scores / per_block)[:, blocks]  # (R, *map)
    layout = ctx.input_layout()
    if layout.map_axes and layout.channel_axis is not None:
        cells = np.broadcast_to(
            np.expand_dims(cells, layout.channel_axis + 1), (len(cells), *row_shape)
        )
    return MethodResult(
        scores=scores, rows=rows,
        attribution=ctx.adapter.ops.asarray(np.array(cells), like=ctx.x),  # a writable copy
        notes=[f"patches of {size}", _note(block_scores.sum(axis=1), logits, "patches")],
    )


def _note(sums: np.ndarray, logits: np.ndarray, what: str) -> str:
    return (f"CD score of each of the {what} on its own (relevant + irrelevant = the "
            f"output for every region); sum over {what} {sums[0]:.4g} vs score "
            f"{logits[0]:.4g} for the first row")
