"""The input-gradient family: saliency, gradient × input, SmoothGrad, Integrated Gradients."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..adapters.base import Tensor
from ..errors import Eli5NNTypeError, ExplanationError
from ..targets import baseline_batch_shape, parse_baseline
from .batching import forward_inputs, forward_rows, gradient_pass, integrate
from .context import MethodContext, MethodResult, Rows
from .matched import MatchedSum
from .quadrature import MATCHED, RULES, nodes
from .registry import register

#: how the description names each quadrature rule
RULE_NAMES = {"gausslegendre": "Gauss-Legendre", "riemann_trapezoid": "trapezoid rule",
              "riemann_middle": "midpoint rule",
              MATCHED: "matched trapezoid: segment weights fitted to the measured score change"}


@register("gradient", "Gradient", space="input", reduce="max-abs", text="norm")
def gradient(ctx: MethodContext) -> MethodResult:
    """Saliency (Simonyan et al. 2014): ``dy_c / dx``.

    The heatmap is ``max_channels |dy_c/dx|`` as in the paper.
    """
    res = gradient_pass(ctx, wrt_input=True)
    return MethodResult(scores=res.scores, rows=res.rows, attribution=res.input_grad)


@register("gradient-x-input", "Gradient × Input", space="input", text="sum")
def gradient_x_input(ctx: MethodContext) -> MethodResult:
    """Gradient × input (Shrikumar et al. 2016): ``x ⊙ dy_c/dx``.

    On a linear model ``y = w·x + b`` it is exactly ``w ⊙ x``.
    """
    res = gradient_pass(ctx, wrt_input=True)
    return MethodResult(
        scores=res.scores, rows=res.rows, attribution=res.input_grad * res.rows_x(ctx)
    )


def _sample_seeds(random_state: Any, n: int) -> np.ndarray:
    if random_state is None:
        entropy = np.random.SeedSequence().entropy
    elif isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        entropy = int(random_state)
    elif isinstance(random_state, np.random.Generator):
        entropy = int(random_state.integers(0, 2**63 - 1))
    else:
        raise Eli5NNTypeError(
            f"random_state must be None, an int or a numpy Generator, got "
            f"{type(random_state).__name__}"
        )
    return np.random.SeedSequence(entropy).generate_state(n, dtype=np.uint64) % (2**63 - 1)


@register(
    "smoothgrad", "SmoothGrad", space="input", reduce="sum-abs",
    params=("samples", "noise", "random_state"), text="norm",
)
def smoothgrad(ctx: MethodContext) -> MethodResult:
    """SmoothGrad (Smilkov et al. 2017): ``mean_s dy_c/dx (x + eps_s)``.

    ``eps_s ~ N(0, sigma^2)`` with ``sigma = noise * (max(x) - min(x))`` per
    input (the paper's noise level, default 0.15) and ``samples`` draws
    (default 25). With ``noise=0`` it equals the gradient. The noise of sample
    ``s`` depends only on ``random_state`` and ``s``, so results do not depend
    on ``batch_size`` or on the other docs of the batch.
    """
    n_samples = int(ctx.arg("samples"))
    noise = float(ctx.arg("noise"))
    seeds = _sample_seeds(ctx.params.get("random_state"), n_samples)
    ops = ctx.adapter.ops
    scores, rows = forward_rows(ctx)
    x_rows = ops.take(ctx.x, rows.doc, axis=0)
    ndim = len(ops.shape(ctx.x))
    axes = tuple(range(1, ndim))
    span = ops.amax(x_rows, axis=axes, keepdims=True) - ops.amin(x_rows, axis=axes, keepdims=True)
    std = span * noise
    one = x_rows[:1]

    def samples(r_u: np.ndarray, s_u: np.ndarray) -> Tensor:
        # each sample's noise drawn once per chunk, however many rows share it (a
        # chunk of 256 reviews x 1 sample draws once, not 256 times)
        distinct, which = np.unique(s_u, return_inverse=True)
        drawn = ops.concat([ops.normal(one, 1.0, int(seeds[s])) for s in distinct], axis=0)
        eps = drawn if np.array_equal(distinct, s_u) else ops.take(drawn, which)
        return ops.take(x_rows, r_u) + eps * ops.take(std, r_u)

    weights = np.full(n_samples, 1.0 / n_samples)
    grads = integrate(ctx, rows, samples, weights, "SmoothGrad")
    return MethodResult(
        scores=scores, rows=rows, attribution=grads,
        notes=[f"{n_samples} samples, noise level {noise:g}"],
    )


def _baseline_rows(ctx: MethodContext, baseline: Any, doc_of_rows: np.ndarray) -> Tensor:
    ops, x = ctx.adapter.ops, ctx.x
    if ctx.baseline is not None:  # prepared by the modality in the method's input space
        return ops.take(ctx.baseline, doc_of_rows)
    spec = parse_baseline(baseline)
    if spec.kind == "constant":
        return ops.take(ops.zeros_like(x), doc_of_rows) + spec.value
    b = ctx.adapter.as_batch(spec.array)
    if not ops.all_finite(b):
        raise ExplanationError("baseline contains NaN or infinite values")
    shape = ops.shape(x)
    fit = baseline_batch_shape(ops.shape(b), shape)
    if fit == "per-doc":
        return ops.take(b, doc_of_rows)
    if fit == "one":
        b = ops.reshape(b, (1, *shape[1:]))
    return ops.take(b, np.zeros(len(doc_of_rows), dtype=np.int64))


@register(
    "integrated-gradients", "Integrated Gradients", space="input",
    params=("baseline", "steps", "quadrature"), text="sum",
)
def integrated_gradients(ctx: MethodContext) -> MethodResult:
    """Integrated Gradients (Sundararajan et al. 2017):
    ``(x - b) ⊙ ∫_0^1 dy_c/dx (b + a (x - b)) da``.

    The integral uses ``quadrature`` (default Gauss–Legendre) with ``steps``
    nodes (default 50); the rules are those of :mod:`eli5_nn.methods.quadrature`.
    ``"matched_trapezoid"`` weighs equally spaced nodes by the scores and path
    slopes the passes measure (:mod:`eli5_nn.methods.matched`): on ReLU
    networks it meets completeness with far fewer steps.
    Completeness: the attributions sum to ``y_c(x) - y_c(b)``; the error is
    reported in the description.
    """
    steps, rule = int(ctx.arg("steps")), str(ctx.arg("quadrature"))
    alphas = nodes(rule, steps)
    ops = ctx.adapter.ops
    # the docs and their baselines in one forward pass (the baselines' scores serve
    # the completeness check)
    n = ctx.n_docs
    docs = np.arange(n)
    base_docs = _baseline_rows(ctx, ctx.params.get("baseline"), docs)
    both = forward_inputs(ctx, ops.concat([ctx.x, base_docs], axis=0), np.r_[docs, docs])
    scores = both[:n]
    rows = Rows.from_targets(ctx.resolve_targets(scores, list(range(n))))
    if np.array_equal(rows.doc, docs):  # one row per doc, in order: no copies
        x_rows, base = ctx.x, base_docs
    else:
        x_rows, base = ops.take(ctx.x, rows.doc, axis=0), ops.take(base_docs, rows.doc)
    delta = x_rows - base
    if rule == MATCHED:  # weights from the passes' own scores and slopes
        weights, acc = np.ones(len(alphas)), MatchedSum(ctx, delta, len(rows), len(alphas))
    else:
        weights, acc = RULES[rule](steps)[1], None
    ndim = len(ops.shape(ctx.x))
    alpha_t = ops.asarray(alphas.reshape((-1,) + (1,) * (ndim - 1)), like=ctx.x)

    def samples(r_u: np.ndarray, s_u: np.ndarray) -> Tensor:
        return ops.take(base, r_u) + ops.take(alpha_t, s_u) * ops.take(delta, r_u)

    path = integrate(ctx, rows, samples, weights, "Integrated Gradients", acc)
    attribution = delta * path
    # completeness check: sum(attribution) vs sign * (f(x) - f(baseline))
    f_base = both[n:]
    expected = ctx.sign * (scores[rows.doc, rows.cls] - f_base[rows.doc, rows.cls])
    total = ops.to_numpy(ops.sum(attribution, axis=tuple(range(1, ndim))))
    err = np.abs(total - expected)
    rel = float(np.max(err / np.maximum(np.abs(expected), 1e-12))) if len(err) else 0.0
    if not np.all(np.isfinite(total)):
        raise ExplanationError("Integrated Gradients produced non-finite values")
    return MethodResult(
        scores=scores, rows=rows, attribution=attribution,
        notes=[
            f"{steps} steps ({RULE_NAMES.get(rule, rule)})",
            f"completeness error max |sum(attribution) - (f(x) - f(baseline))| = "
            f"{float(np.max(err)) if len(err) else 0.0:.3g} ({100 * rel:.2g}% relative)",
        ],
    )
