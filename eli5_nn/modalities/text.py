"""Text: tokens, padding, per-token weights and eli5's weighted spans."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from eli5.base import DocWeightedSpans, FeatureWeight, FeatureWeights, WeightedSpans

from ..errors import Eli5NNTypeError, ExplanationError
from ..layout import sum_axis

TOP_TOKENS = 10


def per_doc_tokens(tokens: Any, n_docs: int, length: int, single: bool) -> list[list[str]] | None:
    """``tokens`` as one list of strings per doc (``None`` stays ``None``)."""
    if tokens is None:
        return None
    if isinstance(tokens, str):
        raise Eli5NNTypeError("tokens must be a list of strings (one per position), not one string")
    seq = list(tokens)
    nested = bool(seq) and all(isinstance(t, (list, tuple)) for t in seq)
    if not nested:
        if not single and n_docs != 1:
            raise ExplanationError(
                f"tokens is one list but there are {n_docs} docs; pass one list of tokens "
                "per doc"
            )
        seq = [seq]
    if len(seq) != n_docs:
        raise ExplanationError(f"tokens holds {len(seq)} lists for {n_docs} docs; pass one per doc")
    out = []
    for d, toks in enumerate(seq):
        if len(toks) != length:
            raise ExplanationError(
                f"tokens has {len(toks)} entries for doc {d}, but the token ids have "
                f"{length} positions; pass exactly one token per position (padding included)"
            )
        out.append([str(t) for t in toks])
    return out


def padding(
    ids: np.ndarray, tokens: list[list[str]] | None, pad_value: Any, pad_token: Any,
    layer_pad: int | None,
) -> tuple[int | None, np.ndarray]:
    """The padding id (if known) and the mask of real (non-padding) positions.

    Padding is ``pad_value``; else the id at the positions whose token is
    ``pad_token``; else the embedding layer's own padding id.
    """
    pad: int | None = None
    if pad_value is not None:
        if isinstance(pad_value, bool) or not isinstance(pad_value, (int, np.integer)):
            raise Eli5NNTypeError(f"pad_value must be an integer token id, got {pad_value!r}")
        pad = int(pad_value)
    elif pad_token is not None:
        if tokens is None:
            raise ExplanationError("pad_token= needs tokens=; or pass the padding id as pad_value=")
        mask = np.array([[t == str(pad_token) for t in toks] for toks in tokens])
        found = np.unique(ids[mask])
        if len(found) > 1:
            raise ExplanationError(
                f"the token {pad_token!r} stands for several ids {found.tolist()}; "
                "pass pad_value="
            )
        pad = int(found[0]) if len(found) else layer_pad
    else:
        pad = layer_pad
    real = np.ones(ids.shape, dtype=bool) if pad is None else ids != pad
    return pad, real


def documents(document: Any, n_docs: int) -> list[str | None]:
    """``document=`` as one original text (or ``None``) per doc."""
    if document is None:
        return [None] * n_docs
    if isinstance(document, str):
        if n_docs != 1:
            raise ExplanationError(f"document is one string but there are {n_docs} docs")
        return [document]
    docs = list(document)
    if len(docs) != n_docs or not all(isinstance(d, str) for d in docs):
        raise ExplanationError(f"document must be a string, or one string per doc ({n_docs})")
    return docs


def default_tokens(ids: np.ndarray) -> list[str]:
    """Token strings when none are given: the ids themselves."""
    return list(map(str, np.asarray(ids).tolist()))


def token_weights(attribution: np.ndarray, how: str) -> np.ndarray:
    """One signed weight per position from a (T, D) or (T,) attribution."""
    return token_weights_rows(np.asarray(attribution)[None], how)[0]


def token_weights_rows(attribution: np.ndarray, how: str) -> np.ndarray:
    """:func:`token_weights` of every row of an (R, T, D...) or (R, T) attribution:
    (R, T)."""
    a = np.asarray(attribution)
    if how == "token" or a.ndim == 2:
        return a.astype(np.float64, copy=False)
    flat = a.reshape(a.shape[0], a.shape[1], -1)
    # reduced in the attribution's own precision (a float32 sum over the embedding's
    # dimensions loses nothing a display shows), returned as float64
    if how == "norm":
        return np.sqrt(np.einsum("rtd,rtd->rt", flat, flat)).astype(np.float64)
    return sum_axis(flat, 2).astype(np.float64)


def resize_1d(m: np.ndarray, length: int) -> np.ndarray:
    """Linear interpolation of a temporal map onto ``length`` token positions."""
    return resize_rows(np.asarray(m).ravel()[None], length)[0]


def resize_rows(m: np.ndarray, length: int) -> np.ndarray:
    """:func:`resize_1d` of every row of an (R, L) array: (R, ``length``), linear
    interpolation between position centres (align-corners off), ends held."""
    m = np.asarray(m, dtype=np.float64)
    n = m.shape[1]
    if n == length:
        return m
    if n == 1:
        return np.repeat(m, length, axis=1)
    src = np.clip((np.arange(length) + 0.5) * n / length - 0.5, 0, n - 1)
    lo = np.floor(src).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    frac = src - lo
    return m[:, lo] * (1 - frac) + m[:, hi] * frac


@dataclass(frozen=True)
class DocSpans:
    """Where the real tokens of one doc sit in its text, and their feature names
    (one per occurrence, so eli5 does not divide a weight among equal tokens)."""

    document: str
    offsets: list[tuple[int, int]]
    names: list[str]


def doc_spans(tokens: Sequence[str], document: str | None = None) -> DocSpans:
    """The spans of ``tokens`` (the real positions only) in ``document``, or in the
    tokens joined by spaces when there is no document."""
    names = [f"{t} [{i}]" for i, t in enumerate(tokens)]
    if document is None:
        lens = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
        starts = np.concatenate([[0], np.cumsum(lens + 1)[:-1]]).astype(np.int64)
        offsets = list(zip(starts.tolist(), (starts + lens).tolist(), strict=True))
        return DocSpans(" ".join(tokens), offsets, names)
    offsets, pos = [], 0
    low = document.lower()
    for t in tokens:
        at = low.find(t.lower(), pos)
        if at < 0:
            raise ExplanationError(
                f"token {t!r} is not found in document= after offset {pos}; the tokens must "
                "appear in the document in order"
            )
        offsets.append((at, at + len(t)))
        pos = at + len(t)
    return DocSpans(document, offsets, names)


def spans(doc: DocSpans, weights: np.ndarray) -> WeightedSpans:
    """eli5 weighted spans: one per token occurrence with its signed weight."""
    w = np.asarray(weights, dtype=np.float64).tolist()
    return WeightedSpans(docs_weighted_spans=[DocWeightedSpans(
        document=doc.document, preserve_density=False,
        spans=[(n, [o], v) for n, o, v in zip(doc.names, doc.offsets, w, strict=True)],
    )])


def top_tokens(names: Sequence[str], weights: np.ndarray, top: int = TOP_TOKENS
               ) -> FeatureWeights:
    """The ``top`` tokens with the largest positive and negative weights."""
    w = np.asarray(weights, dtype=np.float64)
    order = np.argsort(-w, kind="stable")
    n_pos, n_neg = int((w > 0).sum()), int((w < 0).sum())
    pos = order[:min(top, n_pos)]
    neg = order[::-1][:min(top, n_neg)]
    return FeatureWeights(
        pos=[FeatureWeight(names[i], float(w[i])) for i in pos.tolist()],
        neg=[FeatureWeight(names[i], float(w[i])) for i in neg.tolist()],
        pos_remaining=max(0, n_pos - top), neg_remaining=max(0, n_neg - top),
    )


def weighted_spans(
    tokens: Sequence[str], weights: np.ndarray, document: str | None = None
) -> tuple[WeightedSpans, FeatureWeights]:
    """eli5 spans (one per token occurrence, unique feature names) and the top tokens.

    ``tokens`` and ``weights`` hold the real (non-padding) positions only.
    """
    doc = doc_spans(tokens, document)
    return spans(doc, weights), top_tokens(doc.names, weights)


def check_ids(ids: np.ndarray, vocab: int, layer_name: str) -> None:
    """Token ids must be integers within the embedding's vocabulary."""
    if not np.issubdtype(ids.dtype, np.integer):
        raise Eli5NNTypeError(
            f"token ids must be integers, got dtype {ids.dtype}; pass the ids as an int array "
            "(e.g. np.int64), not floats"
        )
    if ids.ndim != 2:
        raise ExplanationError(f"token ids must have shape (n_docs, n_tokens), got {ids.shape}")
    if ids.size and (ids.min() < 0 or ids.max() >= vocab):
        bad = ids[(ids < 0) | (ids >= vocab)]
        raise ExplanationError(
            f"token ids {sorted(set(bad.tolist()))[:5]} are outside the vocabulary of "
            f"embedding {layer_name!r} (ids 0..{vocab - 1}); map unknown words to the "
            "out-of-vocabulary id first"
        )
