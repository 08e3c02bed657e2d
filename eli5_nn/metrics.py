"""Can an explanation be trusted? Faithfulness scores and a sanity check.

* :func:`deletion_insertion` - remove (or insert) the input's features in the
  order an explanation ranks them and follow the target's probability (the
  deletion and insertion games of Petsiuk et al. 2018, "RISE"; Samek et al.
  2017, "Evaluating the visualization of what a deep neural network has learned").
* :func:`faithfulness` - the two areas for every target of an explanation, as
  stored in ``NNTargetExplanation.faithfulness``.
* :func:`randomization_check` - the cascading model-parameter randomisation
  test of Adebayo et al. 2018, "Sanity Checks for Saliency Maps".

Framework-neutral: the model is reached through its adapter. Perturbed inputs
are built in the framework from small numpy masks, a chunk of steps per
forward pass; only scores come back as numpy.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from eli5.base import Explanation, TargetExplanation

from .adapters import get_adapter
from .adapters.base import Adapter, ExplanationError, ModelInput, Tensor, iter_chunks

logger = logging.getLogger(__name__)

#: default number of steps: one per feature, at most this many
MAX_DEFAULT_STEPS = 100
#: token id that removes a token when neither ``pad_value`` nor the embedding's padding id is known
DEFAULT_PAD_VALUE = 0
#: most inputs in one forward pass when ``batch_size`` is not given
MAX_AUTO_BATCH = 256


@dataclass(frozen=True)
class DeletionInsertion:
    """Deletion and insertion curves of one target.

    Attributes
    ----------
    target : int
        Index of the class whose probability is followed.
    n_features : int
        Number of features (pixels, patches or tokens) that were ranked.
    fractions : numpy.ndarray
        (steps + 1,) share of the features removed (deletion) or inserted
        (insertion), from 0 to 1.
    deletion_curve, insertion_curve : numpy.ndarray
        (steps + 1,) the target's probability at each fraction. Deletion starts
        at the prediction on the doc; insertion starts from the baseline and
        ends at the prediction on the doc.
    deletion_auc, insertion_auc : float
        Area under each curve (trapezoid rule over ``fractions``), in [0, 1].
        A faithful explanation has a low deletion and a high insertion AUC.
    """

    target: int
    n_features: int
    fractions: np.ndarray
    deletion_curve: np.ndarray
    insertion_curve: np.ndarray
    deletion_auc: float
    insertion_auc: float

    def as_dict(self) -> dict[str, float]:
        """``{"deletion_auc": ..., "insertion_auc": ...}``."""
        return {"deletion_auc": self.deletion_auc, "insertion_auc": self.insertion_auc}


@dataclass(frozen=True)
class RandomizationCheck:
    """Result of :func:`randomization_check`.

    Attributes
    ----------
    method : str
        The attribution method checked.
    target : int
        Index of the class explained, the same for every model.
    cascading : bool
        Whether layers were randomised cumulatively (top down) or one at a time.
    layers : list of str
        The layer randomised at each step, top down (nearest the output first).
    correlations : numpy.ndarray
        Spearman rank correlation between the original heatmap and the heatmap
        after each step. A method that depends on the model falls towards 0.
    original : numpy.ndarray
        The heatmap of the trained model.
    heatmaps : list of numpy.ndarray
        The heatmap after each step.
    """

    method: str
    target: int
    cascading: bool
    layers: list[str]
    correlations: np.ndarray
    original: np.ndarray
    heatmaps: list[np.ndarray]

    def as_dict(self) -> dict[str, float]:
        """``{layer name: rank correlation}`` in the order the layers were randomised."""
        return {name: float(c) for name, c in zip(self.layers, self.correlations, strict=True)}


# -- deletion / insertion ------------------------------------------------------------------
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

    Returns
    -------
    DeletionInsertion
        The curves and their areas (``deletion_auc``, ``insertion_auc``).

    Probabilities are the model's outputs where they already are probabilities
    (in [0, 1], rows summing to 1), else the softmax of the scores (a sigmoid
    for a single output), as in the explanation's ``proba``.
    """
    _check_positive_int("steps", steps)
    _check_positive_int("batch_size", batch_size)
    adapter = get_adapter(model)
    with adapter.session():
        model_in = adapter.as_batch(doc)
        x = model_in.ids if isinstance(model_in, ModelInput) else model_in
        shape = _checked_shape(adapter, x, "deletion_insertion")
        scores0 = adapter.forward(model_in)
        score_map, cls = _map_and_target(explanation, target, target_names, scores0)
        ids = None
        if not adapter.is_floating(x):
            if baseline is not None:
                raise ValueError(
                    "baseline= applies to float input; for token ids, removed tokens are "
                    "replaced by pad_value= (default 0)"
                )
            if pad_value is None:
                known = [pad for _, _, pad in adapter.embedding_layers() if pad is not None]
                pad_value = known[0] if known else DEFAULT_PAD_VALUE
                logger.info("eli5_nn: deletion/insertion removes tokens with pad_value=%d",
                            pad_value)
            ids = adapter.ops.to_numpy(x)[0]
        elif pad_value is not None:
            raise ValueError("pad_value= applies to token-id input; for float input use baseline=")
        channel = adapter.channel_axis % len(shape) if len(shape) >= 3 and ids is None else None
        gid, feature_scores, expand = _features(score_map, shape, channel, ids, pad_value,
                                                patch_size)
        n = len(feature_scores)
        if steps is None:
            steps = min(n, MAX_DEFAULT_STEPS)
        if steps > n:
            raise ValueError(f"steps must be at most the number of features ({n}), got {steps}")
        rng = np.random.default_rng(random_state)
        order = np.lexsort((rng.random(n), -feature_scores))
        rank = np.empty(n, dtype=np.int64)
        rank[order] = np.arange(n)
        rank_map = np.where(gid >= 0, rank[np.maximum(gid, 0)], n)
        counts = np.rint(np.arange(steps + 1) * n / steps).astype(np.int64)
        if ids is None:
            b = adapter.ops.asarray(_baseline(adapter, x, shape, channel, baseline), like=x)
        else:
            b = adapter.ops.asarray(np.full(shape, pad_value), like=x)
        deletion, insertion = _curves(adapter, model_in, x, b, rank_map, counts, expand,
                                      batch_size)
    proba = _proba(np.concatenate([scores0, deletion, insertion]))[:, cls]
    del_curve, ins_curve = proba[1:steps + 2], proba[steps + 2:]
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
        raise TypeError("faithfulness scores every target of the explanation; do not pass target=")
    if isinstance(explanation, TargetExplanation):
        targets = [explanation]
    elif isinstance(explanation, Explanation):
        targets = list(explanation.targets or [])
    else:
        raise TypeError(
            f"faithfulness expects an eli5 Explanation or TargetExplanation, got "
            f"{type(explanation).__name__}; for an array map use deletion_insertion()"
        )
    return [deletion_insertion(model, doc, te, **kwargs).as_dict() for te in targets]


def _curves(
    adapter: Adapter, model_in: Any, x: Tensor, b: Tensor, rank_map: np.ndarray,
    counts: np.ndarray, expand: int | None, batch_size: int | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Scores along the deletion and insertion paths, chunked (each pass holds both).

    ``x`` is the tensor perturbed: ``model_in`` itself, or its token ids when the
    model takes several inputs (the others are repeated for every row)."""
    ops = adapter.ops
    size = batch_size or _auto_batch(adapter, model_in)
    per_pass = max(1, size // 2)
    deletion, insertion = [], []
    for sl in iter_chunks(len(counts), per_pass):
        mask = rank_map[None] < counts[sl].reshape((-1,) + (1,) * rank_map.ndim)
        if expand is not None:
            mask = np.expand_dims(mask, expand)
        m = ops.asarray(mask.astype(np.int8), like=x)
        removed = x * (1 - m) + b * m
        inserted = b * (1 - m) + x * m
        k = len(counts[sl])
        rows = ops.concat([removed, inserted], axis=0)
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


def _features(
    score_map: np.ndarray, shape: tuple[int, ...], channel: int | None, ids: np.ndarray | None,
    pad_value: int | None, patch_size: int | tuple[int, ...] | None,
) -> tuple[np.ndarray, np.ndarray, int | None]:
    """Feature id per map position (-1: not a feature), each feature's score, and the
    axis (with the batch axis) where the mask gets the channel axis back."""
    full = shape[1:]
    spatial = tuple(s for i, s in enumerate(shape) if i not in (0, channel))
    values = np.asarray(score_map, dtype=np.float64)
    expand = None
    if ids is not None and pad_value is not None:
        valid = ids != pad_value
        if values.shape == full:
            pass
        elif values.ndim == 1 and ids.ndim == 1 and values.shape[0] == int(valid.sum()):
            spread = np.zeros(full)
            spread[valid] = values
            values = spread
        else:
            raise ValueError(
                f"the explanation's map has shape {values.shape}; for token ids of shape "
                f"{shape} expected {full} or one score per non-pad token "
                f"({int(valid.sum())} with pad_value={pad_value}). Was it computed for this "
                "doc, with this pad_value?"
            )
    elif values.shape == full:
        valid = np.ones(full, dtype=bool)
    elif channel is not None and values.shape == spatial:
        valid = np.ones(spatial, dtype=bool)
        expand = channel
    else:
        wanted = f"{spatial} (one score per position) or {full}" if channel is not None else full
        raise ValueError(
            f"the explanation's map has shape {values.shape} but the doc has shape {shape}: "
            f"expected {wanted}. Was the explanation computed for this doc?"
        )
    cells = _patch_cells(values.shape, patch_size)
    groups, gid_valid = np.unique(cells[valid], return_inverse=True)
    gid = np.full(values.shape, -1, dtype=np.int64)
    gid[valid] = gid_valid.ravel()
    sums = np.bincount(gid_valid.ravel(), weights=values[valid], minlength=len(groups))
    sizes = np.bincount(gid_valid.ravel(), minlength=len(groups))
    if len(groups) == 0:
        raise ValueError("the doc has no features to remove (every token is padding)")
    return gid, sums / sizes, expand


def _patch_cells(map_shape: tuple[int, ...], patch_size: int | tuple[int, ...] | None
                 ) -> np.ndarray:
    """The patch index of every map position (patches of ``patch_size``, row-major)."""
    if patch_size is None:
        patch: tuple[int, ...] = (1,) * len(map_shape)
    elif isinstance(patch_size, bool):
        patch = ()
    elif isinstance(patch_size, (int, np.integer)):
        patch = (int(patch_size),) * len(map_shape)
    else:
        try:
            patch = tuple(int(p) for p in patch_size)
        except (TypeError, ValueError):
            patch = ()
    if len(patch) != len(map_shape) or any(p < 1 for p in patch):
        raise ValueError(
            f"patch_size must be a positive int or {len(map_shape)} positive ints (one per "
            f"axis of the map {map_shape}), got {patch_size!r}"
        )
    grid = np.indices(map_shape)
    n_cells = tuple(-(-s // p) for s, p in zip(map_shape, patch, strict=True))
    coords = tuple(g // p for g, p in zip(grid, patch, strict=True))
    return np.ravel_multi_index(coords, n_cells)


def _baseline(adapter: Adapter, x: Tensor, shape: tuple[int, ...], channel: int | None,
              baseline: Any) -> np.ndarray:
    """The baseline input (numpy, the doc's shape) for float input."""
    if baseline is None or isinstance(baseline, (int, float, np.number)) and not isinstance(
        baseline, bool
    ):
        value = 0.0 if baseline is None else float(baseline)
        if not np.isfinite(value):
            raise ValueError(f"baseline must be finite, got {baseline!r}")
        return np.full(shape, value)
    if isinstance(baseline, str):
        if baseline != "mean":
            raise ValueError(f"baseline must be a number, 'mean' or an array, got {baseline!r}")
        x_np = adapter.ops.to_numpy(x).astype(np.float64)
        axes = tuple(i for i in range(len(shape)) if i != channel)
        return np.broadcast_to(x_np.mean(axis=axes, keepdims=True), shape).copy()
    b = np.asarray(baseline if isinstance(baseline, np.ndarray)
                   else adapter.ops.to_numpy(adapter.as_batch(baseline)), dtype=np.float64)
    if b.shape == shape[1:]:
        b = b[None]
    if b.shape != shape:
        raise ValueError(
            f"baseline has shape {b.shape}; expected a number, 'mean', or one input of shape "
            f"{shape[1:]} (or {shape})"
        )
    if not np.all(np.isfinite(b)):
        raise ValueError("baseline contains NaN or infinite values")
    return b


# -- model-parameter randomisation ---------------------------------------------------------
def randomization_check(
    model: Any,
    doc: Any,
    method: str = "gradient",
    *,
    target: Any = None,
    cascading: bool = True,
    random_state: int = 0,
    **kwargs: Any,
) -> RandomizationCheck:
    """The model-parameter randomisation test (Adebayo et al. 2018).

    An explanation that reflects the model must change when the model's
    learned parameters are destroyed. On a copy of the model, the layers with
    trainable parameters are randomised from the top (nearest the output)
    down; after each step the copy is explained again (same method, target
    and arguments) and the Spearman rank correlation between the original and
    the new heatmap is recorded. The user's model is never changed.

    Randomising a layer replaces each of its trainable parameter tensors by
    Gaussian values with that tensor's own mean and standard deviation, so
    activations keep their scale (BatchNorm running statistics are kept).

    Parameters
    ----------
    model : torch.nn.Module or keras.Model
        The classifier.
    doc : numpy.ndarray or framework tensor
        One input with a leading batch axis of 1.
    method : str
        Attribution method, as in ``explain_prediction`` (default ``"gradient"``).
    target : int or class name, optional
        Class to explain with every model; default the trained model's top class.
    cascading : bool
        ``True`` (default): randomise cumulatively, top down. ``False``:
        randomise one layer at a time on a fresh copy (the "independent" test).
    random_state : int
        Seed of the random parameters (layer ``i`` uses seed ``random_state + i``).
    **kwargs
        Passed to ``explain_prediction`` (``layer``, ``steps``, ``tokens``...),
        except ``targets`` / ``top_targets``.

    Returns
    -------
    RandomizationCheck
        The layers in the order they were randomised, the rank correlation
        after each step and the heatmaps. A map where all values are equal has
        no ranking: its correlation is reported as 0 with a warning.
    """
    from .explain import explain_prediction_nn

    for name in ("targets", "top_targets"):
        if name in kwargs:
            raise TypeError(f"randomization_check explains one class: pass target= instead of "
                            f"{name}=")
    adapter = get_adapter(model)
    with adapter.session():
        x = adapter.as_batch(doc)
        _checked_shape(adapter, x.ids if isinstance(x, ModelInput) else x, "randomization_check")
        scores = adapter.forward(x)
        if target is None:
            cls = int(np.argmax(scores[0]))
        else:
            cls = _class_index(target, kwargs.get("target_names"), scores.shape[1])
        layers = adapter.parameter_layers(x)
    if not layers:
        raise ExplanationError(
            f"{adapter.model_name()} has no layer with trainable parameters to randomise"
        )

    def heatmap(m: Any) -> np.ndarray:
        expl = explain_prediction_nn(m, doc, method=method, targets=[cls], **kwargs)
        return np.asarray(expl.targets[0].heatmap, dtype=np.float64)

    original = heatmap(model)
    copy = adapter.copy_model()
    maps, corrs = [], []
    for i, ref in enumerate(layers):
        if not cascading and i:
            copy = adapter.copy_model()
        adapter.randomize_layer(copy, ref, random_state + i)
        maps.append(heatmap(copy))
        corrs.append(_spearman(original, maps[-1], ref.name))
    return RandomizationCheck(
        method=method, target=cls, cascading=cascading, layers=[r.name for r in layers],
        correlations=np.asarray(corrs), original=original, heatmaps=maps,
    )


def _spearman(a: np.ndarray, b: np.ndarray, where: str) -> float:
    ra, rb = _ranks(a), _ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        warnings.warn(
            f"a heatmap is constant after randomising {where!r}: no ranking to compare; "
            "its rank correlation is reported as 0",
            stacklevel=3,
        )
        return 0.0
    return float(np.corrcoef(ra, rb)[0, 1])


def _ranks(a: np.ndarray) -> np.ndarray:
    """Ranks of the values of ``a`` (flattened), ties given their average rank."""
    _, inverse, counts = np.unique(np.ravel(a), return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return ((ends - counts + ends - 1) / 2.0)[inverse.ravel()]


# -- shared helpers ------------------------------------------------------------------------
def _check_positive_int(name: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _checked_shape(adapter: Adapter, x: Tensor, what: str) -> tuple[int, ...]:
    shape = adapter.ops.shape(x)
    if len(shape) < 2 or shape[0] != 1:
        raise ValueError(
            f"{what} takes one input with a leading batch axis of 1 and at least one feature "
            f"axis; got shape {shape}. Add the batch axis with x[None]."
        )
    if adapter.is_floating(x) and not adapter.ops.all_finite(x):
        raise ValueError("the input contains NaN or infinite values")
    return shape


def _map_and_target(explanation: Any, target: Any, target_names: Any, scores: np.ndarray
                    ) -> tuple[np.ndarray, int]:
    """The feature-score map and the class index it is evaluated for."""
    n_classes = scores.shape[1]
    if isinstance(explanation, Explanation):
        targets = list(explanation.targets or [])
        if not targets:
            raise ValueError("the explanation has no targets; explain the doc first")
        if target is None:
            chosen = targets[0]
        else:
            found = [t for t in targets if t.target == target]
            if not found:
                raise ValueError(
                    f"target {target!r} is not among the explanation's targets "
                    f"{[t.target for t in targets]}"
                )
            chosen = found[0]
        return _map_and_target(chosen, None, target_names, scores)
    if isinstance(explanation, TargetExplanation):
        if explanation.heatmap is None:
            raise ValueError(
                "the target explanation has no heatmap to rank features by; pass an "
                "explanation from eli5_nn or an array of feature scores"
            )
        score_map = np.asarray(explanation.heatmap, dtype=np.float64)
        label = explanation.target if target is None else target
        cls = _class_index(label, target_names, n_classes)
    else:
        try:
            score_map = np.asarray(explanation, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"explanation must be an eli5 Explanation, a TargetExplanation or an array of "
                f"feature scores, got {type(explanation).__name__}"
            ) from exc
        cls = (int(np.argmax(scores[0])) if target is None
               else _class_index(target, target_names, n_classes))
    if not np.all(np.isfinite(score_map)):
        raise ValueError("the explanation's map contains NaN or infinite values")
    return score_map, cls


def _class_index(label: Any, target_names: Any, n_classes: int) -> int:
    if isinstance(label, (int, np.integer)) and not isinstance(label, (bool, np.bool_)):
        c = int(label)
    elif isinstance(target_names, Mapping) and label in target_names.values():
        c = int(next(k for k, v in target_names.items() if v == label))
    elif target_names is not None and not isinstance(target_names, Mapping) and label in list(
        target_names
    ):
        c = list(target_names).index(label)
    else:
        raise ValueError(
            f"target {label!r} is not a class index, and not a name in target_names; pass "
            "target_names= (as given to explain_prediction) or a class index"
        )
    if not 0 <= c < n_classes:
        raise ValueError(
            f"target {c} is out of range: the model has {n_classes} outputs "
            f"(classes 0..{n_classes - 1})"
        )
    return c


def _proba(scores: np.ndarray) -> np.ndarray:
    """Probabilities from scores (N, C): kept where they already are, else softmax
    (sigmoid for a single output), decided once for all rows."""
    s = np.asarray(scores, dtype=np.float64)
    in_unit = bool(np.all((s >= 0) & (s <= 1)))
    if s.shape[1] == 1:
        return s if in_unit else 1.0 / (1.0 + np.exp(-s))
    if in_unit and np.allclose(s.sum(axis=1), 1.0, atol=1e-4):
        return s
    e = np.exp(s - s.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _auc(fractions: np.ndarray, curve: np.ndarray) -> float:
    """Trapezoid rule over ``fractions`` (0 to 1): the curve's mean height."""
    return float(np.sum(np.diff(fractions) * (curve[1:] + curve[:-1]) / 2.0))
