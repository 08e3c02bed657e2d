"""Attention rollout (Abnar & Zuidema 2020): how much each input token reaches the
token the head reads, through every attention layer and its residual connection.

Written once against the adapter protocol: the adapter reads every attention
layer's weights (:meth:`~eli5_nn.adapters.base.Adapter.attention_weights`,
Hugging Face models switched to eager attention for the call), the rest is
small (tokens × tokens) arithmetic.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..adapters.base import LayerRef, Tensor
from ..errors import ExplanationError
from ..layout import Layout, square_grid
from .batching import forward_rows
from .context import MethodContext, MethodResult
from .registry import register

#: the weight of the identity (the residual connection) in each layer's matrix
RESIDUAL = 0.5


def outermost(found: Sequence[tuple[LayerRef, Tensor]]) -> list[tuple[LayerRef, Tensor]]:
    """The weights of the outermost attention layers only: a layer nested in another
    that also returned weights (a Hugging Face ``BertSelfAttention`` inside its
    ``BertAttention``) gives the same weights again."""
    names = {ref.name for ref, _ in found}
    return [
        (ref, w) for ref, w in found
        if not any(ref.name.startswith(outer + ".") for outer in names if outer != ref.name)
    ]


def head_mean(ref: LayerRef, weights: np.ndarray, n_docs: int) -> np.ndarray:
    """Layer ``ref``'s weights (N, heads, T, T) or (N, T, T) averaged over the heads:
    (N, T, T)."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim == 4:
        w = w.mean(axis=1)
    if w.ndim != 3 or w.shape[0] != n_docs or w.shape[1] != w.shape[2]:
        raise ExplanationError(
            f"attention-rollout needs every attention layer to attend over the whole token "
            f"sequence, with weights of shape (batch, heads, tokens, tokens); layer "
            f"{ref.name!r} ({ref.kind}) gave {tuple(np.shape(weights))} for {n_docs} doc(s) "
            "(windowed or pooled attention?). Use method='grad-cam' or "
            "'integrated-gradients' instead."
        )
    return w


def rollout(layers: Sequence[np.ndarray], residual: float = RESIDUAL) -> np.ndarray:
    """``R = A'_L ... A'_2 A'_1`` with ``A'_l = rownorm((1 - r) A_l + r I)``, per doc.

    ``layers`` holds each layer's head-averaged weights (N, T, T) in call order
    (rows: queries, columns: keys; each row sums to 1). Row ``i`` of the result
    (N, T, T) says how much each token reaches token ``i``'s representation at
    the last layer; its rows sum to 1.
    """
    result: np.ndarray | None = None
    for a in layers:
        eye = np.eye(a.shape[-1])
        mixed = (1.0 - residual) * a + residual * eye
        mixed = mixed / mixed.sum(axis=-1, keepdims=True)
        result = mixed if result is None else mixed @ result
    if result is None:
        raise ExplanationError("attention-rollout needs at least one attention layer")
    return result


def _weights(ctx: MethodContext) -> list[tuple[LayerRef, np.ndarray]]:
    adapter = ctx.adapter
    found = outermost(adapter.attention_weights(ctx.model_input))
    if not found:
        raise ExplanationError(
            f"{adapter.model_name()} has no attention layer whose weights can be read, so "
            "attention-rollout cannot apply (it multiplies the attention weights of every "
            "layer: torch.nn.MultiheadAttention, Hugging Face *Attention modules, Keras "
            "MultiHeadAttention). Use method='grad-cam' or 'integrated-gradients' instead."
        )
    n = ctx.n_docs if ctx.space is None else int(ctx.space.ids.shape[0])
    layers = [(ref, head_mean(ref, adapter.ops.to_numpy(w), n)) for ref, w in found]
    sizes = {w.shape[-1] for _, w in layers}
    if len(sizes) > 1:
        raise ExplanationError(
            f"attention-rollout multiplies the attention of every layer, but the layers of "
            f"{adapter.model_name()} attend over different numbers of tokens "
            f"({sorted(sizes)}); use method='grad-cam' instead"
        )
    return layers


def token_layout(ctx: MethodContext, last: LayerRef, n_tokens: int) -> Layout:
    """How the rollout row reads: text ``"T"``; for images the prefix tokens and the
    grid of the token sequence (``layout=``, else as the adapter states it for the
    attention layer's output, else a square grid after the stated prefix tokens)."""
    if ctx.space is not None:
        return Layout("T")
    stated: Layout | None = ctx.layer_layout
    if stated is None:
        try:
            stated = ctx.adapter.layer_layout(last, ctx.model_input)
        except ExplanationError:
            stated = None
    if stated is not None and stated.is_tokens:
        layout = Layout("T", stated.prefix_tokens, stated.grid)
    else:
        prefix = 1 if square_grid(n_tokens, 1) is not None else 0
        layout = Layout("T", prefix, square_grid(n_tokens, prefix))
    layout.check((n_tokens,), "the attention-rollout row")
    if layout.grid is None:
        raise ExplanationError(
            f"the {n_tokens} tokens of {ctx.adapter.model_name()} do not form an image grid; "
            "pass layout={'axes': 'NTC', 'prefix_tokens': ..., 'grid': (rows, cols)}"
        )
    return layout


def _query(ctx: MethodContext, layout: Layout) -> Any:
    """The row to read: ``query=``, else the class token (position 0) where the head
    reads one (as the adapter says, or prefix tokens lead an image's tokens), else
    the mean over the tokens' rows."""
    given = ctx.params.get("query")
    if given is not None:
        return given
    reads = getattr(ctx.adapter, "reads_class_token", None)
    known = reads() if callable(reads) else None
    if known is not None:
        return 0 if known else "mean"
    if ctx.space is None:
        return 0 if layout.prefix_tokens else "mean"
    return 0


def _rows(roll: np.ndarray, query: Any, real: np.ndarray) -> tuple[np.ndarray, str]:
    """Per doc the rollout row of ``query`` (T,), and how the description says it."""
    t = roll.shape[-1]
    if query == "mean":
        w = real / np.maximum(real.sum(axis=1, keepdims=True), 1)
        return np.einsum("nq,nqk->nk", w, roll), "the mean of the tokens' rollout rows"
    if not 0 <= int(query) < t:
        raise ExplanationError(f"query={query} is not a token position (0 to {t - 1})")
    what = "the class token's" if query == 0 else f"token {query}'s"
    return roll[:, int(query)], f"{what} rollout row (position {query})"


@register("attention-rollout", "Attention Rollout", space="token", text="token",
          params=("query",), requires="attention")
def attention_rollout(ctx: MethodContext) -> MethodResult:
    r"""Attention rollout (Abnar & Zuidema 2020, "Quantifying Attention Flow in
    Transformers", ACL, eq. 1).

    Per attention layer :math:`l` the weights are averaged over heads
    (:math:`A_l`), the residual connection is added as the identity and the
    rows renormalised, :math:`\tilde A_l = \mathrm{rownorm}(\frac12 A_l +
    \frac12 I)`, and the layers are multiplied from the first to the last:
    :math:`R = \tilde A_L \cdots \tilde A_1`. The attribution is row ``query``
    of :math:`R` over all tokens (default the class token, position 0, which
    the heads of ViT/DeiT and BERT-style classifiers read): non-negative,
    summing to 1. The same for every target (attention does not depend on the
    class). Images: the patch tokens on the layout's grid (prefix tokens
    dropped); text: one value per token (padding and special tokens left out).
    """
    scores, rows = forward_rows(ctx)
    layers = _weights(ctx)
    n_tokens = layers[0][1].shape[-1]
    layout = token_layout(ctx, layers[-1][0], n_tokens)
    if ctx.space is not None:
        real = ctx.space.real
        if real.shape[1] != n_tokens:
            raise ExplanationError(
                f"the attention layers attend over {n_tokens} tokens but the doc has "
                f"{real.shape[1]}; attention-rollout needs one attention position per token"
            )
    else:
        real = np.ones((ctx.n_docs, n_tokens), dtype=bool)
        real[:, :layout.prefix_tokens] = False
    per_doc, which = _rows(rollout([w for _, w in layers]), _query(ctx, layout), real)
    if layout.grid is not None:
        which += (f"; {layout.prefix_tokens} prefix token(s) dropped, the others on a "
                  + "×".join(map(str, layout.grid)) + " grid")
    return MethodResult(
        scores=scores, rows=rows,
        attribution=ctx.adapter.ops.asarray(per_doc[rows.doc], like=ctx.x),
        layout=layout,
        notes=[f"{which} over {len(layers)} attention layer(s) "
               f"({layers[0][0].name!r} to {layers[-1][0].name!r}), heads averaged, "
               f"residual as 0.5 I"],
    )
