"""Contextual decomposition as an explanation method (PyTorch models).

Each token (text) or each block of a grid over the input (images; block size
``patch_size``) is decomposed on its own: its score is the relevant part of
the target's output when that unit is the relevant region (Murdoch et al.
2018; Singh et al. 2019). For every mask, relevant + irrelevant equals the
output; the units' scores need not add up to it (CD is not additive across
regions), so the description reports their sum beside the score.

The arithmetic lives in :mod:`eli5_nn.decomposition` (imported on use, so this
module stays free of any framework).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..adapters.base import ExplanationError, ModelInput, iter_chunks
from .batching import _progress, forward_rows
from .context import MethodContext, MethodResult
from .registry import register

GRID = 8


def _model(ctx: MethodContext) -> Any:
    if ctx.adapter.framework != "torch":
        raise ExplanationError(
            "method 'cd' (contextual decomposition) is implemented for PyTorch models only; "
            f"this is a {ctx.adapter.framework} model. Use e.g. 'integrated-gradients' or "
            "'occlusion' instead."
        )
    model = getattr(ctx.adapter, "model", None)  # the torch adapter keeps the module
    return model


def _patch(patch: Any, spatial: tuple[int, ...]) -> tuple[int, ...]:
    if patch is None:
        return tuple(max(1, -(-s // GRID)) for s in spatial)
    if isinstance(patch, (int, np.integer)) and not isinstance(patch, bool):
        size: tuple[Any, ...] = (int(patch),) * len(spatial)
    elif isinstance(patch, (tuple, list)) and len(patch) == len(spatial):
        size = tuple(patch)
    else:
        raise ValueError(
            f"patch_size must be a positive int or a tuple of {len(spatial)} ints (one per "
            f"spatial axis of the input {spatial}), got {patch!r}"
        )
    if not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1
               for s in size):
        raise ValueError(f"patch_size must hold positive integers, got {patch!r}")
    return tuple(int(s) for s in size)


def _blocks(spatial: tuple[int, ...], patch: tuple[int, ...]) -> np.ndarray:
    """The block number of every spatial cell (row-major over the block grid)."""
    grids = [(np.arange(s) // p) for s, p in zip(spatial, patch, strict=True)]
    counts = [-(-s // p) for s, p in zip(spatial, patch, strict=True)]
    ids = np.zeros(spatial, dtype=np.int64)
    for axis, (g, n_after) in enumerate(zip(grids, [int(np.prod(counts[i + 1:]))
                                                      for i in range(len(counts))],
                                            strict=True)):
        shape = [1] * len(spatial)
        shape[axis] = len(g)
        ids = ids + g.reshape(shape) * n_after
    return ids


@register("cd", "Contextual Decomposition", space="input", text="token",
          params=("patch_size",))
def contextual_decomposition(ctx: MethodContext) -> MethodResult:
    """CD score of each token (text) or each block of a grid (images).

    For unit ``u`` the relevant region is ``u`` alone and the attribution is
    the relevant part of the target's output. Images: every cell of a block
    holds the block's score divided by its number of input values, so the
    attribution summed over a block is that block's CD score.
    """
    import torch

    from ..decomposition import contextual_decomposition as decompose

    model = _model(ctx)
    scores, rows = forward_rows(ctx)
    space = ctx.space
    if space is not None:
        extra: tuple[Any, ...] = ()
        ids = space.inputs
        if isinstance(ids, ModelInput):
            if ids.keys is not None or ids.token != 0:
                raise ExplanationError(
                    "method 'cd' supports text models whose first positional input is the "
                    "token ids (extra inputs after it); pass a tuple (ids, ...)"
                )
            extra, ids = tuple(ids.values[1:]), ids.values[0]
        doc_of, pos_of = np.nonzero(space.real)
        n, t = space.ids.shape
        masks = np.zeros((len(doc_of), t), dtype=np.float32)
        masks[np.arange(len(doc_of)), pos_of] = 1.0
        out = np.zeros((n, t, scores.shape[1]))
        chunks = list(iter_chunks(len(doc_of), ctx.chunk_size(len(doc_of))))
        with torch.no_grad(), _progress(ctx, len(chunks), "CD") as bar:
            for sl in chunks:
                idx = torch.as_tensor(doc_of[sl], device=ids.device)
                rel, _ = decompose(model, ids[idx], torch.as_tensor(masks[sl]),
                                   extra_inputs=tuple(e[idx] for e in extra))
                out[doc_of[sl], pos_of[sl]] = rel.double().cpu().numpy()
                bar.update(1)
        per_row = ctx.sign * out[rows.doc, :, rows.cls]
        sums = per_row.sum(axis=1)
        return MethodResult(
            scores=scores, rows=rows,
            attribution=ctx.adapter.ops.asarray(per_row, like=ctx.x),
            notes=[_note(sums, ctx.sign * scores[rows.doc, rows.cls], "tokens")],
        )
    x = ctx.x
    shape = tuple(x.shape)
    spatial = shape[2:] if len(shape) >= 3 else shape[1:]
    channels = shape[1] if len(shape) >= 3 else 1
    patch = _patch(ctx.params.get("patch_size"), spatial)
    blocks = _blocks(spatial, patch)
    n_blocks = int(blocks.max()) + 1
    per_block = np.bincount(blocks.ravel(), minlength=n_blocks) * channels
    n = shape[0]
    doc_of = np.repeat(np.arange(n), n_blocks)
    blk_of = np.tile(np.arange(n_blocks), n)
    out = np.zeros((n, n_blocks, scores.shape[1]))
    chunks = list(iter_chunks(len(doc_of), ctx.chunk_size(len(doc_of))))
    onehot = torch.as_tensor(np.eye(n_blocks, dtype=np.float32)[:, blocks.ravel()])
    with torch.no_grad(), _progress(ctx, len(chunks), "CD") as bar:
        for sl in chunks:
            m = onehot[torch.as_tensor(blk_of[sl])].reshape(-1, *spatial)
            if len(shape) >= 3:
                m = m.unsqueeze(1).expand(-1, channels, *spatial)
            idx = torch.as_tensor(doc_of[sl], device=x.device)
            rel, _ = decompose(model, x[idx], m.to(device=x.device, dtype=x.dtype))
            out[doc_of[sl], blk_of[sl]] = rel.double().cpu().numpy()
            bar.update(1)
    block_scores = ctx.sign * out[rows.doc, :, rows.cls]  # (R, n_blocks)
    cells = (block_scores / per_block)[:, blocks]  # (R, *spatial)
    if len(shape) >= 3:
        cells = np.repeat(cells[:, None], channels, axis=1)
    sums = block_scores.sum(axis=1)
    size = "×".join(str(p) for p in patch)
    return MethodResult(
        scores=scores, rows=rows, attribution=ctx.adapter.ops.asarray(cells, like=x),
        notes=[f"patches of {size}", _note(sums, ctx.sign * scores[rows.doc, rows.cls],
                                           "patches")],
    )


def _note(sums: np.ndarray, logits: np.ndarray, what: str) -> str:
    return (f"CD score of each of the {what} on its own (relevant + irrelevant = the "
            f"output for every region); sum over {what} {sums[0]:.4g} vs score "
            f"{logits[0]:.4g} for the first row")
