"""Deletion and insertion games (Petsiuk et al. 2018, "RISE"; Samek et al. 2017).

Framework-neutral: the model is reached through its adapter. Perturbed inputs
are built in the framework from small numpy masks, a chunk of steps per
forward pass; only scores come back as numpy.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from eli5.base import Explanation, TargetExplanation

from ..adapters import get_adapter
from ..adapters.base import Adapter, ModelInput, Tensor, iter_chunks
from ..arguments import check_positive_int
from ..errors import Eli5NNTypeError, ExplanationError
from ..layout import parse_layout
from ..results import DeletionInsertion
from ..targets import baseline_array, parse_baseline, proba
from .features import checked_shape, features, map_and_target

logger = logging.getLogger(__name__)

#: default number of steps: one per feature, at most this many
MAX_DEFAULT_STEPS = 100
#: token id that removes a token when neither ``pad_value`` nor the embedding's padding id is known
DEFAULT_PAD_VALUE = 0
#: most inputs in one forward pass when ``batch_size`` is not given
MAX_AUTO_BATCH = 256


def deletion_insertion(
    model: Any,
    doc: Any,
    explanation: Any,
    *,
    target: Any = None,
    target_names: Any = None,
    steps: int | None = None,
    baseline: Any = None,
    patch_size: int | tuple[int, ...] | None = None,
    pad_value: int | None = None,
    batch_size: int | None = None,
    random_state: int = 0,
    output: str | None = None,
    layout: Any = None,
) -> DeletionInsertion:
    """Deletion and insertion curves of an explanation (Petsiuk et al. 2018).

    The features of ``doc`` are ranked by the explanation's map, most important
    first. *Deletion* removes the top ``k`` of them (replaces them by the
    baseline) for ``k`` growing from none to all, *insertion* starts from the
    baseline and puts the top ``k`` back; both follow the probability of the
    target class. Each curve has ``steps + 1`` points; several steps share one
    forward pass (deletion and insertion inputs together).

    Parameters
    ----------
    model : torch.nn.Module or keras.Model
        The classifier that was explained.
    doc : numpy.ndarray, framework tensor, tuple or dict
        The one input that was explained, with a leading batch axis of 1 (for
        a text model with several inputs, as given to ``explain_prediction``:
        only the token ids are perturbed).
    explanation : eli5.base.Explanation, eli5.base.TargetExplanation or array
        What ranks the features: the target's ``heatmap`` (for an
        ``Explanation``, of the target chosen by ``target``, default the
        first), or an array of feature scores (higher = more important).
        Its shape is the doc's without the batch axis (one score per element),
        without the channel axis too (one score per position, all channels
        removed together: (H, W) for images), or, for token ids, one score per
        real (non-pad) token.
    target : int or class name, optional
        The class whose probability is followed. For an ``Explanation`` it
        picks the target explanation (as its ``target`` reads); for an array,
        default the top class of the model on ``doc``.
    target_names : list or dict, optional
        Class names, to find the class index of a target given by name.
    steps : int, optional
        Number of steps from none to all features; default one step per
        feature, at most 100. The curve's x axis is the exact share of features
        removed at each step.
    baseline : float, "mean" or array, optional
        What a removed feature of a float input becomes: default 0; a number;
        ``"mean"``, the doc's mean per channel; or an input of the doc's shape.
    patch_size : int or tuple of int, optional
        Rank and remove patches of this size (the map averaged over each
        patch) instead of single positions; default 1 (single positions).
    pad_value : int, optional
        For token-id input (integer ``doc``): the id that removes a token and
        marks padding (padding is never ranked). Default the embedding layer's
        padding id, else 0.
    batch_size : int, optional
        Inputs per forward pass; default what fits the adapter's memory budget
        (at most 256).
    random_state : int
        Seed that breaks ties between equally ranked features (Grad-CAM maps
        have many zeros) in a random but reproducible order. Default 0.
    output : {"logits", "probabilities", "multilabel", "regression"}, optional
        What the model's outputs are, as for ``explain_prediction``; default
        detected (see below). Where they are not class scores (``"regression"``,
        a single logit), the curves follow the raw output.
    layout : str, dict or eli5_nn.Layout, optional
        The axes of the doc (e.g. ``"NHWC"``), where the model cannot state
        which axis holds channels; as for ``explain_prediction``.

    Returns
    -------
    DeletionInsertion
        The curves and their areas (``deletion_auc``, ``insertion_auc``).

    Probabilities are the model's outputs where they already are probabilities
    (in [0, 1], rows summing to 1), else the softmax of the scores (a sigmoid
    for a single output), as in the explanation's ``proba``.
    """
    check_positive_int("steps", steps)
    check_positive_int("batch_size", batch_size)
    adapter = get_adapter(model)
    with adapter.session():
        model_in = adapter.as_batch(doc)
        x = model_in.ids if isinstance(model_in, ModelInput) else model_in
        shape = checked_shape(adapter, x, "deletion_insertion")
        scores0 = adapter.forward(model_in)
        score_map, cls = map_and_target(explanation, target, target_names, scores0)
        ids, pad_value = _token_ids(adapter, x, baseline, pad_value)
        channel = _channel_axis(adapter, x, shape, layout) if ids is None else None
        gid, feature_scores, expand = features(score_map, shape, channel, ids, pad_value,
                                               patch_size)
        n = len(feature_scores)
        steps = min(n, MAX_DEFAULT_STEPS) if steps is None else steps
        if steps > n:
            raise ExplanationError(
                f"steps must be at most the number of features ({n}), got {steps}"
            )
        rank_map = _rank_map(gid, feature_scores, random_state)
        counts = np.rint(np.arange(steps + 1) * n / steps).astype(np.int64)
        b = adapter.ops.asarray(_baseline(adapter, x, shape, channel, baseline, ids, pad_value),
                                like=x)
        deletion, insertion = _curves(adapter, model_in, x, b, rank_map, counts, expand,
                                      batch_size)
    all_scores = np.concatenate([scores0, deletion, insertion])
    probs = proba(all_scores, output)
    followed = (all_scores if probs is None else probs)[:, cls]
    del_curve, ins_curve = followed[1:steps + 2], followed[steps + 2:]
    fractions = counts / n
    return DeletionInsertion(
        target=cls, n_features=n, fractions=fractions, deletion_curve=del_curve,
        insertion_curve=ins_curve, deletion_auc=_auc(fractions, del_curve),
        insertion_auc=_auc(fractions, ins_curve),
    )


def faithfulness(model: Any, doc: Any, explanation: Any, **kwargs: Any) -> list[dict[str, float]]:
    """Deletion and insertion AUC of every target of ``explanation``.

    Returns one ``{"deletion_auc": ..., "insertion_auc": ...}`` per target, in
    the order of ``explanation.targets`` (one item for a single
    ``TargetExplanation``): what ``NNTargetExplanation.faithfulness`` holds.
    ``kwargs`` are those of :func:`deletion_insertion` except ``target``.
    """
    if "target" in kwargs:
        raise Eli5NNTypeError(
            "faithfulness scores every target of the explanation; do not pass target="
        )
    if isinstance(explanation, TargetExplanation):
        targets = [explanation]
    elif isinstance(explanation, Explanation):
        targets = list(explanation.targets or [])
    else:
        raise Eli5NNTypeError(
            f"faithfulness expects an eli5 Explanation or TargetExplanation, got "
            f"{type(explanation).__name__}; for an array map use deletion_insertion()"
        )
    return [deletion_insertion(model, doc, te, **kwargs).as_dict() for te in targets]


def _token_ids(adapter: Adapter, x: Tensor, baseline: Any, pad_value: int | None
               ) -> tuple[np.ndarray | None, int | None]:
    """The doc's token ids (``None`` for float input) and the id that removes a token."""
    if adapter.is_floating(x):
        if pad_value is not None:
            raise ExplanationError(
                "pad_value= applies to token-id input; for float input use baseline="
            )
        return None, None
    if baseline is not None:
        raise ExplanationError(
            "baseline= applies to float input; for token ids, removed tokens are "
            "replaced by pad_value= (default 0)"
        )
    if pad_value is None:
        known = [pad for _, _, pad in adapter.embedding_layers() if pad is not None]
        pad_value = known[0] if known else DEFAULT_PAD_VALUE
        logger.info("eli5_nn: deletion/insertion removes tokens with pad_value=%d", pad_value)
    return adapter.ops.to_numpy(x)[0], pad_value


def _channel_axis(adapter: Adapter, x: Tensor, shape: tuple[int, ...], layout: Any
                  ) -> int | None:
    """The doc's channel axis (batch axis included) from its layout; ``None`` for
    input without spatial axes (a vector: every value is a feature)."""
    if len(shape) < 3:
        return None
    stated = parse_layout(layout) or adapter.input_layout(x)
    stated.check(shape[1:], "the doc")
    return None if stated.channel_axis is None else stated.channel_axis + 1


def _rank_map(gid: np.ndarray, feature_scores: np.ndarray, random_state: int) -> np.ndarray:
    """Each position's rank (0 = most important; ``n`` for positions that are no feature)."""
    n = len(feature_scores)
    rng = np.random.default_rng(random_state)
    order = np.lexsort((rng.random(n), -feature_scores))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    return np.where(gid >= 0, rank[np.maximum(gid, 0)], n)


def _baseline(adapter: Adapter, x: Tensor, shape: tuple[int, ...], channel: int | None,
              baseline: Any, ids: np.ndarray | None, pad_value: int | None) -> np.ndarray:
    """What removed features become (numpy, the doc's shape)."""
    if ids is not None:
        return np.full(shape, pad_value)
    spec = parse_baseline(baseline, allow_mean=True)
    x_np = np.zeros(shape)
    if spec.kind == "mean":
        x_np = adapter.ops.to_numpy(x).astype(np.float64)
    elif spec.kind == "array" and not isinstance(spec.array, np.ndarray):
        spec = parse_baseline(adapter.ops.to_numpy(adapter.as_batch(spec.array)))
    return baseline_array(spec, x_np, channel)


def _curves(
    adapter: Adapter, model_in: Any, x: Tensor, b: Tensor, rank_map: np.ndarray,
    counts: np.ndarray, expand: int | None, batch_size: int | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Scores along the deletion and insertion paths, chunked (each pass holds both).

    ``x`` is the tensor perturbed: ``model_in`` itself, or its token ids when the
    model takes several inputs (the others are repeated for every row)."""
    ops = adapter.ops
    size = batch_size or _auto_batch(adapter, model_in)
    deletion, insertion = [], []
    for sl in iter_chunks(len(counts), max(1, size // 2)):
        mask = rank_map[None] < counts[sl].reshape((-1,) + (1,) * rank_map.ndim)
        if expand is not None:
            mask = np.expand_dims(mask, expand)
        m = ops.asarray(mask.astype(np.int8), like=x)
        k = len(counts[sl])
        rows = ops.concat([x * (1 - m) + b * m, b * (1 - m) + x * m], axis=0)
        if isinstance(model_in, ModelInput):
            same = np.zeros(2 * k, dtype=np.int64)
            rows = ModelInput(
                tuple(rows if i == model_in.token else ops.take(v, same)
                      for i, v in enumerate(model_in.values)),
                model_in.keys, model_in.token,
            )
        scores = adapter.forward(rows)
        deletion.append(scores[:k])
        insertion.append(scores[k:])
    return np.concatenate(deletion), np.concatenate(insertion)


def _auto_batch(adapter: Adapter, x: Any) -> int:
    per_row = max(1, adapter.bytes_per_row(x))
    return int(max(2, min(MAX_AUTO_BATCH, adapter.pass_budget_bytes() // per_row)))


def _auc(fractions: np.ndarray, curve: np.ndarray) -> float:
    """Trapezoid rule over ``fractions`` (0 to 1): the curve's mean height."""
    return float(np.sum(np.diff(fractions) * (curve[1:] + curve[:-1]) / 2.0))


__all__ = ["deletion_insertion", "faithfulness"]
