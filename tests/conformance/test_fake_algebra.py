"""Each method's algebra on the numpy fake adapter, with closed forms, no framework.

The models of :mod:`tests.fake_adapter` have hand-computable explanations:
the gradient of a linear model is its weights, Integrated Gradients is
``(x - b) * w`` exactly, Grad-CAM of conv → ReLU → mean pool → dense is
``(V_c / HW) * A``. ``test_runs_without_any_framework`` runs this module and
``test_numpy.py`` (the conformance suite through the whole pipeline) again in a
Python where importing torch, TensorFlow, JAX or Keras fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from eli5_nn.methods import METHODS, MethodContext, MethodResult
from eli5_nn.methods.context import EmbeddingSpace
from eli5_nn.methods.quadrature import RULES
from tests.fake_adapter import FakeAdapter, conv_model, linear_model, text_model

ROOT = Path(__file__).resolve().parents[2]
RNG = np.random.default_rng(7)
X = RNG.normal(size=(2, 3, 4, 4))
IDS = np.array([[3, 5, 7, 5, 0, 0], [9, 1, 2, 4, 6, 0]])


def run(method: str, adapter: FakeAdapter, x: np.ndarray, targets: Any = (0,), *,
        sign: float = 1.0, layer: str | None = None, batch_size: int | None = None,
        space: EmbeddingSpace | None = None, embedded_baseline: Any = None,
        **params: Any) -> MethodResult:
    """``method`` on ``x`` through a :class:`MethodContext`, the pipeline left out."""
    ctx = MethodContext(
        adapter=adapter, x=x, resolve_targets=lambda _s, docs: [list(targets) for _ in docs],
        sign=sign, layer=None if layer is None else adapter.find_layer(layer),
        batch_size=batch_size, progress=False, params=params, space=space,
        baseline=embedded_baseline,
    )
    return METHODS[method].fn(ctx)


def weights(adapter: FakeAdapter, c: int) -> np.ndarray:
    return adapter.model.layers[-1].w[c].reshape(X.shape[1:])


# -- the fake itself ----------------------------------------------------------------------------
@pytest.mark.parametrize("make", [conv_model, linear_model])
def test_fake_gradients_match_finite_differences(make: Any) -> None:
    adapter = FakeAdapter(make())
    g = run("gradient", adapter, X, targets=(1,)).attribution
    eps, flat = 1e-6, X.reshape(len(X), -1)
    for j in range(0, flat.shape[1], 7):
        step = np.zeros_like(flat)
        step[:, j] = eps
        up = adapter.forward((flat + step).reshape(X.shape))[:, 1]
        down = adapter.forward((flat - step).reshape(X.shape))[:, 1]
        np.testing.assert_allclose(g.reshape(len(X), -1)[:, j], (up - down) / (2 * eps),
                                   rtol=1e-5, atol=1e-7)


def _space(adapter: FakeAdapter) -> tuple[EmbeddingSpace, np.ndarray]:
    emb = adapter.find_layer("embedding")
    space = EmbeddingSpace(inputs=IDS, layer=emb, ids=IDS, real=IDS != 0, pad_id=0)
    return space, adapter.activations(IDS, [emb])[emb][0]


@pytest.mark.parametrize("options", [{"attention": True}, {"self_attention": 2}])
def test_fake_attention_gradient_matches_finite_differences(options: dict[str, Any]) -> None:
    adapter = FakeAdapter(text_model(**options))
    space, e = _space(adapter)
    g = run("gradient", adapter, e, targets=(1,), space=space).attribution
    emb, eps = space.layer, 1e-6
    for t, d in [(0, 0), (2, 3), (4, 1)]:
        step = np.zeros_like(e)
        step[:, t, d] = eps
        up = adapter.forward(IDS, replace=(emb, e + step))[:, 1]
        down = adapter.forward(IDS, replace=(emb, e - step))[:, 1]
        np.testing.assert_allclose(g[:, t, d], (up - down) / (2 * eps), rtol=1e-5, atol=1e-8)


# -- the gradient family on a linear model --------------------------------------------------------
def test_gradient_of_a_linear_model_is_its_weights_for_every_target() -> None:
    adapter = FakeAdapter(linear_model())
    res = run("gradient", adapter, X, targets=(2, 0))
    assert list(res.rows.doc) == [0, 0, 1, 1] and list(res.rows.cls) == [2, 0, 2, 0]
    for r, c in enumerate(res.rows.cls):
        np.testing.assert_allclose(res.attribution[r], weights(adapter, c), rtol=1e-12)


def test_gradient_x_input_of_a_linear_model_is_w_times_x() -> None:
    adapter = FakeAdapter(linear_model())
    res = run("gradient-x-input", adapter, X, targets=(1,))
    np.testing.assert_allclose(res.attribution, X * weights(adapter, 1), rtol=1e-12)


@pytest.mark.parametrize("rule", sorted(RULES))
@pytest.mark.parametrize("steps", [1, 2, 7])
@pytest.mark.parametrize("baseline", [None, 0.5, "array"])
def test_integrated_gradients_of_a_linear_model_is_exact(rule: str, steps: int,
                                                         baseline: Any) -> None:
    adapter = FakeAdapter(linear_model())
    b = RNG.normal(size=X.shape[1:]) if isinstance(baseline, str) else baseline
    res = run("integrated-gradients", adapter, X, targets=(1,), steps=steps, quadrature=rule,
              baseline=b)
    ref = 0.0 if b is None else b
    np.testing.assert_allclose(res.attribution, (X - ref) * weights(adapter, 1),
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("rule", sorted(RULES))
def test_integrated_gradients_completeness_on_a_relu_model(rule: str) -> None:
    """The ReLU kinks make the integrand a step function: the error falls like 1/steps."""
    adapter = FakeAdapter(conv_model())
    res = run("integrated-gradients", adapter, X, targets=(0, 2), steps=256, quadrature=rule)
    expected = res.scores[res.rows.doc, res.rows.cls] - adapter.forward(np.zeros_like(X))[
        res.rows.doc, res.rows.cls]
    np.testing.assert_allclose(res.attribution.sum(axis=(1, 2, 3)), expected, rtol=5e-3)


def test_smoothgrad_of_a_linear_model_is_its_weights_at_any_noise() -> None:
    adapter = FakeAdapter(linear_model())
    res = run("smoothgrad", adapter, X, targets=(2,), samples=5, noise=3.0, random_state=1)
    np.testing.assert_allclose(res.attribution, np.broadcast_to(weights(adapter, 2), X.shape),
                               rtol=1e-10)


def test_smoothgrad_reductions_and_seeds() -> None:
    adapter = FakeAdapter(conv_model())
    grad = run("gradient", adapter, X).attribution
    quiet = run("smoothgrad", adapter, X, samples=4, noise=0.0, random_state=0).attribution
    np.testing.assert_allclose(quiet, grad, rtol=1e-12)  # no noise: the gradient
    a = run("smoothgrad", adapter, X, samples=4, noise=0.5, random_state=3).attribution
    b = run("smoothgrad", adapter, X, samples=4, noise=0.5, random_state=3,
            batch_size=3).attribution
    c = run("smoothgrad", adapter, X, samples=4, noise=0.5, random_state=4).attribution
    np.testing.assert_allclose(a, b, rtol=1e-12)  # the seed, not the chunking, fixes the noise
    assert not np.allclose(a, c)


# -- class activation maps ------------------------------------------------------------------------
def _maps(adapter: FakeAdapter) -> np.ndarray:
    """The ReLU output A (N, K, H, W) of the conv model."""
    conv, relu = adapter.model.layers[:2]
    return relu.forward(conv.forward(X))


def test_grad_cam_is_the_hand_formula() -> None:
    adapter = FakeAdapter(conv_model())
    a = _maps(adapter)
    res = run("grad-cam", adapter, X, targets=(2, 1), layer="relu")
    for r, c in enumerate(res.rows.cls):
        w = adapter.model.layers[-1].w[c] / (a.shape[2] * a.shape[3])  # d score / d A_k
        np.testing.assert_allclose(res.attribution[r], w[:, None, None] * a[res.rows.doc[r]],
                                   rtol=1e-12)


def test_grad_cam_pp_is_the_hand_formula() -> None:
    adapter = FakeAdapter(conv_model())
    a = _maps(adapter)
    res = run("grad-cam++", adapter, X, targets=(1,), layer="relu")
    g = np.broadcast_to((adapter.model.layers[-1].w[1] / 16.0)[None, :, None, None], a.shape)
    denom = 2 * g**2 + a.sum(axis=(2, 3), keepdims=True) * g**3
    alpha = np.where(denom != 0, g**2 / np.where(denom != 0, denom, 1), 0)
    w = (alpha * np.maximum(g, 0)).sum(axis=(2, 3), keepdims=True)
    np.testing.assert_allclose(res.attribution, w * a, rtol=1e-12)


# -- FullGrad -------------------------------------------------------------------------------------
def test_fullgrad_of_a_linear_model_is_w_times_x_plus_the_spread_bias() -> None:
    adapter = FakeAdapter(linear_model())
    res = run("fullgrad", adapter, X, targets=(1,))
    bias = adapter.model.layers[-1].bias[1]
    np.testing.assert_allclose(res.attribution, X * weights(adapter, 1) + bias / X[0].size,
                               rtol=1e-12)


def test_fullgrad_sums_to_the_score_on_a_relu_model() -> None:
    adapter = FakeAdapter(conv_model())
    res = run("fullgrad", adapter, X, targets=(0, 1, 2))
    np.testing.assert_allclose(res.attribution.sum(axis=(1, 2, 3)),
                               res.scores[res.rows.doc, res.rows.cls], rtol=1e-10)


# -- shared invariants -----------------------------------------------------------------------
SIGNED = {
    "gradient": {}, "gradient-x-input": {}, "integrated-gradients": {"steps": 5},
    "smoothgrad": {"samples": 3, "random_state": 0}, "fullgrad": {},
    "grad-cam": {"layer": "relu"},
}


@pytest.mark.parametrize("method", sorted(SIGNED))
def test_counterfactual_negates_the_attribution(method: str) -> None:
    adapter = FakeAdapter(conv_model())
    kw = dict(SIGNED[method])
    plain = run(method, adapter, X, targets=(1,), **kw).attribution
    against = run(method, adapter, X, targets=(1,), sign=-1.0, **kw).attribution
    np.testing.assert_allclose(against, -plain, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("method", sorted(SIGNED) + ["grad-cam++"])
def test_several_targets_and_chunks_equal_each_alone(method: str) -> None:
    adapter = FakeAdapter(conv_model())
    kw = dict(SIGNED.get(method, {"layer": "relu"}))
    both = run(method, adapter, X, targets=(2, 0), **kw)
    for j, c in enumerate((2, 0)):
        alone = run(method, adapter, X, targets=(c,), batch_size=1, **kw)
        np.testing.assert_allclose(both.attribution[j::2], alone.attribution, rtol=1e-12)


# -- text -------------------------------------------------------------------------------------
def test_occlusion_of_a_token_sum_model_is_each_tokens_term() -> None:
    adapter = FakeAdapter(text_model())
    space, e = _space(adapter)
    res = run("occlusion", adapter, e, targets=(1,), space=space)
    _, token_fc, _, fc = adapter.model.layers
    term = e @ token_fc.w.T @ fc.w[1] / IDS.shape[1]  # each token's share of the score
    np.testing.assert_allclose(res.attribution, np.where(IDS != 0, term - 0.0, 0.0),
                               rtol=1e-10, atol=1e-12)


def test_text_integrated_gradients_from_padding_is_exact() -> None:
    adapter = FakeAdapter(text_model())
    space, e = _space(adapter)
    pad = adapter.activations(np.zeros_like(IDS), [space.layer])[space.layer][0]
    res = run("integrated-gradients", adapter, e, targets=(0,), space=space,
              embedded_baseline=pad, steps=3)
    _, token_fc, _, fc = adapter.model.layers
    grad = token_fc.w.T @ fc.w[0] / IDS.shape[1]
    np.testing.assert_allclose(res.attribution, (e - pad) * grad, rtol=1e-10, atol=1e-12)


def test_attention_reads_the_models_weights() -> None:
    adapter = FakeAdapter(text_model(attention=True))
    space, e = _space(adapter)
    res = run("attention", adapter, e, targets=(0,), space=space)
    emb, token_fc, relu, attention, _ = adapter.model.layers
    w = attention.weights(relu.forward(token_fc.forward(emb.forward(IDS))))
    np.testing.assert_allclose(res.attribution, w * (IDS != 0), rtol=1e-12)


def test_attention_reads_the_last_self_attention_averaged_over_queries() -> None:
    adapter = FakeAdapter(text_model(relu=True, self_attention=2))
    space, e = _space(adapter)
    res = run("attention", adapter, e, targets=(1,), space=space)
    weights = [w for _, w in adapter.attention_weights(IDS)]
    np.testing.assert_allclose(res.attribution, weights[-1].mean(axis=1) * (IDS != 0),
                               rtol=1e-12)


def test_attention_rollout_is_the_product_of_the_mixed_layers() -> None:
    adapter = FakeAdapter(text_model(relu=True, self_attention=2))
    space, e = _space(adapter)
    res = run("attention-rollout", adapter, e, targets=(0,), space=space)
    eye = np.eye(IDS.shape[1])
    first, second = (0.5 * w + 0.5 * eye for _, w in adapter.attention_weights(IDS))
    rollout = second @ first  # rows already sum to 1
    np.testing.assert_allclose(res.attribution, rollout[:, 0], rtol=1e-12)  # the first token
    np.testing.assert_allclose(res.attribution.sum(axis=1), 1.0, rtol=1e-12)


def test_attention_rollout_refuses_pooled_attention() -> None:
    adapter = FakeAdapter(text_model(attention=True))  # weights (N, T): nothing to roll out
    space, e = _space(adapter)
    with pytest.raises(ValueError, match="attend over the whole token sequence"):
        run("attention-rollout", adapter, e, space=space)


def test_grad_cam_over_tokens_is_the_hand_formula() -> None:
    adapter = FakeAdapter(text_model())
    space, e = _space(adapter)
    res = run("grad-cam", adapter, e, targets=(1,), space=space, layer="token_fc")
    _, token_fc, _, fc = adapter.model.layers
    a = token_fc.forward(e)  # (N, T, K)
    w = fc.w[1] / IDS.shape[1]
    np.testing.assert_allclose(res.attribution, w * a, rtol=1e-12)


# -- contextual decomposition ----------------------------------------------------------------
def test_cd_blocks_of_a_linear_model_hold_their_terms() -> None:
    adapter = FakeAdapter(linear_model())
    res = run("cd", adapter, X, targets=(1,), patch_size=2)  # through Adapter.decompose
    term = (X * weights(adapter, 1)).sum(axis=1)  # (N, H, W): each cell's share
    blocks = term.reshape(2, 2, 2, 2, 2).sum(axis=(2, 4))  # 2×2 patches
    got = res.attribution.sum(axis=1).reshape(2, 2, 2, 2, 2).sum(axis=(2, 4))
    np.testing.assert_allclose(got, blocks, rtol=1e-10)


# -- no framework ----------------------------------------------------------------------------
def test_runs_without_any_framework() -> None:
    """This module and the conformance suite on the numpy adapter (the whole pipeline),
    in a Python where importing torch, TensorFlow, JAX or Keras fails."""
    if os.environ.get("ELI5NN_NO_FRAMEWORKS"):
        pytest.skip("already the framework-free run")
    from tests.test_neutral import run_without_frameworks

    out = run_without_frameworks(
        "import os, sys\n"
        f"os.chdir({str(ROOT)!r}); sys.path.insert(0, {str(ROOT)!r})\n"
        "os.environ['ELI5NN_NO_FRAMEWORKS'] = '1'\n"
        "os.environ['PYTEST_DISABLE_PLUGIN_AUTOLOAD'] = '1'\n"
        "import pytest\n"
        "code = pytest.main(['-q', '-x', '--noconftest', '-p', 'no:cacheprovider', "
        f"{__file__!r}, {str(Path(__file__).with_name('test_numpy.py'))!r}])\n"
        "assert code == 0, code\n"
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert " passed" in out.stdout, out.stdout[-3000:]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(subprocess.call([sys.executable, "-m", "pytest", "-q", __file__]))
