"""Methods that exist only for text models: occlusion and attention weights.

Both give one value per token position directly (``text="token"``). The
gradient family and Grad-CAM serve text too, through the embedding space of
:class:`~eli5_nn.methods.context.EmbeddingSpace`.
"""

from __future__ import annotations

import numpy as np

from ..errors import ExplanationError
from .batching import chunked_map, forward_rows
from .context import EmbeddingSpace, MethodContext, MethodResult
from .registry import register


def _text_space(ctx: MethodContext, method: str) -> EmbeddingSpace:
    if ctx.space is None:
        raise ExplanationError(
            f"method {method!r} applies to text models (token ids in, an embedding layer "
            "inside); this input is not token ids"
        )
    return ctx.space


@register("occlusion", "Occlusion", space="token", text="token", image=False)
def occlusion(ctx: MethodContext) -> MethodResult:
    """The score drop when one token is replaced by padding: ``f(x) - f(x with t := pad)``.

    Every (doc, position) variant runs in batched forward passes; padding
    positions get 0. For a model whose score is a sum of per-token terms it is
    exactly each token's term minus the padding's.
    """
    space = _text_space(ctx, "occlusion")
    if space.pad_id is None:
        raise ExplanationError(
            "occlusion replaces each token by padding: pass pad_value= (the padding id) or "
            "pad_token= with tokens="
        )
    adapter = ctx.adapter
    scores, rows = forward_rows(ctx)
    doc_of, pos_of = np.nonzero(space.real)
    variants = space.ids[doc_of].copy()
    variants[np.arange(len(doc_of)), pos_of] = space.pad_id
    n, t = space.ids.shape

    def score_drop(sl: slice) -> np.ndarray:
        out = adapter.forward(space.with_ids(adapter, doc_of[sl], variants[sl]))
        return scores[doc_of[sl]] - out

    drop = np.zeros((n, t, scores.shape[1]), dtype=np.float64)
    if len(doc_of):
        drop[doc_of, pos_of] = chunked_map(ctx, len(doc_of), score_drop, "Occlusion")
    per_row = ctx.sign * drop[rows.doc, :, rows.cls]
    return MethodResult(
        scores=scores, rows=rows, attribution=adapter.ops.asarray(per_row, like=ctx.x),
        notes=[f"each token replaced by padding id {space.pad_id}"],
    )


@register("attention", "Attention", space="token", text="token", image=False,
          params=("layer",), requires="attention")
def attention(ctx: MethodContext) -> MethodResult:
    """The model's own attention weights over the tokens.

    Read from the attention layer closest to the output (or ``layer=``): for
    weights over (queries, keys) the attention each key token receives,
    averaged over queries (and heads); padding positions get 0. The same for
    every target: attention does not depend on the class.
    """
    space = _text_space(ctx, "attention")
    adapter = ctx.adapter
    scores, rows = forward_rows(ctx)
    found = adapter.attention_weights(space.inputs)
    if not found:
        raise ExplanationError(
            f"{adapter.model_name()} has no attention layer whose weights can be read "
            "(torch.nn.MultiheadAttention, Keras Attention/MultiHeadAttention, or a layer "
            "named *Attention* returning (output, weights)); use another method, e.g. "
            "'integrated-gradients' or 'occlusion'"
        )
    name = ctx.params.get("layer")
    if name is not None:
        ref = adapter.find_layer(name)
        found = [(r, w) for r, w in found if r == ref]
        if not found:
            raise ExplanationError(f"layer {ref.name!r} returned no attention weights")
    ref, weights = found[-1]
    w = np.asarray(adapter.ops.to_numpy(weights), dtype=np.float64)
    n, t = space.ids.shape
    if w.ndim >= 2 and w.shape[-1] == 1 and w.shape[-2] == t:
        w = w[..., 0]
    if w.shape[0] != n or w.shape[-1] != t:
        raise ExplanationError(
            f"attention layer {ref.name!r} gave weights of shape {w.shape}; expected "
            f"(batch, ..., {t}) over the {t} tokens"
        )
    per_doc = w.reshape(n, -1, t).mean(axis=1) * space.real
    return MethodResult(
        scores=scores, rows=rows,
        attribution=adapter.ops.asarray(per_doc[rows.doc], like=ctx.x),
        notes=[f"weights of attention layer {ref.name!r} ({ref.kind})"],
    )
