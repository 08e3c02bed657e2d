"""The one pipeline: check arguments → the modality prepares → the method runs →
the modality builds the result.

Nothing here names a method: what a method takes (its arguments, a baseline,
a layer) is declared in its registration (:mod:`eli5_nn.methods`), and what
an input kind needs is its modality's (:mod:`eli5_nn.modalities`).
"""

from __future__ import annotations

import gc
import logging
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields
from functools import lru_cache, partial
from typing import Any

import numpy as np

from . import modalities
from .adapters import architectures, auto_layer, get_adapter, outputs
from .adapters.base import Adapter, LayerRef
from .arguments import check_keywords, check_optional_bool, check_positive_int
from .errors import Eli5NNTypeError, ExplanationError
from .layout import Layout, parse_layout
from .methods import METHODS, MethodContext, MethodResult, MethodSpec, Rows, get_method
from .methods.params import ARGUMENTS
from .modalities.base import Modality, Prepared, RowMaps, layer_note
from .modalities.pictures import from_pil, is_pil, layout_hint
from .results import Lazy, NNExplanation, NNTargetExplanation, Once, joined
from .targets import (
    check_output,
    normalise_targets,
    proba,
    read_output,
    target_name,
    target_resolver,
)

logger = logging.getLogger(__name__)


@dataclass
class Options:
    """The pipeline's own arguments (the methods' are in
    :data:`~eli5_nn.methods.params.ARGUMENTS`)."""

    method: Any = "grad-cam"
    targets: Any = None
    top_targets: Any = None
    target_names: Any = None
    layout: Any = None
    output: Any = None
    image: Any = None
    relu: Any = None
    counterfactual: Any = False
    batch_size: Any = None
    progress: Any = None
    tokens: Any = None
    pad_value: Any = None
    pad_token: Any = None
    document: Any = None
    tokenizer: Any = None


PIPELINE_ARGS = tuple(f.name for f in fields(Options))


@lru_cache(maxsize=16)
def valid_arguments(*extra: str) -> frozenset[str]:
    """Every keyword argument of ``explain_prediction`` (and ``extra``)."""
    return frozenset({*PIPELINE_ARGS, *ARGUMENTS, *extra})


def explain_batch(
    model: Any, docs: Any, *, single: bool, extra: tuple[str, ...] = (), **kwargs: Any
) -> list[NNExplanation]:
    """The pipeline behind :func:`eli5_nn.explain_prediction_nn` (``single``) and
    :func:`eli5_nn.explain_predictions`; ``extra`` names arguments the caller
    handled itself (listed as valid in messages)."""
    check_keywords(kwargs, valid_arguments(*extra),
                   "explain_prediction" if single else "explain_predictions")
    opts = Options(**{k: v for k, v in kwargs.items() if k in PIPELINE_ARGS})
    spec = get_method(opts.method)
    params = _method_params(spec, {k: v for k, v in kwargs.items() if k in ARGUMENTS})
    user_layout = _check_options(opts)
    adapter = get_adapter(model)
    with adapter.session():
        modality, model_in = _modality(adapter, docs, single, opts)
        with _layout_hints(adapter, model_in):
            ctx, prepared = _context(adapter, modality, spec, params, opts, user_layout,
                                     single)
            result = spec.fn(ctx)
        # checked in the framework, where the attribution was just computed
        if not adapter.ops.all_finite(result.attribution):
            raise ExplanationError(
                f"{spec.name} produced non-finite attributions; check the model for NaN/inf "
                "weights or outputs"
            )
        attribution = adapter.ops.to_numpy(result.attribution)
        output = _output_kind(adapter, model_in, opts.output, result.scores)
    return _build(modality, spec, ctx, prepared, result, attribution, opts, output,
                  adapter.model_name())


# -- 1. arguments -----------------------------------------------------------------------------
def _method_params(spec: MethodSpec, given: dict[str, Any]) -> dict[str, Any]:
    """The method arguments ``spec`` takes, checked; a warning for the others."""
    for name, value in given.items():
        if value is not None and name not in spec.params:
            warnings.warn(
                f"argument {name}= does not apply to method {spec.key!r} and is ignored",
                stacklevel=4,
            )
    return spec.check_args({k: v for k, v in given.items() if v is not None})


def _check_options(opts: Options) -> Layout | None:
    """Check the pipeline's own arguments; returns the parsed ``layout=``."""
    opts.batch_size = check_positive_int("batch_size", opts.batch_size)
    opts.top_targets = check_positive_int("top_targets", opts.top_targets)
    check_optional_bool("relu", opts.relu)
    check_optional_bool("progress", opts.progress)
    if not isinstance(opts.counterfactual, bool):
        raise Eli5NNTypeError(f"counterfactual must be True or False, got {opts.counterfactual!r}")
    check_output(opts.output)
    if opts.targets is not None and opts.top_targets is not None:
        raise ExplanationError("pass either targets= or top_targets=, not both")
    return parse_layout(opts.layout)


# -- 2. the modality prepares -------------------------------------------------------------------
def _modality(adapter: Adapter, docs: Any, single: bool, opts: Options
              ) -> tuple[Modality, Any]:
    """The modality of ``docs`` (PIL images converted first) and the model input."""
    image: Any = opts.image
    notes: tuple[str, ...] = ()
    if is_pil(docs):
        docs, pictures, note = from_pil(adapter, docs)
        image, notes = (image if image is not None else pictures), (note,)
    elif isinstance(docs, Mapping):  # a tokenizer's BatchEncoding: the model's inputs only
        docs = architectures.model_inputs(docs)
    with _layout_hints(adapter, docs):
        model_in = adapter.as_batch(docs)
    modality = modalities.choose(
        adapter, model_in, single, image=image, notes=notes, tokens=opts.tokens,
        pad_value=opts.pad_value, pad_token=opts.pad_token, document=opts.document,
        tokenizer=_speller(opts.tokenizer),
    )
    return modality, model_in


@contextmanager
def _layout_hints(adapter: Adapter, docs: Any) -> Iterator[None]:
    """Re-raise an :class:`ExplanationError` as the clearer one :func:`layout_hint`
    gives where the input looks transposed (channels last for a channels-first model)."""
    try:
        yield
    except ExplanationError as err:
        better = layout_hint(adapter, docs, err)
        if better is not None:
            raise better from err
        raise


def _speller(tokenizer: Any) -> Callable[[np.ndarray], tuple[list[str], np.ndarray]] | None:
    """``tokenizer=`` (a Hugging Face tokenizer) as the text modality takes it: one
    row of ids → its tokens (word pieces as such) and the special-token mask."""
    if tokenizer is None:
        return None
    if not callable(getattr(tokenizer, "convert_ids_to_tokens", None)):
        raise Eli5NNTypeError(
            f"tokenizer must be a Hugging Face tokenizer (with convert_ids_to_tokens), got "
            f"{type(tokenizer).__name__}; or pass the tokens as tokens="
        )
    return partial(architectures.tokenizer_tokens, tokenizer)


def _context(adapter: Adapter, modality: Modality, spec: MethodSpec, params: dict[str, Any],
             opts: Options, user_layout: Layout | None, single: bool
             ) -> tuple[MethodContext, Prepared]:
    """The method's context: the prepared input, its targets, the CAM layer."""
    if not modality.accepts(spec):
        raise modality.refuse(spec, [k for k, m in METHODS.items() if modality.accepts(m)])
    cam = spec.space == "layer"
    # layout= describes what the method reads: the input, or a layer's map / tokens
    tapped = cam or spec.space == "token"
    prepared = modality.prepare(spec, params, None if tapped else user_layout)
    n_docs = modality.n_docs
    per_doc = normalise_targets(opts.targets, opts.target_names, n_docs, single)
    ref, layer_layout = None, user_layout if tapped else None
    if cam:
        ref, layer_layout, why = _cam_layer(adapter, modality.model_input, params.get("layer"),
                                            user_layout)
        if why:
            prepared.notes.append(f"layer chosen automatically: {why}")
    ctx = MethodContext(
        adapter=adapter, x=prepared.x, resolve_targets=target_resolver(per_doc, opts.top_targets),
        sign=-1.0 if opts.counterfactual else 1.0, layer=ref, batch_size=opts.batch_size,
        progress=opts.progress, params=params, space=prepared.space,
        baseline=prepared.baseline, layout=prepared.layout, layer_layout=layer_layout,
    )
    return ctx, prepared


def _cam_layer(adapter: Adapter, model_in: Any, layer: Any, user_layout: Layout | None
               ) -> tuple[LayerRef, Layout, str]:
    """The CAM layer, its layout and why it was chosen (``""`` when given): ``layer=``;
    else the map entering the head's first parameter-free reduction, or for class-token
    heads the input of the last block's attention (DESIGN.md §1); else the last layer
    with a spatial or token map."""
    if layer is not None:
        ref = adapter.find_layer(layer)
        layout = user_layout or adapter.layer_layout(ref, model_in)
        return ref, layout, ""
    auto = auto_layer.automatic_layer(adapter, model_in)
    if auto is not None:
        ref, why = auto
        logger.info("eli5_nn: CAM layer chosen automatically: %r (%s)", ref.name, why)
        return ref, user_layout or adapter.layer_layout(ref, model_in), why
    found = adapter.spatial_layers(model_in)
    if not found:
        raise ExplanationError(
            f"{adapter.model_name()} has no layer with a spatial or temporal map (it looks like "
            "an MLP), so CAM methods cannot apply. Use a gradient method instead: "
            "method='gradient', 'integrated-gradients' or 'smoothgrad'."
        )
    ref, shape, layout = next((f for f in reversed(found) if _map_size(f[2], f[1]) > 1),
                              found[-1])
    logger.info("eli5_nn: CAM layer chosen automatically: %r %s", ref.name, shape)
    return ref, user_layout or layout, "the last layer with a spatial or token map"


def _map_size(layout: Layout, shape: tuple[int, ...]) -> int:
    return int(np.prod(layout.map_shape(shape))) if len(shape) == len(layout.axes) else 0


# -- 3. what the outputs are -------------------------------------------------------------------
#: how ``proba`` follows from each output kind
_PROBA_NOTES = {
    "logits": "proba is their softmax",
    "probabilities": "proba as given",
    "multilabel": "proba is a sigmoid per label",
    "regression": "no proba",
}


def _output_kind(adapter: Adapter, model_in: Any, given: str | None, scores: np.ndarray
                 ) -> tuple[str | None, str]:
    """The output kind and where it comes from: ``output=``; what the model states
    (a final Softmax/Sigmoid, a Hugging Face ``problem_type``); one output column
    is a regression; else ``None``: read from the scores by :func:`proba`."""
    if given is not None:
        return given, "output="
    stated = getattr(adapter, "output_kind", None)  # an adapter may know better
    kind = stated(model_in) if callable(stated) else outputs.output_kind(adapter, model_in)
    if kind is not None:
        return kind, f"stated by {adapter.model_name()}"
    if np.shape(scores)[1] == 1:
        return "regression", "one output; pass output= for a probability or a logit"
    return None, "read from the scores; pass output= to say"


def _probabilities(scores: np.ndarray, output: tuple[str | None, str], rows: Rows
                   ) -> tuple[list[float | None], str]:
    """``proba`` of every explained row and the description's sentence about the outputs."""
    kind, why = output
    if kind is None:  # read from the scores (several columns: else a regression)
        kind = read_output(scores)
    probs = proba(scores, kind)
    # the rows' values read at once (one numpy call, not one per row)
    row_probas: list[float | None] = [None] * len(rows) if probs is None else \
        probs[rows.doc, rows.cls].astype(float).tolist()
    return row_probas, f" Outputs read as {kind} ({why}): {_PROBA_NOTES[kind]}."


# -- 4. the modality builds the result ---------------------------------------------------------
def _build(modality: Modality, spec: MethodSpec, ctx: MethodContext, prepared: Prepared,
           result: MethodResult, attribution: np.ndarray, opts: Options,
           output: tuple[str | None, str], estimator: str) -> list[NNExplanation]:
    """One explanation per doc, one target explanation per explained (doc, class) row."""
    layout = result.layout or modality.attribution_layout(spec, prepared, ctx.layer_layout)
    rows = result.rows
    # probabilities and what the description says of the outputs: when first read
    outputs = Once(partial(_probabilities, result.scores, output, rows))
    description = joined(_describe(spec, ctx, attribution, result, prepared, opts,
                                   modality.display_size()),
                         Lazy(lambda: outputs()[1]))
    # the per-row values read at once (one numpy call each, not one per row)
    classes = np.asarray(rows.cls).tolist()
    # a modality whose ``results`` hold no model or model input (text) has its targets
    # built when first read; the others now
    deferred = getattr(modality, "results", None)
    finish = modality if deferred is None else deferred
    targets = _Targets(
        [target_name(c, opts.target_names) for c in classes],
        result.scores[rows.doc, rows.cls].astype(float).tolist(), outputs, attribution, layout,
        # rows are doc-major: doc d's rows are bounds[d]:bounds[d + 1]
        np.searchsorted(rows.doc, np.arange(modality.n_docs + 1)).tolist(),
        partial(finish.maps, spec, attribution, layout, np.asarray(rows.doc), opts.relu,
                result.display),
    )
    explanation, method = modality.explanation, spec.name
    if deferred is not None:
        return [explanation(d, Lazy(partial(targets.of, deferred.target, d)), description,
                            estimator, method) for d in range(modality.n_docs)]
    with _collector_paused():
        return [explanation(d, targets.of(modality.target, d), description, estimator, method)
                for d in range(modality.n_docs)]


class _Targets:
    """The target explanations of a call's docs, from per-row values read at once:
    ``maps()`` builds every row's maps (on the first :meth:`of`), ``outputs()`` every
    row's probability (on the first read of one)."""

    def __init__(self, names: list[str], scores: list[float],
                 outputs: Callable[[], tuple[list[float | None], str]],
                 attribution: np.ndarray, layout: Layout, bounds: list[int],
                 maps: Callable[[], list[RowMaps]]) -> None:
        self.names, self.scores, self.outputs = names, scores, outputs
        self.attribution, self.layout, self.bounds, self.maps = attribution, layout, bounds, maps
        self._maps: list[RowMaps] | None = None

    def of(self, target: Callable[[int, RowMaps, NNTargetExplanation], NNTargetExplanation],
           d: int) -> list[NNTargetExplanation]:
        """Doc ``d``'s targets, finished by the modality's ``target``."""
        if self._maps is None:
            with _collector_paused():
                self._maps = self.maps()
        out = []
        for r in range(self.bounds[d], self.bounds[d + 1]):
            maps = self._maps[r]
            # positional: target, feature_weights, proba, score, weighted_spans, heatmap,
            # attribution, faithfulness, layout
            proba = Lazy(partial(_row_proba, self.outputs, r))
            base = NNTargetExplanation(self.names[r], None, proba, self.scores[r], None,
                                       maps.heatmap, self.attribution[r], None, self.layout)
            out.append(target(d, maps, base))
        return out


def _row_proba(outputs: Callable[[], tuple[list[float | None], str]], r: int) -> float | None:
    """Row ``r``'s probability (the probabilities of all rows are computed together);
    what an unread ``proba`` holds: the scores, not the model or the modality."""
    return outputs()[0][r]


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Results are many small acyclic objects (spans, feature weights): building them
    with the cyclic garbage collector paused saves its scans of every object the
    process holds (G measured most of the text result time in them)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _describe(spec: MethodSpec, ctx: MethodContext, attribution: np.ndarray,
              result: MethodResult, prepared: Prepared, opts: Options,
              size: tuple[int, ...]) -> str:
    """What was computed: the method, the layer, the settings, the display."""
    parts = [spec.name]
    if ctx.layer is not None and ctx.layer_layout is not None:
        parts.append(layer_note(ctx.layer, attribution.shape[1:], ctx.layer_layout))
    if opts.counterfactual:
        parts.append("counterfactual: evidence against each target")
    settings = [*result.notes, *prepared.notes]
    if spec.space == "layer":
        settings.append(f"relu={True if opts.relu is None else opts.relu}")
    elif opts.relu:
        settings.append("relu=True: positive part of the channel sum")
    if settings:
        parts.append("; ".join(settings))
    where = "×".join(str(s) for s in size)
    shown = f"heatmap at {where} scaled to [0, 1]" if where else "heatmap scaled to [0, 1]"
    return ", ".join(parts) + f". {shown}; attribution holds the raw signed values."
