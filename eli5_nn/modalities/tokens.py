"""Token ids: methods work in the embedding space; results are eli5 weighted spans.

:class:`TokenInput` checks the ids against the model's embedding, finds the
tokens and the padding, and gives the methods the embedding output
(:class:`EmbeddingSpace`); it turns every attribution row into one signed
weight per real token.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..adapters.base import Adapter, LayerRef, ModelInput, Tensor
from ..errors import ExplanationError
from ..layout import Layout
from ..results import Lazy, NNExplanation, NNTargetExplanation, Once, joined, realise
from . import text as text_mod
from .base import (
    MethodTraits,
    Prepared,
    RowMaps,
    attribution_layout,
    check_single,
)
from .image import normalise_rows


@dataclass
class EmbeddingSpace:
    """Text models: the methods' input is the output of the token embedding.

    ``inputs`` is the model input of every doc (token ids, or a
    :class:`~eli5_nn.adapters.base.ModelInput` with the extra inputs); a pass
    over embedding rows runs the model on the docs those rows come from with
    the embedding layer's output replaced by the rows. ``real`` marks the
    non-padding positions (N, T); ``pad_id`` is the padding id, if known.
    """

    inputs: Tensor
    layer: LayerRef
    ids: np.ndarray
    real: np.ndarray
    pad_id: int | None = None

    def model_input(self, adapter: Adapter, docs: np.ndarray) -> Tensor:
        """The model input of ``docs`` (in order, repeats allowed)."""
        if isinstance(self.inputs, ModelInput):
            return self.inputs.rows(adapter.ops, docs)
        return adapter.ops.take(self.inputs, docs)

    def with_ids(self, adapter: Adapter, docs: np.ndarray, ids: np.ndarray) -> Tensor:
        """The model input of ``docs`` with the token ids replaced by ``ids``."""
        base = self.model_input(adapter, docs)
        if isinstance(base, ModelInput):
            new = adapter.ops.asarray(ids, like=base.ids)
            values = list(base.values)
            values[base.token] = new
            return ModelInput(tuple(values), base.keys, base.token)
        return adapter.ops.asarray(ids, like=base)


#: a tokenizer as the pipeline hands it over: one row of ids → (tokens, special-token mask)
Speller = Callable[[np.ndarray], tuple[list[str], np.ndarray]]


def _spelled(tokenizer: Speller, ids: np.ndarray) -> tuple[list[list[str]], np.ndarray]:
    """The tokens of every doc as the tokenizer spells them (word pieces as such) and
    the mask of special tokens ([CLS], [SEP], <s>, padding...), never highlighted."""
    spelled = [tokenizer(row) for row in ids]
    return [t for t, _ in spelled], np.stack([np.asarray(m, dtype=bool) for _, m in spelled])


def is_token_input(adapter: Adapter, model_in: Any, tokens: Any) -> bool:
    """Token ids: tokens given, several inputs, or (N, T) input to a model with an
    embedding layer (float ids are then refused with a clear message), or (N, T)
    integer input (a model without an embedding is then told so)."""
    if tokens is not None or isinstance(model_in, ModelInput):
        return True
    if len(adapter.ops.shape(model_in)) != 2:
        return False  # token ids are (n_docs, n_tokens)
    if adapter.embedding_layers():
        return True
    return len(adapter.ops.shape(model_in)) == 2 and not adapter.is_floating(model_in)


class TokenInput:
    """Token ids (N, T) (or a :class:`ModelInput` holding them) of a text model."""

    def __init__(self, adapter: Adapter, model_in: Any, single: bool, *, tokens: Any = None,
                 pad_value: Any = None, pad_token: Any = None, document: Any = None,
                 tokenizer: Speller | None = None) -> None:
        embeddings = adapter.embedding_layers()
        if not embeddings:
            raise ExplanationError(
                f"the input looks like token ids, but {adapter.model_name()} has no embedding "
                "layer (torch.nn.Embedding / keras.layers.Embedding) to attribute to. For an "
                "image model pass floating-point input."
            )
        emb, self.vocab, layer_pad = embeddings[0]
        ids_t = model_in.ids if isinstance(model_in, ModelInput) else model_in
        ids = adapter.ops.to_numpy(ids_t)
        text_mod.check_ids(ids, self.vocab, emb.name)
        check_single(single, ids.shape[0], ids.shape)
        self.adapter, self.model_input = adapter, model_in
        self.n_docs, self.length = ids.shape
        special = np.zeros(ids.shape, dtype=bool)
        if tokenizer is not None:
            if tokens is not None:
                raise ExplanationError("pass tokens= or tokenizer=, not both")
            tokens, special = _spelled(tokenizer, ids)
        toks = text_mod.per_doc_tokens(tokens, self.n_docs, self.length, single)
        pad, real = text_mod.padding(ids, toks, pad_value, pad_token, layer_pad)
        real &= ~special
        self.n_special = int(special.sum())
        #: the given tokens of every doc (``None``: the ids are spelled when first needed)
        self.tokens = toks
        self.documents = text_mod.documents(document, self.n_docs)
        self.space = EmbeddingSpace(inputs=model_in, layer=emb, ids=ids, real=real, pad_id=pad)
        #: what the results need once the model has run (built when first read)
        self.results = TokenResults(ids, real, self.length, toks, self.documents)
        self._kept: list[int] | None = None
        if document is not None:  # tokens not found in a document fail now, not when read
            for d in range(self.n_docs):
                self.results.doc(d)()

    @staticmethod
    def accepts(spec: MethodTraits) -> bool:
        """Whether ``spec`` applies to text models."""
        return bool(spec.text)

    @staticmethod
    def refuse(spec: MethodTraits, valid: list[str]) -> ExplanationError:
        """The error for a method that does not apply to text models."""
        return ExplanationError(
            f"method {spec.key!r} does not apply to text models; use one of {sorted(valid)}"
        )

    def _embed(self, ids: np.ndarray) -> Tensor:
        space = self.space
        docs = np.arange(self.n_docs)
        outs = self.adapter.activations(
            space.with_ids(self.adapter, docs, ids), [space.layer], first_only=True
        )[space.layer]
        if not outs:
            raise ExplanationError(
                f"embedding layer {space.layer.name!r} is not called in the model's forward pass"
            )
        return outs[0]

    def prepare(self, spec: MethodTraits, params: dict[str, Any], layout: Layout | None
                ) -> Prepared:
        """The embedding output of every doc; for a method taking ``baseline``, the
        baseline in embedding space (the padding embedding by default)."""
        space = self.space
        x = self._embed(space.ids)
        if layout is None:
            layout = self.adapter.layer_layout(space.layer, self.model_input)
        layout.check(tuple(self.adapter.ops.shape(x)[1:]), "the embedding output")
        prepared = Prepared(x=x, layout=layout, space=space)
        if "baseline" in spec.params:
            self._baseline(params.get("baseline"), prepared)
        return prepared

    def _baseline(self, baseline: Any, prepared: Prepared) -> None:
        pad = self.space.pad_id
        if baseline is None:
            if pad is not None:
                prepared.baseline = self._embed(np.full_like(self.space.ids, pad))
                prepared.notes.append(
                    f"baseline: the padding embedding (id {pad}) at every position as the "
                    f"output of layer {self.space.layer.name!r}; what the model adds later "
                    "(positions, segments, attention mask) as for the doc"
                )
            else:
                prepared.notes.append(
                    "baseline: zero embedding (no padding id known; pass pad_value=)"
                )
        elif np.issubdtype(np.asarray(baseline).dtype, np.integer):
            b_ids = np.broadcast_to(np.asarray(baseline), self.space.ids.shape).copy()
            text_mod.check_ids(b_ids, self.vocab, self.space.layer.name)
            prepared.baseline = self._embed(b_ids)
            prepared.notes.append(
                f"baseline: the embedding of the given ids as the output of layer "
                f"{self.space.layer.name!r}; what the model adds later as for the doc"
            )

    @staticmethod
    def attribution_layout(spec: MethodTraits, prepared: Prepared,
                           layer_layout: Layout | None) -> Layout:
        """The CAM layer's layout; ``"T"`` for one value per token; else the
        embedding output's (tokens × dimensions)."""
        if spec.space != "layer" and spec.text == "token":
            return Layout("T")
        return attribution_layout(spec, prepared, layer_layout)

    def maps(self, spec: MethodTraits, rows: np.ndarray, layout: Layout, docs: np.ndarray,
             relu: bool | None, display: np.ndarray | None) -> list[RowMaps]:
        """:meth:`TokenResults.maps`."""
        return self.results.maps(spec, rows, layout, docs, relu, display)

    def target(self, d: int, maps: RowMaps, base: NNTargetExplanation) -> NNTargetExplanation:
        """:meth:`TokenResults.target`."""
        return self.results.target(d, maps, base)

    def explanation(self, d: int, targets: list[NNTargetExplanation] | Lazy,
                    description: str | Lazy, estimator: str, method: str) -> NNExplanation:
        if self._kept is None:
            self._kept = self.space.real.sum(axis=1).tolist()
        kept = self._kept[d]
        left_out = "padding and special tokens" if self.n_special else "padding"
        return NNExplanation(
            estimator=estimator, method=method, targets=targets,
            description=joined(description, f" Tokens: {kept} of {self.length} positions "
                               f"({left_out} left out)."),
        )

    def display_size(self) -> tuple[int, ...]:
        """None for text (one weight per token)."""
        return ()


class TokenResults:
    """What the results of a text call need once the model has run: the ids, the
    mask of real tokens, the given tokens and documents (no model, adapter or model
    input, so results that are built when first read keep none of them alive).

    The pipeline builds a call's targets through it when they are first read
    (:meth:`maps` for all rows at once, then :meth:`target` per row)."""

    def __init__(self, ids: np.ndarray, real: np.ndarray, length: int,
                 tokens: list[list[str]] | None, documents: list[str | None]) -> None:
        self.ids, self.real, self.length = ids, real, length
        self.tokens, self.documents = tokens, documents
        self._docs: dict[int, Callable[[], text_mod.DocSpans]] = {}

    def maps(self, spec: MethodTraits, rows: np.ndarray, layout: Layout, docs: np.ndarray,
             relu: bool | None, display: np.ndarray | None) -> list[RowMaps]:
        """One signed weight per real token: a CAM resized to the positions, or the
        embedding attribution reduced as the method says (``spec.text``); built for
        all rows at once."""
        keep = self.real[docs]
        if spec.space == "layer":
            cams = layout.channel_sums(rows)
            signed = text_mod.resize_rows(cams.reshape(len(rows), -1), self.length)
            use_relu = True if relu is None else relu
        else:
            signed = text_mod.token_weights_rows(rows, spec.text)
            use_relu = bool(relu)
        shown = np.clip(signed, 0, None) if use_relu else np.abs(signed)
        heat = normalise_rows(shown, keep)
        # every row's kept positions in one boolean index, then split into rows (views)
        ends = np.cumsum(keep.sum(axis=1)).tolist()
        flat_signed, flat_heat = signed[keep], heat[keep]
        return [RowMaps(flat_signed[a:b], flat_heat[a:b])
                for a, b in zip([0, *ends[:-1]], ends, strict=True)]

    def target(self, d: int, maps: RowMaps, base: NNTargetExplanation) -> NNTargetExplanation:
        """Weighted spans (one per token occurrence) and the top tokens (computed
        when first read)."""
        doc, signed = self.doc(d), realise(maps.signed)  # (an array: built by maps())
        base.weighted_spans = Lazy(lambda: text_mod.spans(doc(), signed))
        base.feature_weights = Lazy(lambda: text_mod.top_tokens(doc().names, signed))
        return base

    def doc(self, d: int) -> Callable[[], text_mod.DocSpans]:
        """The span builder of doc ``d``, one per doc (shared by its targets)."""
        if d not in self._docs:
            self._docs[d] = self._doc_spans(d)
        return self._docs[d]

    def _doc_spans(self, d: int) -> Callable[[], text_mod.DocSpans]:
        """Where the real tokens of doc ``d`` sit: computed on the first call, then
        kept."""
        ids, real, document = self.ids[d], self.real[d], self.documents[d]
        given = None if self.tokens is None else self.tokens[d]

        def spans() -> text_mod.DocSpans:
            toks = given if given is not None else text_mod.default_tokens(ids)
            kept = [t for t, k in zip(toks, real.tolist(), strict=True) if k]
            return text_mod.doc_spans(kept, document)

        return Once(spans)
