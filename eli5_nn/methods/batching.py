"""Batched passes, written once for every method.

Three schedules cover all methods:

* :func:`gradient_pass` - one forward pass per chunk of docs and one backward
  round per target position (several targets of a doc cost one forward pass);
* :func:`integrate` - a weighted sum of input gradients over samples of each
  (doc, class) row (SmoothGrad's noise, Integrated Gradients' path), with the
  (row, sample) units chunked to ``batch_size`` so memory depends on the
  chunk, not on the number of steps. The weights travel in the cotangent;
* :func:`chunked_map` - any per-unit computation without a graph (occlusion
  variants, contextual decomposition of regions), chunked to the memory budget.

All three show the public progress bar (``progress=``) through :func:`progress_bar`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Protocol

import numpy as np
from tqdm import tqdm  # the text bar: works in notebooks without ipywidgets

from ..adapters.base import GradPass, LayerRef, Tensor, cuts_at_layer, iter_chunks
from ..errors import ExplanationError
from .context import MethodContext, Rows

#: show a progress bar when a call takes at least this many passes (progress=None)
PROGRESS_MIN_PASSES = 8


class _NoBar:
    """What :func:`progress_bar` gives when no bar is shown (``tqdm(disable=True)``
    costs about 0.1 ms a call, a few percent of a one-pass call)."""

    def update(self, n: int = 1) -> None:
        """Nothing to show."""

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def progress_bar(ctx: MethodContext, total: int, desc: str) -> tqdm | _NoBar:
    """The progress bar of a call taking ``total`` passes: shown when ``progress=True``,
    or (``progress=None``) when there are at least :data:`PROGRESS_MIN_PASSES`."""
    show = ctx.progress if ctx.progress is not None else total >= PROGRESS_MIN_PASSES
    if not show:
        return _NoBar()
    return tqdm(total=total, desc=desc, leave=False)


def chunked_map(
    ctx: MethodContext, n_units: int, fn: Callable[[slice], np.ndarray], desc: str,
    *, forward_only: bool = True,
) -> np.ndarray:
    """``fn(chunk)`` for chunks of ``range(n_units)`` (numpy results, first axis one
    row per unit), concatenated; chunks sized by ``batch_size`` or the memory
    budget of a pass (``forward_only``: a pass without a graph)."""
    chunks = list(iter_chunks(n_units, ctx.chunk_size(n_units, forward_only=forward_only)))
    parts = []
    with progress_bar(ctx, len(chunks), desc) as bar:
        for sl in chunks:
            parts.append(np.asarray(fn(sl)))
            bar.update(1)
    return np.concatenate(parts, axis=0)


def _assemble(ctx: MethodContext, pieces: list[tuple[np.ndarray, Tensor]]) -> Tensor:
    """Concatenate row pieces and put them in row order."""
    ops = ctx.adapter.ops
    # pieces whose rows follow on from each other (one round's chunks, in order) are
    # joined as they are, without a gather; the check costs no numpy call per piece
    in_order, start = True, 0
    for ids, _ in pieces:
        n = len(ids)
        if n and not (ids[0] == start and ids[n - 1] == start + n - 1
                      and (n < 3 or bool(np.all(np.diff(ids) == 1)))):
            in_order = False
            break
        start += n
    if in_order and len(pieces) == 1:
        return pieces[0][1]
    stacked = ops.concat([t for _, t in pieces], axis=0)
    if in_order:
        return stacked
    order = np.concatenate([ids for ids, _ in pieces])
    return ops.take(stacked, np.argsort(order, kind="stable"), axis=0)


@dataclass
class GradientResult:
    """Per-row gradients of one :func:`gradient_pass`.

    ``layer_acts[ref]`` / ``layer_grads[ref]`` hold one (R, ...) tensor per call
    of the layer in the forward pass.
    """

    scores: np.ndarray
    rows: Rows
    input_grad: Tensor | None
    layer_acts: dict[LayerRef, list[Tensor]]
    layer_grads: dict[LayerRef, list[Tensor]]

    def rows_x(self, ctx: MethodContext) -> Tensor:
        """The input of each row (R, ...)."""
        if np.array_equal(self.rows.doc, np.arange(ctx.n_docs)):
            return ctx.x  # one row per doc, in order: no copy
        return ctx.adapter.ops.take(ctx.x, self.rows.doc, axis=0)


def _cotangent_rounds(per_doc: list[list[int]], n_classes: int, sign: float) -> list[np.ndarray]:
    k = max((len(t) for t in per_doc), default=0)
    rounds = []
    for j in range(k):
        m = np.zeros((len(per_doc), n_classes), dtype=np.float64)
        flat = m.reshape(-1)  # a view: one item set per row, no index arrays
        for d, ts in enumerate(per_doc):
            if j < len(ts):
                flat[d * n_classes + ts[j]] = sign
        rounds.append(m)
    return rounds


@dataclass
class _Pieces:
    """The row pieces of one :func:`gradient_pass`, per chunk and cotangent round."""

    inputs: list[tuple[np.ndarray, Tensor]] = field(default_factory=list)
    acts: dict[tuple[LayerRef, int], list[tuple[np.ndarray, Tensor]]] = field(
        default_factory=dict)
    grads: dict[tuple[LayerRef, int], list[tuple[np.ndarray, Tensor]]] = field(
        default_factory=dict)

    def add(self, ctx: MethodContext, gp: GradPass, layers: Sequence[LayerRef],
            row_ids: np.ndarray, local: np.ndarray, n_inputs: int) -> None:
        """The rows ``local`` of one round's results on a chunk of ``n_inputs`` inputs."""
        every = len(local) == n_inputs  # every input of the chunk: no copy

        def rows_of(t: Tensor) -> Tensor:
            return t if every else ctx.adapter.ops.take(t, local)

        if gp.input_grad is not None:
            self.inputs.append((row_ids, rows_of(gp.input_grad)))
        for ref in layers:
            for i, (a, g) in enumerate(zip(gp.activations[ref], gp.layer_grads[ref],
                                           strict=True)):
                _check_batch_axis(ctx, ref, a, n_inputs)
                self.acts.setdefault((ref, i), []).append((row_ids, rows_of(a)))
                self.grads.setdefault((ref, i), []).append((row_ids, rows_of(g)))

    def layer_results(self, ctx: MethodContext, layers: Sequence[LayerRef]
                      ) -> tuple[dict[LayerRef, list[Tensor]], dict[LayerRef, list[Tensor]]]:
        """Activations and gradients per layer call, in row order."""
        acts: dict[LayerRef, list[Tensor]] = {ref: [] for ref in layers}
        grads: dict[LayerRef, list[Tensor]] = {ref: [] for ref in layers}
        for (ref, i), pieces in self.acts.items():
            acts[ref].append(_assemble(ctx, pieces))
            grads[ref].append(_assemble(ctx, self.grads[(ref, i)]))
        return acts, grads


def _check_batch_axis(ctx: MethodContext, ref: LayerRef, t: Tensor, n_inputs: int) -> None:
    """A layer read per row must keep the batch axis (windowed attention does not)."""
    rows = ctx.adapter.ops.shape(t)[0]
    if rows != n_inputs:
        raise ExplanationError(
            f"FullGrad and CAM methods read the output of layer {ref.name!r} per input, but "
            f"it runs on a reshaped batch ({rows} rows for {n_inputs} inputs, e.g. windowed "
            "attention); use 'grad-cam' on another layer or 'integrated-gradients'"
        )


def gradient_pass(
    ctx: MethodContext,
    *,
    wrt_input: bool,
    layers: Sequence[LayerRef] = (),
    cut_at_layer: bool = False,
) -> GradientResult:
    """Gradients of every requested (doc, class) score, in chunks of docs."""
    n = ctx.n_docs
    per_doc: list[list[int]] = [[] for _ in range(n)]
    scores_parts: list[np.ndarray] = []
    pieces = _Pieces()
    chunk_targets: list[list[int]] = []
    # a pass cut at its layer records no graph before it (CAM methods)
    head_only = cuts_at_layer(cut_at_layer, wrt_input, layers)
    chunks = list(iter_chunks(n, ctx.chunk_size(n, head_only=head_only)))
    with progress_bar(ctx, len(chunks), "explaining") as bar:
        for sl in chunks:
            docs = list(range(sl.start, sl.stop))

            def cotangents(scores: np.ndarray, docs: list[int] = docs) -> list[np.ndarray]:
                resolved = ctx.resolve_targets(scores, docs)
                chunk_targets[:] = [list(t) for t in resolved]
                return _cotangent_rounds(chunk_targets, scores.shape[1], ctx.sign)

            whole = sl.start == 0 and sl.stop == n  # one chunk: the batch itself, no view
            scores, passes = ctx.gradients(
                ctx.x if whole else ctx.x[sl], np.arange(sl.start, sl.stop), cotangents,
                wrt_input=wrt_input, layers=layers, cut_at_layer=cut_at_layer,
            )
            scores_parts.append(scores)
            for d, ts in zip(docs, chunk_targets, strict=True):
                per_doc[d] = ts
            # rows are doc-major: doc d's j-th target is row offsets[d] + j (the docs
            # after this chunk have no targets yet, so their offsets are not needed)
            offsets = list(accumulate((len(t) for t in per_doc[:sl.stop]), initial=0))
            for j, gp in enumerate(passes):
                local = [i for i, ts in enumerate(chunk_targets) if j < len(ts)]
                row_ids = np.array([offsets[docs[i]] + j for i in local], dtype=np.int64)
                pieces.add(ctx, gp, layers, row_ids, np.array(local, dtype=np.int64), len(docs))
            bar.update(1)
    layer_acts, layer_grads = pieces.layer_results(ctx, layers)
    return GradientResult(
        scores=np.concatenate(scores_parts, axis=0),
        rows=Rows.from_targets(per_doc),
        input_grad=_assemble(ctx, pieces.inputs) if pieces.inputs else None,
        layer_acts=layer_acts,
        layer_grads=layer_grads,
    )


def forward_inputs(ctx: MethodContext, x: Tensor, docs: np.ndarray) -> np.ndarray:
    """Scores of input rows ``x`` coming from docs ``docs`` (chunked, no graph)."""
    n = ctx.adapter.ops.shape(x)[0]
    return chunked_map(ctx, n, lambda sl: ctx.forward(x[sl], docs[sl]), "scores")


def forward_rows(ctx: MethodContext) -> tuple[np.ndarray, Rows]:
    """Scores of the docs (chunked, no graph) and the rows to explain."""
    n = ctx.n_docs
    scores = forward_inputs(ctx, ctx.x, np.arange(n))
    return scores, Rows.from_targets(ctx.resolve_targets(scores, list(range(n))))


SampleFn = Callable[[np.ndarray, np.ndarray], Tensor]


class Accumulator(Protocol):
    """Where :func:`integrate` puts the gradients of each chunk of (row, sample) units."""

    def add(self, r_u: np.ndarray, s_u: np.ndarray, scores: np.ndarray, grad: Tensor) -> None:
        """Units ``(r_u, s_u)`` (rows contiguous, samples ascending within a row) with
        their target scores (numpy, signed) and input gradients (framework)."""

    def result(self) -> Tensor:
        """One (R, ...) tensor: the integral of every row."""


class RowSums:
    """The plain sum of each row's (already weighted) gradients, in a few array
    operations per chunk whatever the number of rows in it: the rows whose units
    all lie in the chunk are summed with one reshape, the partial rows at its ends
    on their own. A row is final once a later row has begun; the last row of a
    chunk is carried over to the next one. Memory: the finished rows' sums and
    one carried row, never the gradients of earlier chunks."""

    def __init__(self, ctx: MethodContext, n_rows: int, n_samples: int) -> None:
        self.ops = ctx.adapter.ops
        self.n_samples = n_samples
        self.done: list[Tensor] = []
        self.carry: Tensor | None = None
        self.carry_row = -1

    def _sums(self, r_u: np.ndarray, grad: Tensor) -> tuple[list[int], Tensor]:
        """The rows of ``r_u`` in order and the sum of each one's gradients."""
        ops, n = self.ops, self.n_samples
        runs = row_runs(r_u)
        whole = [stop - start == n for _r, start, stop in runs]
        parts: list[Tensor] = []
        i = 0
        while i < len(runs):
            if not whole[i]:  # a partial row: only at either end of a chunk
                _r, start, stop = runs[i]
                parts.append(ops.sum(grad[start:stop], axis=0, keepdims=True))
                i += 1
                continue
            j = i
            while j < len(runs) and whole[j]:
                j += 1
            start, stop = runs[i][1], runs[j - 1][2]
            block = grad if start == 0 and stop == len(r_u) else grad[start:stop]
            if j - i == 1:
                parts.append(ops.sum(block, axis=0, keepdims=True))
            else:
                shape = ops.shape(block)
                parts.append(ops.sum(ops.reshape(block, (j - i, n, *shape[1:])), axis=1))
            i = j
        return [r for r, _a, _b in runs], ops.concat(parts, axis=0)

    def add(self, r_u: np.ndarray, s_u: np.ndarray, scores: np.ndarray, grad: Tensor) -> None:
        rows, sums = self._sums(r_u, grad)
        first = sums[:1] if len(rows) > 1 else sums
        if self.carry is not None:
            if rows[0] == self.carry_row:  # the carried row goes on in this chunk
                first = first + self.carry
            else:
                self.done.append(self.carry)
        if len(rows) == 1:
            self.carry, self.carry_row = first, rows[0]
            return
        self.done.append(first)
        if len(rows) > 2:
            self.done.append(sums[1:-1])
        self.carry, self.carry_row = sums[-1:], rows[-1]

    def result(self) -> Tensor:
        parts = self.done + ([self.carry] if self.carry is not None else [])
        return self.ops.concat(parts, axis=0)


def row_runs(r_u: np.ndarray) -> list[tuple[int, int, int]]:
    """``(row, start, stop)`` of each run of equal rows in ``r_u``."""
    bounds = np.flatnonzero(np.diff(r_u)) + 1
    starts, stops = np.r_[0, bounds], np.r_[bounds, len(r_u)]
    return [(int(r_u[a]), int(a), int(b)) for a, b in zip(starts, stops, strict=True)]


def integrate(
    ctx: MethodContext,
    rows: Rows,
    samples: SampleFn,
    weights: np.ndarray,
    desc: str,
    accumulator: Accumulator | None = None,
) -> Tensor:
    """``sum_s weights[s] * grad f_{class(r)}(samples(r, s))`` for every row ``r``.

    ``samples(row_ids, sample_ids)`` builds the inputs of a chunk of units.
    Returns an (R, ...) tensor of the input's shape. The weights travel in the
    cotangent; an ``accumulator`` other than the plain row sum may weigh the
    gradients itself (then pass weights of 1).
    """
    n_samples = len(weights)
    units = len(rows) * n_samples
    acc = accumulator if accumulator is not None else RowSums(ctx, len(rows), n_samples)
    chunks = list(iter_chunks(units, ctx.chunk_size(units)))
    with progress_bar(ctx, len(chunks), desc) as bar:
        for sl in chunks:
            u = np.arange(sl.start, sl.stop)
            r_u, s_u = u // n_samples, u % n_samples
            inputs = samples(r_u, s_u)

            def cotangents(scores: np.ndarray, r_u: np.ndarray = r_u, s_u: np.ndarray = s_u
                           ) -> list[np.ndarray]:
                m = np.zeros(scores.shape, dtype=np.float64)
                m[np.arange(len(r_u)), rows.cls[r_u]] = ctx.sign * weights[s_u]
                return [m]

            scores, (gp,) = ctx.gradients(inputs, rows.doc[r_u], cotangents, wrt_input=True)
            assert gp.input_grad is not None
            acc.add(r_u, s_u, ctx.sign * scores[np.arange(len(r_u)), rows.cls[r_u]],
                    gp.input_grad)
            bar.update(1)
    return acc.result()
