"""The one framework-neutral pipeline: arguments → method → :class:`eli5.base.Explanation`."""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from eli5.base import Explanation, FeatureWeight, FeatureWeights

from .adapters import get_adapter
from .adapters.base import Adapter, ExplanationError, LayerRef, ModelInput, Tensor
from .base import NNTargetExplanation
from .formatters.explanation import NNExplanation
from .methods import METHODS, MethodContext, MethodResult, MethodSpec, get_method
from .methods.context import EmbeddingSpace
from .modalities import image as image_mod
from .modalities import text as text_mod

logger = logging.getLogger(__name__)

_METHOD_ARGS = ("layer", "baseline", "steps", "samples", "noise", "random_state", "patch_size")
TOP_REGIONS = 5


def explain_prediction_nn(model: Any, doc: Any, **kwargs: Any) -> Explanation:
    """Explain one prediction of a neural-network classifier.

    This is what ``eli5.explain_prediction(model, doc, ...)`` runs for
    ``torch.nn.Module`` models once ``eli5_nn`` is imported.

    Parameters
    ----------
    model : torch.nn.Module or keras.Model
        A classifier returning class scores (logits or probabilities) of shape
        (batch, n_classes).
    doc : numpy.ndarray or tensor, or a tuple / dict of them
        One input with a leading batch axis of 1, e.g. (1, C, H, W) for an
        image, or token ids (1, T) for a text model. A model with extra inputs
        (lengths, a mask) takes a tuple (token ids first) or a dict (token ids
        under ``input_ids``/``token_ids``/``ids``/``tokens``/``x``, else the
        first key); attribution goes to the token ids.
    method : str
        ``"grad-cam"`` (default), ``"grad-cam++"``, ``"gradient"``,
        ``"gradient-x-input"``, ``"smoothgrad"``, ``"integrated-gradients"``,
        ``"fullgrad"`` (images); for text also ``"occlusion"`` and
        ``"attention"`` (not ``"fullgrad"``); ``"cd"`` (contextual
        decomposition, PyTorch models only): the CD score of each token, or of
        each block of a grid over the image (``patch_size``). Text gradient methods work in
        embedding space: ``gradient``/``smoothgrad`` give the gradient's norm
        per token, ``gradient-x-input``/``integrated-gradients`` the signed sum
        over the embedding dimensions (IG from the padding embedding).
    targets : list of int (or class names), optional
        Classes to explain, in order; default the top class.
    top_targets : int, optional
        Explain the ``top_targets`` highest-scoring classes.
    target_names : list or dict, optional
        Class names; ``TargetExplanation.target`` then holds the name.
    layer : str, int or module, optional
        Layer for CAM methods (name, index in ``named_modules()`` order without
        the root, or the module); default: the last layer with a spatial map.
    image : PIL.Image.Image, optional
        Picture to draw on; default made from ``doc``.
    relu : bool, optional
        Keep only positive evidence (default for CAM methods); for gradient
        methods ``relu=True`` shows the positive part of the channel sum.
    counterfactual : bool
        Explain what speaks against the target (negated score).
    baseline, steps
        Integrated Gradients: reference input (default zeros) and number of
        quadrature nodes (default 50).
    samples, noise, random_state
        SmoothGrad: number of noisy samples (25), noise level relative to the
        input's range (0.15), seed.
    patch_size : int or tuple of int, optional
        ``method="cd"`` on images: the block size of the grid whose blocks are
        decomposed one by one (default: an 8×8 grid); each pixel of the
        attribution holds its block's CD score divided by the block's number
        of values, so a block's attribution sums to its CD score.
    batch_size : int, optional
        Inputs per forward/backward pass; default chosen to fit a memory budget
        per pass (384 MiB on CPU, 2 GiB on accelerators).
    tokens : list of str, optional
        Text: one string per position of ``doc`` (padding included); default
        the ids as strings.
    pad_value, pad_token
        Text: the padding id, or the token that marks padding; default the
        embedding's own padding id (``padding_idx``, Keras ``mask_zero``).
        Padding is left out of heatmaps and spans.
    document : str, optional
        Text: the original document; spans then point into it (the tokens must
        appear in it in order). Default: the tokens joined by spaces.

    faithfulness : bool
        Also score each target's map by deletion and insertion
        (:func:`eli5_nn.metrics.faithfulness`): ``target.faithfulness`` then
        holds ``{"deletion_auc": ..., "insertion_auc": ...}``.

    Returns
    -------
    eli5.base.Explanation
        Per target a ``heatmap`` in [0, 1] ((H, W) for images, one value per
        real token for text), the raw signed ``attribution``, ``score`` and
        ``proba``; ``image`` for images; ``weighted_spans`` (one signed span
        per token occurrence) and the top tokens as ``feature_weights`` for
        text.
    """
    faithful = kwargs.pop("faithfulness", False)
    explanations = explain_batch(model, doc, single=True, **kwargs)
    if faithful:
        _attach_faithfulness(model, doc, explanations, kwargs, single=True)
    return explanations[0]


def explain_predictions(model: Any, docs: Any, **kwargs: Any) -> list[Explanation]:
    """Explain the predictions of ``model`` on a batch of N docs, in batched passes.

    Takes the arguments of :func:`explain_prediction_nn`; ``targets`` may also
    hold one list per doc, ``target_names`` and ``baseline`` may be shared or
    per doc, and ``progress`` (bool, default: shown when the work takes many
    passes) controls the tqdm progress bar. Returns N explanations, each equal
    to explaining that doc alone.
    """
    faithful = kwargs.pop("faithfulness", False)
    explanations = explain_batch(model, docs, single=False, **kwargs)
    if faithful:
        _attach_faithfulness(model, docs, explanations, kwargs, single=False)
    return explanations


def _doc_at(docs: Any, i: int) -> Any:
    """Doc ``i`` of a batch (each part of a tuple or dict batch), batch axis kept."""
    if isinstance(docs, tuple):
        return tuple(v[i:i + 1] for v in docs)
    if isinstance(docs, Mapping):
        return {k: v[i:i + 1] for k, v in docs.items()}
    return docs[i:i + 1]


def _attach_faithfulness(
    model: Any, docs: Any, explanations: list[Explanation], kwargs: dict[str, Any],
    single: bool,
) -> None:
    """Deletion/insertion AUCs of every target, on ``target.faithfulness``."""
    from .metrics import faithfulness

    options = {k: kwargs[k] for k in ("target_names", "pad_value") if kwargs.get(k) is not None}
    for i, expl in enumerate(explanations):
        doc = docs if single else _doc_at(docs, i)
        for target, scores in zip(
            expl.targets or [], faithfulness(model, doc, expl, **options), strict=True
        ):
            target.faithfulness = scores


def explain_batch(
    model: Any,
    docs: Any,
    *,
    single: bool,
    method: str = "grad-cam",
    targets: Any = None,
    top_targets: int | None = None,
    target_names: Sequence[Any] | Mapping[Any, Any] | None = None,
    layer: Any = None,
    image: Any = None,
    relu: bool | None = None,
    counterfactual: bool = False,
    baseline: Any = None,
    steps: int | None = None,
    samples: int | None = None,
    noise: float | None = None,
    random_state: Any = None,
    patch_size: Any = None,
    batch_size: int | None = None,
    progress: bool | None = None,
    tokens: Any = None,
    pad_value: Any = None,
    pad_token: Any = None,
    document: Any = None,
) -> list[Explanation]:
    """The pipeline behind :func:`explain_prediction_nn` and :func:`explain_predictions`."""
    spec = get_method(method)
    given = {
        "layer": layer, "baseline": baseline, "steps": steps, "samples": samples,
        "noise": noise, "random_state": random_state, "patch_size": patch_size,
    }
    for name in _METHOD_ARGS:
        if given[name] is not None and name not in spec.params:
            warnings.warn(
                f"argument {name}= does not apply to method {spec.key!r} and is ignored",
                stacklevel=3,
            )
    _check_int("steps", steps)
    _check_int("samples", samples)
    _check_int("batch_size", batch_size)
    _check_int("top_targets", top_targets)
    if noise is not None and not (isinstance(noise, (int, float)) and math.isfinite(noise)
                                  and noise >= 0):
        raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")
    if relu is not None and not isinstance(relu, bool):
        raise TypeError(f"relu must be True, False or None, got {relu!r}")
    if targets is not None and top_targets is not None:
        raise ValueError("pass either targets= or top_targets=, not both")

    adapter = get_adapter(model)
    with adapter.session():
        model_in = adapter.as_batch(docs)
        if _is_text(adapter, model_in, tokens):
            if image is not None:
                raise ValueError("image= applies to image models; this input is token ids")
            return _explain_text(
                adapter, spec, model_in, single, given, tokens, pad_value, pad_token, document,
                targets=targets, top_targets=top_targets, target_names=target_names,
                layer=layer, relu=relu, counterfactual=counterfactual, batch_size=batch_size,
                progress=progress,
            )
        if any(v is not None for v in (tokens, pad_value, pad_token, document)):
            raise ValueError(
                "tokens=, pad_value=, pad_token= and document= apply to text models (token "
                "ids in, an embedding layer inside)"
            )
        if not spec.image:
            raise ExplanationError(
                f"method {spec.key!r} applies to text models; for images use one of "
                f"{sorted(k for k, m in METHODS.items() if m.image)}"
            )
        x = _validated_batch(adapter, model_in, spec, single)
        n_docs = adapter.ops.shape(x)[0]
        per_doc = _normalise_targets(targets, target_names, n_docs, single)
        ref = _resolve_layer(adapter, x, layer) if spec.space == "layer" else None
        ctx = MethodContext(
            adapter=adapter,
            x=x,
            resolve_targets=_target_resolver(per_doc, top_targets),
            sign=-1.0 if counterfactual else 1.0,
            layer=ref,
            batch_size=batch_size,
            progress=progress,
            params={k: v for k, v in given.items() if k in spec.params},
        )
        result = spec.fn(ctx)
        attribution = adapter.ops.to_numpy(result.attribution)
    if not np.all(np.isfinite(attribution)):
        raise ExplanationError(
            f"{spec.name} produced non-finite attributions; check the model for NaN/inf "
            "weights or outputs"
        )
    x_np_shape = adapter.ops.shape(x)
    return _build(
        adapter, spec, result, attribution, x, x_np_shape, ref, image, relu,
        target_names, counterfactual,
    )


# -- validation ------------------------------------------------------------------------------
def _check_int(name: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _validated_batch(adapter: Adapter, x: Tensor, spec: MethodSpec, single: bool) -> Tensor:
    shape = adapter.ops.shape(x)
    what = "explain_prediction" if single else "explain_predictions"
    if len(shape) < 2:
        raise ValueError(
            f"{what} expects input with a leading batch axis and at least one feature axis; "
            f"got shape {shape}. Add the batch axis, e.g. x[None] / x.unsqueeze(0)."
        )
    if shape[0] == 0:
        raise ValueError("the input batch is empty")
    if single and shape[0] != 1:
        raise ValueError(
            f"explain_prediction explains one input: doc must have a leading batch axis of "
            f"size 1, got shape {shape}. Add the axis with x[None] (or x.unsqueeze(0)); for "
            "several inputs use eli5_nn.explain_predictions."
        )
    if not adapter.is_floating(x):
        if spec.needs_gradient_input:
            raise TypeError(
                f"method {spec.key!r} differentiates with respect to the input, but the input "
                f"has an integer/bool dtype. Pass floating-point input (e.g. x.float() / 255 "
                "with the model's preprocessing)."
            )
    elif not adapter.ops.all_finite(x):
        raise ValueError(
            "the input contains NaN or infinite values; explanations of such input are "
            "meaningless. Clean or impute the input first."
        )
    return x


def _normalise_targets(
    targets: Any, target_names: Any, n_docs: int, single: bool
) -> list[list[Any]] | None:
    """``None`` (use scores) or one list of targets per doc."""
    if targets is None:
        return None
    if isinstance(targets, (int, np.integer, str)) and not isinstance(targets, bool):
        targets = [targets]
    if isinstance(targets, np.ndarray):
        targets = targets.tolist()
    if not isinstance(targets, (list, tuple)):
        raise TypeError(f"targets must be a list of class indices, got {type(targets).__name__}")
    if len(targets) and all(isinstance(t, (list, tuple, np.ndarray)) for t in targets):
        if single and len(targets) == 1:
            nested = [list(targets[0])]
        elif len(targets) != n_docs:
            raise ValueError(
                f"targets holds {len(targets)} lists but there are {n_docs} docs; pass one "
                "list of targets per doc, or one flat list for all docs"
            )
        else:
            nested = [list(t) for t in targets]
    else:
        nested = [list(targets)] * n_docs
    out = []
    for ts in nested:
        if not ts:
            raise ValueError("targets must not be empty; pass None to explain the top class")
        out.append([_target_index(t, target_names) for t in ts])
    return out


def _target_index(t: Any, target_names: Any) -> Any:
    if isinstance(t, (bool, np.bool_)):
        raise TypeError(f"targets must be class indices, got {t!r}")
    if isinstance(t, (int, np.integer)):
        return int(t)
    if isinstance(t, str):
        if isinstance(target_names, Mapping):
            for k, v in target_names.items():
                if v == t:
                    return int(k)
        elif target_names is not None and t in list(target_names):
            return list(target_names).index(t)
        raise ValueError(
            f"target {t!r} is not a class index nor a name in target_names; pass an index "
            "or give target_names"
        )
    raise TypeError(f"targets must be class indices (int), got {type(t).__name__}")


def _target_resolver(per_doc: list[list[int]] | None, top_targets: int | None) -> Any:
    def resolve(scores: np.ndarray, docs: Sequence[int]) -> list[list[int]]:
        n_classes = scores.shape[1]
        out = []
        for i, d in enumerate(docs):
            if per_doc is not None:
                ts = per_doc[d]
            elif top_targets is not None:
                if top_targets > n_classes:
                    raise ValueError(
                        f"top_targets={top_targets} but the model has {n_classes} outputs"
                    )
                ts = [int(c) for c in np.argsort(-scores[i], kind="stable")[:top_targets]]
            else:
                ts = [int(np.argmax(scores[i]))]
            for t in ts:
                if not 0 <= t < n_classes:
                    raise ValueError(
                        f"target {t} is out of range: the model has {n_classes} outputs "
                        f"(classes 0..{n_classes - 1})"
                    )
            out.append(list(ts))
        return out

    return resolve


def _resolve_layer(adapter: Adapter, x: Tensor, layer: Any) -> LayerRef:
    if layer is not None:
        return adapter.find_layer(layer)
    found = adapter.spatial_layers(x)
    if not found:
        raise ExplanationError(
            f"{adapter.model_name()} has no layer with a spatial or temporal map (it looks like "
            "an MLP), so CAM methods cannot apply. Use a gradient method instead: "
            "method='gradient', 'integrated-gradients' or 'smoothgrad'."
        )
    spatial = [(ref, shape) for ref, shape in found if int(np.prod(shape[1:])) > 1]
    ref, shape = (spatial or found)[-1]
    logger.info("eli5_nn: CAM layer chosen automatically: %r %s", ref.name, shape)
    return ref


# -- text --------------------------------------------------------------------------------------
def _is_text(adapter: Adapter, model_in: Any, tokens: Any) -> bool:
    """Token ids: tokens given, several inputs, or input to a model with an
    embedding layer (float ids are then refused with a clear message), or 2-D
    integer input (a model without an embedding is then told so)."""
    if tokens is not None or isinstance(model_in, ModelInput):
        return True
    if adapter.embedding_layers():
        return True
    return len(adapter.ops.shape(model_in)) == 2 and not adapter.is_floating(model_in)


def _explain_text(
    adapter: Adapter, spec: MethodSpec, model_in: Any, single: bool, given: dict[str, Any],
    tokens: Any, pad_value: Any, pad_token: Any, document: Any, *, targets: Any,
    top_targets: int | None, target_names: Any, layer: Any, relu: bool | None,
    counterfactual: bool, batch_size: int | None, progress: bool | None,
) -> list[Explanation]:
    if not spec.text:
        raise ExplanationError(
            f"method {spec.key!r} does not apply to text models; use one of "
            f"{sorted(k for k, m in METHODS.items() if m.text)}"
        )
    embeddings = adapter.embedding_layers()
    if not embeddings:
        raise ExplanationError(
            f"the input looks like token ids, but {adapter.model_name()} has no embedding "
            "layer (torch.nn.Embedding / keras.layers.Embedding) to attribute to. For an "
            "image model pass floating-point input."
        )
    emb, vocab, layer_pad = embeddings[0]
    ids_t = model_in.ids if isinstance(model_in, ModelInput) else model_in
    ids = adapter.ops.to_numpy(ids_t)
    text_mod.check_ids(ids, vocab, emb.name)
    n_docs, length = ids.shape
    if single and n_docs != 1:
        raise ValueError(
            f"explain_prediction explains one doc: token ids must have shape (1, n_tokens), "
            f"got {ids.shape}; for several docs use eli5_nn.explain_predictions"
        )
    toks = text_mod.per_doc_tokens(tokens, n_docs, length, single)
    pad, real = text_mod.padding(ids, toks, pad_value, pad_token, layer_pad)
    if toks is None:
        toks = [text_mod.default_tokens(row) for row in ids]
    docs_text = _documents(document, n_docs, single)
    space = EmbeddingSpace(inputs=model_in, layer=emb, ids=ids, real=real, pad_id=pad)
    all_docs = np.arange(n_docs)

    def embed(ids_np: np.ndarray) -> Tensor:
        outs = adapter.activations(
            space.with_ids(adapter, all_docs, ids_np), [emb], first_only=True
        )[emb]
        if not outs:
            raise ExplanationError(
                f"embedding layer {emb.name!r} is not called in the model's forward pass"
            )
        return outs[0]

    x = embed(ids)
    baseline = given["baseline"]
    base_t = None
    if spec.key == "integrated-gradients":
        if baseline is None and pad is not None:
            base_t = embed(np.full_like(ids, pad))
        elif baseline is not None and np.issubdtype(np.asarray(baseline).dtype, np.integer):
            b_ids = np.broadcast_to(np.asarray(baseline), ids.shape).copy()
            text_mod.check_ids(b_ids, vocab, emb.name)
            base_t = embed(b_ids)
    per_doc = _normalise_targets(targets, target_names, n_docs, single)
    ref = _resolve_layer(adapter, model_in, layer) if spec.space == "layer" else None
    ctx = MethodContext(
        adapter=adapter, x=x, resolve_targets=_target_resolver(per_doc, top_targets),
        sign=-1.0 if counterfactual else 1.0, layer=ref, batch_size=batch_size,
        progress=progress, params={k: v for k, v in given.items() if k in spec.params},
        space=space, baseline=base_t,
    )
    result = spec.fn(ctx)
    attribution = adapter.ops.to_numpy(result.attribution)
    if not np.all(np.isfinite(attribution)):
        raise ExplanationError(f"{spec.name} produced non-finite attributions")
    if spec.key == "integrated-gradients" and baseline is None:
        result.notes.append(
            "baseline: the padding embedding" if pad is not None
            else "baseline: zero embedding (no padding id known; pass pad_value=)"
        )
    use_relu = relu if relu is not None else spec.space == "layer"
    proba = _proba(result.scores)
    desc = _describe(spec, ref, attribution, result, use_relu, counterfactual, ())
    explanations = []
    for d in range(n_docs):
        keep = real[d]
        kept_tokens = [t for t, k in zip(toks[d], keep, strict=True) if k]
        target_expls = []
        for r in np.flatnonzero(result.rows.doc == d):
            c = int(result.rows.cls[r])
            a = attribution[r]
            if spec.space == "layer":
                assert ref is not None
                cam = _layer_cam(adapter, ref, a)
                signed = text_mod.resize_1d(cam, length)[keep]
                shown = np.clip(signed, 0, None) if use_relu else np.abs(signed)
            else:
                signed = text_mod.token_weights(a, spec.text)[keep]
                shown = np.clip(signed, 0, None) if relu else np.abs(signed)
            spans, fw = text_mod.weighted_spans(kept_tokens, signed, docs_text[d])
            target_expls.append(
                NNTargetExplanation(
                    target=_target_name(c, target_names), score=float(result.scores[d, c]),
                    proba=float(proba[d, c]), heatmap=image_mod.normalise(shown),
                    attribution=a, weighted_spans=spans, feature_weights=fw,
                )
            )
        explanations.append(
            NNExplanation(
                estimator=adapter.model_name(), method=spec.name,
                description=desc + f" Tokens: {int(keep.sum())} of {length} positions "
                "(padding left out).",
                targets=target_expls,
            )
        )
    return explanations


def _documents(document: Any, n_docs: int, single: bool) -> list[str | None]:
    if document is None:
        return [None] * n_docs
    if isinstance(document, str):
        if n_docs != 1:
            raise ValueError(f"document is one string but there are {n_docs} docs")
        return [document]
    docs = list(document)
    if len(docs) != n_docs or not all(isinstance(d, str) for d in docs):
        raise ValueError(f"document must be a string, or one string per doc ({n_docs})")
    return docs


# -- results ---------------------------------------------------------------------------------
def _proba(scores: np.ndarray) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    if s.shape[1] == 1:
        if np.all((s >= 0) & (s <= 1)):
            return s
        return 1.0 / (1.0 + np.exp(-s))
    if np.all((s >= 0) & (s <= 1)) and np.allclose(s.sum(axis=1), 1.0, atol=1e-4):
        return s
    e = np.exp(s - s.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _target_name(c: int, target_names: Any) -> Any:
    if target_names is None:
        return c
    if isinstance(target_names, Mapping):
        return target_names.get(c, c)
    names = list(target_names)
    if c >= len(names):
        raise ValueError(f"target_names has {len(names)} names but class {c} was explained")
    return names[c]


def _feature_weights(signed: np.ndarray, input_size: tuple[int, ...]) -> FeatureWeights | None:
    regions = image_mod.region_sums(signed, input_size)
    if not regions:
        return None
    pos = sorted((r for r in regions if r[1] > 0), key=lambda r: -r[1])
    neg = sorted((r for r in regions if r[1] < 0), key=lambda r: r[1])
    return FeatureWeights(
        pos=[FeatureWeight(n, w) for n, w in pos[:TOP_REGIONS]],
        neg=[FeatureWeight(n, w) for n, w in neg[:TOP_REGIONS]],
        pos_remaining=max(0, len(pos) - TOP_REGIONS),
        neg_remaining=max(0, len(neg) - TOP_REGIONS),
    )


def _build(
    adapter: Adapter,
    spec: MethodSpec,
    result: MethodResult,
    attribution: np.ndarray,
    x: Tensor,
    shape: tuple[int, ...],
    ref: LayerRef | None,
    image: Any,
    relu: bool | None,
    target_names: Any,
    counterfactual: bool,
) -> list[Explanation]:
    rank = len(shape)
    ch = adapter.channel_axis % rank if rank >= 3 else None
    spatial = tuple(s for i, s in enumerate(shape) if i not in (0, ch))
    is_image = rank == 4
    if image is not None and not is_image:
        raise ValueError(f"image= applies to image inputs (N, C, H, W); got shape {shape}")
    user_image = image_mod.as_image(image) if image is not None else None
    x_np = adapter.ops.to_numpy(x) if is_image and user_image is None else None
    proba = _proba(result.scores)
    use_relu = relu if relu is not None else spec.space == "layer"
    row_ch = None if ch is None else ch - 1
    base_desc = _describe(spec, ref, attribution, result, use_relu, counterfactual, spatial)
    explanations = []
    for d in range(shape[0]):
        target_expls = []
        for r in np.flatnonzero(result.rows.doc == d):
            c = int(result.rows.cls[r])
            a = attribution[r]
            if spec.space == "layer":
                assert ref is not None
                cam = _layer_cam(adapter, ref, a)
                raw = np.clip(cam, 0, None) if use_relu else np.abs(cam)
                m = image_mod.resize_map(raw, spatial) if raw.ndim == len(spatial) else raw
                signed_map = cam
            else:
                if result.display is not None and relu is None:
                    m = result.display[r]
                else:
                    m = image_mod.reduce_channels(a, row_ch, spec.reduce, relu)
                signed_map = a.sum(axis=row_ch) if row_ch is not None else a
            target_expls.append(
                NNTargetExplanation(
                    target=_target_name(c, target_names),
                    score=float(result.scores[d, c]),
                    proba=float(proba[d, c]),
                    heatmap=image_mod.normalise(m),
                    attribution=a,
                    feature_weights=_feature_weights(signed_map, spatial),
                )
            )
        pic, note = None, None
        if user_image is not None:
            pic = user_image
        elif x_np is not None:
            assert ch is not None
            pic, note = image_mod.image_from_input(x_np[d], ch - 1)
        explanations.append(
            NNExplanation(
                estimator=adapter.model_name(),
                method=spec.name,
                description=base_desc + (f" Note: {note}." if note else ""),
                targets=target_expls,
                image=pic,
            )
        )
    return explanations


def _layer_cam(adapter: Adapter, ref: LayerRef, a: np.ndarray) -> np.ndarray:
    """The signed class activation map of one row of a layer attribution: its
    channel sum (text: over the temporal map; images: over the spatial map)."""
    return a.sum(axis=_row_axis(adapter.layer_channel_axis(ref), a.ndim))


def _row_axis(channel_axis: int, row_ndim: int) -> int:
    """The channel axis of one row (batch axis dropped)."""
    return (channel_axis - 1 if channel_axis > 0 else channel_axis) % row_ndim


def _describe(
    spec: MethodSpec,
    ref: LayerRef | None,
    attribution: np.ndarray,
    result: MethodResult,
    relu: bool,
    counterfactual: bool,
    spatial: tuple[int, ...],
) -> str:
    size = "×".join(str(s) for s in spatial)
    parts = [f"{spec.name}"]
    if ref is not None:
        shape = "×".join(str(s) for s in attribution.shape[1:])
        parts.append(f"at layer {ref.name!r} ({ref.kind}, map {shape})")
    if counterfactual:
        parts.append("counterfactual: evidence against each target")
    settings = list(result.notes)
    if spec.space == "layer":
        settings.append(f"relu={relu}")
    elif relu:
        settings.append("relu=True: positive part of the channel sum")
    if settings:
        parts.append("; ".join(settings))
    shown = f"heatmap at {size} scaled to [0, 1]" if size else "heatmap scaled to [0, 1]"
    return ", ".join(parts) + f". {shown}; attribution holds the raw signed values."
