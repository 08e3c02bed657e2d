"""Targets, class names, probabilities and baselines: parsed once (rank 2).

Used by the pipeline (:mod:`eli5_nn.explain`) and by the metrics, so both
read ``targets=``, ``target_names=``, the model's outputs and ``baseline=``
the same way. Framework-free: scores and arrays are numpy.

- :func:`normalise_targets`, :func:`target_index`, :func:`class_index`,
  :func:`target_resolver`, :func:`target_name`: what to explain;
- :func:`proba`: probabilities from scores, for an output kind
  (:data:`OUTPUT_KINDS`);
- :func:`parse_baseline`, :func:`baseline_batch_shape`, :func:`baseline_array`:
  what a removed feature becomes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attr
import numpy as np

from .arguments import did_you_mean
from .errors import Eli5NNTypeError, ExplanationError

#: what a model's outputs are; ``None`` = detect from the values
OUTPUT_KINDS = ("logits", "probabilities", "multilabel", "regression")

Resolver = Callable[[np.ndarray, Sequence[int]], list[list[int]]]


# -- targets -------------------------------------------------------------------------------
def normalise_targets(
    targets: Any, target_names: Any, n_docs: int, single: bool
) -> list[list[int] | None] | None:
    """``None`` (choose from the scores) or, per doc, a list of class indices
    or ``None`` (that doc's default: its top class, or ``top_targets`` best).

    ``targets`` is one index or name, a flat list (the same for every doc), or
    one list (or ``None``) per doc; names are looked up in ``target_names``.
    """
    if targets is None:
        return None
    if isinstance(targets, (int, np.integer, str)) and not isinstance(targets, bool):
        targets = [targets]
    fast = _index_table(targets, n_docs)
    if fast is not None:
        return fast
    if isinstance(targets, np.ndarray):
        targets = targets.tolist()
    if not isinstance(targets, (list, tuple)):
        raise Eli5NNTypeError(
            f"targets must be a list of class indices, got {type(targets).__name__}"
        )
    nested: list[Any]
    if len(targets) and all(t is None or isinstance(t, (list, tuple, np.ndarray))
                            for t in targets):
        if len(targets) != n_docs and not (single and len(targets) == 1):
            raise ExplanationError(
                f"targets holds {len(targets)} lists but there are {n_docs} docs; pass one "
                "list of targets per doc (None: its default), or one flat list for all docs"
            )
        nested = list(targets)
    else:
        nested = [targets] * n_docs
    out: list[list[int] | None] = []
    for ts in nested:
        if ts is None:
            out.append(None)
            continue
        if not len(ts):
            raise ExplanationError(
                "targets must not be empty; pass None to explain the top class"
            )
        out.append([target_index(t, target_names) for t in ts])
    return out


def _index_table(targets: Any, n_docs: int) -> list[list[int] | None] | None:
    """The common case in one step: one equal-length list of class indices per doc
    (an (n_docs, k) integer table, k ≥ 1); ``None`` for anything else, which the
    general path reads (and explains when it is wrong)."""
    if not isinstance(targets, (list, tuple, np.ndarray)) or len(targets) != n_docs:
        return None
    if not isinstance(targets, np.ndarray) and not all(
            isinstance(t, (list, tuple)) for t in targets):
        return None
    try:
        table = np.asarray(targets)
    except ValueError:  # ragged
        return None
    if table.ndim != 2 or table.shape[1] == 0 or table.dtype.kind not in "iu":
        return None  # (bool and float tables go the general way, which refuses them)
    return table.tolist()


def _name_index(name: Any, target_names: Any) -> int | None:
    """The class index of ``name`` in ``target_names`` (list or {index: name}), or ``None``."""
    if isinstance(target_names, Mapping):
        for k, v in target_names.items():
            if v == name:
                return int(k)
        return None
    if target_names is not None:
        names = list(target_names)
        if name in names:
            return names.index(name)
    return None


def _unknown_name(name: Any, target_names: Any) -> ExplanationError:
    hint = ""
    if isinstance(name, str) and target_names is not None:
        names = target_names.values() if isinstance(target_names, Mapping) else target_names
        hint = did_you_mean(name, [str(n) for n in names])
    return ExplanationError(
        f"target {name!r} is not a class index nor a name in target_names{hint}; pass an "
        "index, or target_names= (as given to explain_prediction)"
    )


def target_index(t: Any, target_names: Any) -> int:
    """The class index of one target: an int as is, a string looked up in ``target_names``."""
    if isinstance(t, (bool, np.bool_)):
        raise Eli5NNTypeError(f"targets must be class indices, got {t!r}")
    if isinstance(t, (int, np.integer)):
        return int(t)
    if isinstance(t, str):
        found = _name_index(t, target_names)
        if found is None:
            raise _unknown_name(t, target_names)
        return found
    raise Eli5NNTypeError(f"targets must be class indices (int), got {type(t).__name__}")


def check_class(c: int, n_classes: int) -> int:
    """``c`` when it is a class of a model with ``n_classes`` outputs, else an error."""
    if not 0 <= c < n_classes:
        raise ExplanationError(
            f"target {c} is out of range: the model has {n_classes} outputs "
            f"(classes 0..{n_classes - 1})"
        )
    return c


def class_index(label: Any, target_names: Any, n_classes: int) -> int:
    """The class index of ``label`` (an index, or any name in ``target_names``),
    checked against the model's ``n_classes`` outputs."""
    if isinstance(label, (int, np.integer)) and not isinstance(label, (bool, np.bool_)):
        return check_class(int(label), n_classes)
    found = _name_index(label, target_names)
    if found is None:
        raise _unknown_name(label, target_names)
    return check_class(found, n_classes)


def target_resolver(
    per_doc: Sequence[list[int] | None] | None, top_targets: int | None
) -> Resolver:
    """A function ``(scores of some docs, their doc numbers) -> classes per doc``:
    the given targets, else the ``top_targets`` best classes, else the top class."""

    def resolve(scores: np.ndarray, docs: Sequence[int]) -> list[list[int]]:
        n_classes = scores.shape[1]
        if top_targets is not None and top_targets > n_classes:
            raise ExplanationError(
                f"top_targets={top_targets} but the model has {n_classes} outputs"
            )
        best: list[int] | None = None  # the top class of every doc, read at once
        out = []
        for i, d in enumerate(docs):
            given = per_doc[d] if per_doc is not None else None
            if given is not None:
                ts = given
            elif top_targets is not None:
                ts = [int(c) for c in np.argsort(-scores[i], kind="stable")[:top_targets]]
            else:
                if best is None:
                    best = np.argmax(scores, axis=1).tolist()
                ts = [best[i]]
            out.append(ts)
        flat = [t for ts in out for t in ts]
        if flat and not 0 <= min(flat) <= max(flat) < n_classes:
            for t in flat:
                check_class(t, n_classes)
        return out

    return resolve


def target_name(c: int, target_names: Any) -> Any:
    """What ``TargetExplanation.target`` holds for class ``c``: its name, or ``c``."""
    if target_names is None:
        return c
    if isinstance(target_names, Mapping):
        return target_names.get(c, c)
    names = list(target_names)
    if c >= len(names):
        raise ExplanationError(
            f"target_names has {len(names)} names but class {c} was explained"
        )
    return names[c]


# -- probabilities ---------------------------------------------------------------------------
def check_output(output: Any) -> str | None:
    """``output`` when it is ``None`` or one of :data:`OUTPUT_KINDS`."""
    if output is None or output in OUTPUT_KINDS:
        return output
    hint = did_you_mean(output, OUTPUT_KINDS) if isinstance(output, str) else ""
    raise ExplanationError(
        f"output must be None (detect) or one of {', '.join(map(repr, OUTPUT_KINDS))}; "
        f"got {output!r}{hint}"
    )


def _softmax(s: np.ndarray) -> np.ndarray:
    e = np.exp(s - s.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _sigmoid(s: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-s))


def proba(scores: np.ndarray, output: str | None = None) -> np.ndarray | None:
    """Probabilities (N, C) from a model's scores (N, C), or ``None`` when the
    outputs are not class scores.

    ``output``:

    - ``"logits"``: softmax over the classes (a single column has no
      softmax: ``None``);
    - ``"probabilities"``: as given;
    - ``"multilabel"``: a sigmoid per label;
    - ``"regression"``: ``None``;
    - ``None`` (detect, decided once for all rows): rows that already are
      probability distributions (in [0, 1], summing to 1) as given, else the
      softmax. A single column is kept when it lies in [0, 1], else its
      sigmoid (a binary classifier's logit).
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2:
        raise ExplanationError(f"scores must have shape (N, C), got {s.shape}")
    kind = check_output(output)
    if kind is None:
        kind = read_output(s)
    if kind == "regression":
        return None
    if kind == "probabilities":
        return s
    if kind == "multilabel":
        return _sigmoid(s)
    return None if s.shape[1] == 1 else _softmax(s)


def read_output(scores: np.ndarray) -> str:
    """What :func:`proba` reads (N, C) scores as when the model does not say (``output=None``,
    decided once for all rows): ``"probabilities"`` for rows that already are
    distributions (in [0, 1], summing to 1; one column: in [0, 1]), else
    ``"logits"`` (``"multilabel"``, a sigmoid, for one column)."""
    s = np.asarray(scores)
    in_unit = s.size == 0 or bool(s.min() >= 0 and s.max() <= 1)
    if s.ndim == 2 and s.shape[1] == 1:
        return "probabilities" if in_unit else "multilabel"
    # rows summing to 1 within 1e-4 (np.allclose's test, without its cost per call)
    if in_unit and bool(np.all(np.abs(s.sum(axis=1, dtype=np.float64) - 1.0) <= 1e-4 + 1e-5)):
        return "probabilities"
    return "logits"


# -- baselines -------------------------------------------------------------------------------
@attr.s(frozen=True, slots=True, auto_attribs=True)
class Baseline:
    """A parsed ``baseline=``: ``kind`` is ``"constant"`` (``value``), ``"mean"``
    (the doc's mean per channel) or ``"array"`` (``array``: a tensor or array,
    checked by the caller with :func:`baseline_batch_shape`)."""

    kind: str
    value: float = 0.0
    array: Any = None


def parse_baseline(baseline: Any, *, allow_mean: bool = False) -> Baseline:
    """Classify ``baseline=``: ``None`` (zeros), a finite number, ``"mean"``
    (where ``allow_mean``), or anything else as an array or tensor."""
    if baseline is None:
        return Baseline("constant", 0.0)
    if isinstance(baseline, (int, float, np.number)) and not isinstance(baseline, bool):
        value = float(baseline)
        if not np.isfinite(value):
            raise ExplanationError(f"baseline must be finite, got {baseline!r}")
        return Baseline("constant", value)
    if isinstance(baseline, str):
        if allow_mean and baseline == "mean":
            return Baseline("mean")
        allowed = "a number, 'mean' or an array" if allow_mean else "a number or an array"
        raise ExplanationError(f"baseline must be {allowed}, got {baseline!r}")
    if isinstance(baseline, bool):
        raise Eli5NNTypeError(f"baseline must be a number or an array, got {baseline!r}")
    return Baseline("array", array=baseline)


def baseline_batch_shape(
    bshape: tuple[int, ...], shape: tuple[int, ...], *, per_doc: bool = True
) -> str:
    """How a baseline of shape ``bshape`` fits inputs of shape ``shape`` (N, ...):
    ``"per-doc"`` (one per doc: ``bshape == shape``, where ``per_doc``), ``"row"``
    (one input, batch axis of 1 included), or ``"one"`` (one input, no batch axis)."""
    if per_doc and tuple(bshape) == tuple(shape):
        return "per-doc"
    if tuple(bshape) == (1, *shape[1:]):
        return "row"
    if tuple(bshape) == tuple(shape[1:]):
        return "one"
    wanted = f"one input of shape {shape[1:]} (or {(1, *shape[1:])})"
    if per_doc and shape[0] != 1:
        wanted += f", or one per doc {shape}"
    raise ExplanationError(f"baseline has shape {tuple(bshape)}; expected a number, {wanted}")


def baseline_array(
    spec: Baseline, x: np.ndarray, channel: int | None = None
) -> np.ndarray:
    """The baseline as a numpy array of ``x``'s shape (N, ...), for numpy input ``x``.

    ``channel`` is the channel axis of ``x`` (batch axis included), for ``"mean"``;
    ``spec.array`` must already be numpy.
    """
    shape = x.shape
    if spec.kind == "constant":
        return np.full(shape, spec.value)
    if spec.kind == "mean":
        axes = tuple(i for i in range(len(shape)) if i != channel)
        return np.broadcast_to(
            x.astype(np.float64).mean(axis=axes, keepdims=True), shape
        ).copy()
    b = np.asarray(spec.array, dtype=np.float64)
    fit = baseline_batch_shape(b.shape, shape, per_doc=False)
    if fit == "one":
        b = b[None]
    if not np.all(np.isfinite(b)):
        raise ExplanationError("baseline contains NaN or infinite values")
    return np.broadcast_to(b, shape).copy()


__all__ = [
    "OUTPUT_KINDS",
    "Baseline",
    "baseline_array",
    "baseline_batch_shape",
    "check_class",
    "check_output",
    "class_index",
    "normalise_targets",
    "parse_baseline",
    "proba",
    "read_output",
    "target_index",
    "target_name",
    "target_resolver",
]
