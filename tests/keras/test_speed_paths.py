"""The fast paths of the Keras adapter and of the batched passes give the same
results as the plain ones, and do skip the work they are there to skip."""

from __future__ import annotations

from types import SimpleNamespace

import keras
import numpy as np
import pytest

import eli5_nn
from eli5_nn.adapters import keras as keras_adapter
from eli5_nn.adapters.keras_ops import KerasOps
from eli5_nn.methods.batching import RowSums
from tests.keras.conftest import BACKEND
from tests.keras.test_text import IDS, keras_cnn


def _residual_cnn() -> keras.Model:
    """conv - relu - conv - add(skip) - relu - pool - dense: the head after "relu_a"
    cannot be cut off (the skip connection reads the first conv's output)."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((10, 10, 3))
    a = keras.layers.Conv2D(4, 3, padding="same", name="conv_a")(inp)
    r = keras.layers.Activation("relu", name="relu_a")(a)
    b = keras.layers.Conv2D(4, 3, padding="same", name="conv_b")(r)
    h = keras.layers.Activation("relu", name="out")(keras.layers.Add(name="add")([a, b]))
    h = keras.layers.GlobalAveragePooling2D()(h)
    return keras.Model(inp, keras.layers.Dense(3, name="fc")(h))


# -- running sums of Integrated Gradients / SmoothGrad ----------------------------------
@pytest.mark.parametrize("chunk", [1, 3, 4, 5, 7, 8, 20, 40])
def test_row_sums_match_a_plain_sum_for_every_chunking(chunk: int) -> None:
    n_rows, n_samples = 5, 4
    rng = np.random.default_rng(0)
    grads = rng.standard_normal((n_rows * n_samples, 3, 2)).astype("float32")
    ctx = SimpleNamespace(adapter=SimpleNamespace(ops=KerasOps()))
    acc = RowSums(ctx, n_rows, n_samples)  # type: ignore[arg-type]
    for start in range(0, n_rows * n_samples, chunk):
        u = np.arange(start, min(start + chunk, n_rows * n_samples))
        acc.add(u // n_samples, u % n_samples, np.zeros(len(u)),
                keras.ops.convert_to_tensor(grads[u]))
    got = keras.ops.convert_to_numpy(acc.result())
    want = grads.reshape(n_rows, n_samples, 3, 2).sum(axis=1)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_row_sums_of_whole_rows_take_one_sum_per_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    """A chunk of 8 whole rows is summed with one reshape, not row by row (a text IG
    call over 32 reviews spent 20 ms in 1,000 small sums)."""
    ops = KerasOps()
    calls = []
    real_sum = ops.sum
    monkeypatch.setattr(ops, "sum", lambda *a, **k: calls.append(1) or real_sum(*a, **k))
    acc = RowSums(SimpleNamespace(adapter=SimpleNamespace(ops=ops)), 8, 5)  # type: ignore[arg-type]
    u = np.arange(40)
    acc.add(u // 5, u % 5, np.zeros(40), keras.ops.ones((40, 6)))
    assert len(calls) == 1
    np.testing.assert_allclose(keras.ops.convert_to_numpy(acc.result()), np.full((8, 6), 5.0))


# -- Integrated Gradients: one forward pass for the docs and their baselines ------------
def test_integrated_gradients_scores_docs_and_baselines_in_one_forward(
        monkeypatch: pytest.MonkeyPatch) -> None:
    model = keras_cnn()
    calls = []
    real = keras_adapter.KerasAdapter.forward

    def counting(self: object, *a: object, **k: object) -> object:
        calls.append(1)
        return real(self, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(keras_adapter.KerasAdapter, "forward", counting)
    ids = np.concatenate([IDS, IDS[:, ::-1]])
    res = eli5_nn.explain_predictions(model, ids, method="integrated-gradients", steps=64,
                                      pad_value=0, progress=False)
    assert len(calls) == 1
    assert "completeness error" in res[0].description


# -- text: the replaced embedding lookup is not run ------------------------------------
def test_replaced_embedding_lookup_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    """Gradient passes on a text model replace the embedding's output: the lookup
    itself runs only where the embeddings are read, not once more per pass."""
    model = keras_cnn()
    emb = model.get_layer("embedding")
    calls = []
    real = type(emb).call

    def counting(self: object, *a: object, **k: object) -> object:
        calls.append(1)
        return real(self, *a, **k)

    monkeypatch.setattr(type(emb), "call", counting)
    counts = []
    for steps in (2, 2, 8):  # the first call also records the layers' output shapes
        calls.clear()
        eli5_nn.explain_predictions(model, IDS, method="integrated-gradients", steps=steps,
                                    batch_size=2, pad_value=0, progress=False)
        counts.append(len(calls))
    assert counts[1] == counts[2]


# -- JAX: the part before a cut layer is not traced ------------------------------------
@pytest.mark.skipif(BACKEND != "jax", reason="the head after a cut layer is for JAX")
@pytest.mark.parametrize("layer", ["relu_a", "out"])
def test_jax_grad_cam_runs_the_part_before_the_layer_untraced(
        layer: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import jax

    model = _residual_cnn()
    x = np.random.default_rng(1).random((2, 10, 10, 3)).astype("float32")
    conv = model.get_layer("conv_a")
    traced = []
    real = type(conv).call

    def watching(self: object, inputs: object, *a: object, **k: object) -> object:
        if self is conv:
            traced.append(isinstance(inputs, jax.core.Tracer))
        return real(self, inputs, *a, **k)

    monkeypatch.setattr(type(conv), "call", watching)
    from eli5_nn.adapters.keras_backends import jax as shim

    # the head is differentiated with respect to its input itself: no zero offset
    # added to the layer's output inside the trace (1 ms of a 16-review text CNN call)
    asked: list[tuple[bool, int]] = []
    real_gradients = shim.gradients
    monkeypatch.setattr(shim, "gradients", lambda *a, **k: (
        asked.append((k["wrt_input"], len(k["slots"]))) or real_gradients(*a, **k)))
    fast = eli5_nn.explain_predictions(model, x, method="grad-cam", layer=layer,
                                       progress=False)
    assert traced
    if layer == "out":
        assert asked == [(True, 0)]
    # "out": everything after it depends on the input through it, so conv_a runs
    # untraced. ("relu_a": the skip connection reads conv_a's output and the pass may
    # fall back to the full trace; whether conv_a is seen traced then depends on what
    # JAX cached in earlier tests of the suite, so only the result is checked below.)
    if layer == "out":
        assert not any(traced)
    monkeypatch.setattr(shim, "HEAD_AFTER_CUT", False)
    plain = eli5_nn.explain_predictions(model, x, method="grad-cam", layer=layer,
                                        progress=False)
    for a, b in zip(fast, plain, strict=True):
        ta, tb = a.targets[0], b.targets[0]
        np.testing.assert_allclose(ta.attribution, tb.attribution, rtol=1e-5, atol=1e-6)
        assert ta.score == pytest.approx(tb.score, rel=1e-5)


@pytest.mark.skipif(BACKEND != "jax", reason="the head after a cut layer is for JAX")
def test_jax_grad_cam_head_runs_compiled_from_its_second_call(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The first Grad-CAM call on activations of a shape differentiates the head op by
    op; later calls run it compiled (``jax.jit``), with the same result, several
    targets, and the weights as they are at the time of the call."""
    from eli5_nn.adapters.keras_backends import jax as shim

    model = _residual_cnn()
    x = np.random.default_rng(1).random((2, 10, 10, 3)).astype("float32")
    uncompiled: list[int] = []
    real_gradients = shim.gradients
    monkeypatch.setattr(shim, "gradients", lambda *a, **k: (
        uncompiled.append(1) or real_gradients(*a, **k)))

    def explain() -> list:
        return eli5_nn.explain_predictions(model, x, method="grad-cam", layer="out",
                                           targets=[0, 2], progress=False)

    def same(got: list, want: list) -> None:
        for a, b in zip(got, want, strict=True):
            for ta, tb in zip(a.targets, b.targets, strict=True):
                np.testing.assert_allclose(ta.attribution, tb.attribution, rtol=1e-5,
                                           atol=1e-6)
                assert ta.score == pytest.approx(tb.score, rel=1e-5)

    first = explain()
    assert len(uncompiled) == 1
    same(explain(), first)
    assert len(uncompiled) == 1  # the second call ran the compiled head
    fc = model.get_layer("fc")
    fc.kernel.assign(keras.ops.multiply(fc.kernel.value, -2.0))
    changed = explain()
    assert len(uncompiled) == 1
    monkeypatch.setattr(shim, "HEAD_AFTER_CUT", False)
    same(changed, explain())  # the new weights, not those of the first trace
    with pytest.raises(AssertionError):
        same(changed, first)


@pytest.mark.skipif(BACKEND != "jax", reason="the head after a cut layer is for JAX")
def test_jax_grad_cam_head_that_cannot_be_compiled_runs_op_by_op() -> None:
    """A head layer that reads a value in Python runs eagerly but not under
    ``jax.jit``: the later calls fall back to the op-by-op head, same result."""

    class Scale(keras.layers.Layer):
        def call(self, x: object) -> object:
            top = float(keras.ops.max(keras.ops.stop_gradient(x)))  # a concrete value
            return x / (1.0 + abs(top))

        def compute_output_shape(self, shape: tuple) -> tuple:
            return shape

    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 3))
    h = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inp)
    h = keras.layers.Activation("relu", name="relu")(h)
    h = Scale()(keras.layers.GlobalAveragePooling2D()(h))
    model = keras.Model(inp, keras.layers.Dense(3, name="fc")(h))
    x = np.random.default_rng(2).random((2, 8, 8, 3)).astype("float32")
    runs = [eli5_nn.explain_predictions(model, x, method="grad-cam", layer="relu",
                                        progress=False) for _ in range(3)]
    from eli5_nn.adapters.keras_backends import jax as shim

    assert [c.failed for h, c in shim._HEADS.items()
            if any(isinstance(layer, Scale) for layer in h.layers)] == [True]
    for later in runs[1:]:
        for a, b in zip(later, runs[0], strict=True):
            np.testing.assert_allclose(a.targets[0].attribution, b.targets[0].attribution,
                                       rtol=1e-5, atol=1e-6)


# -- small ops --------------------------------------------------------------------------
def test_all_finite_and_shape() -> None:
    ops = KerasOps()
    x = np.ones((2, 3, 4), dtype="float32")
    assert ops.shape(keras.ops.convert_to_tensor(x)) == (2, 3, 4)
    assert ops.all_finite(keras.ops.convert_to_tensor(x))
    for bad in (np.nan, np.inf, -np.inf):
        y = x.copy()
        y[1, 2, 3] = bad
        assert not ops.all_finite(keras.ops.convert_to_tensor(y))
    assert ops.all_finite(keras.ops.convert_to_tensor(np.ones((2, 2), dtype="int32")))


# -- forward-only chunks (occlusion variants) ------------------------------------------------
def test_forward_chunks_of_a_convolutional_text_model_fit_the_backend_byte_budget(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Without recurrent layers, a forward-only chunk holds what fits the backend's
    ``FORWARD_CHUNK_BYTES`` (JAX, torch: XLA's and torch's CPU convolutions slow down
    per row in passes of hundreds of MB; text CNN occlusion 1.7-2.6x its floor with
    chunks of 4096 rows); a recurrent model gets its backend's row cap, and
    TensorFlow the large cap (a fixed cost per op). Occlusion runs in those chunks
    and gives the same result as in one chunk."""
    from tests.keras.test_text import keras_lstm

    ids = np.random.default_rng(0).integers(1, 50, (3, 7)).astype("int32")
    cnn = keras_cnn()
    adapter = keras_adapter.KerasAdapter(cnn)
    x = adapter.as_batch(ids)
    budget = adapter.shim.FORWARD_CHUNK_BYTES
    cap = keras_adapter.KerasAdapter.FORWARD_ROWS_CAP
    if BACKEND == "tensorflow":
        assert budget is None and adapter.max_forward_rows == cap
    else:
        assert budget is not None
        assert adapter.max_forward_rows == min(cap, budget // adapter.bytes_per_row(x))
        monkeypatch.setattr(adapter.shim, "FORWARD_CHUNK_BYTES", 10 * adapter.bytes_per_row(x))
        assert adapter.max_forward_rows == 10
    lstm = keras_adapter.KerasAdapter(keras_lstm())
    lstm.as_batch(ids)
    # a recurrent model: large chunks where Keras steps it with a fixed cost per step
    # (TensorFlow, JAX), 256 rows on torch, whose CPU LSTM does better on small batches
    assert lstm.max_forward_rows == (256 if BACKEND == "torch" else cap)
    # and so do its passes with a graph: one pass of 320 (review, step) rows, not 256 + 64
    assert lstm.max_gradient_rows == (256 if BACKEND == "torch" else cap)
    # no recurrent layer: the shared cap, more on TensorFlow (a fixed cost per eager op)
    assert adapter.max_gradient_rows == (1024 if BACKEND == "tensorflow" else 256)
    from eli5_nn.methods.context import MethodContext

    ctx = MethodContext(adapter=lstm, x=lstm.as_batch(ids), resolve_targets=lambda s, d: [])
    assert ctx.chunk_size(320) == (256 if BACKEND == "torch" else 320)
    adapter.max_forward_rows = 3  # a fixed cap
    assert adapter.max_forward_rows == 3

    # the automatic chunks in use: a budget of two rows gives chunks of two variants
    seen: list[int] = []
    real = keras_adapter.KerasAdapter.forward
    monkeypatch.setattr(keras_adapter.KerasAdapter, "forward", lambda self, x, replace=None: (
        seen.append(int(self.ops.shape(x)[0])) or real(self, x, replace)))
    if budget is not None:
        monkeypatch.setattr(adapter.shim, "FORWARD_CHUNK_BYTES",
                            2 * adapter.bytes_per_row(x))
        small = eli5_nn.explain_predictions(cnn, ids, method="occlusion", pad_value=0)
        assert max(seen[1:]) == 2  # after the docs' own scores
        seen.clear()
        one = eli5_nn.explain_predictions(cnn, ids, method="occlusion", pad_value=0,
                                          batch_size=len(ids) * ids.shape[1])
        assert seen[1:] == [len(ids) * ids.shape[1]]
        for a, b in zip(small, one, strict=True):
            np.testing.assert_allclose(a.targets[0].attribution, b.targets[0].attribution,
                                       rtol=1e-5, atol=1e-6)


def test_embedding_of_the_input_is_looked_up_without_running_the_model(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The embedding the text methods start from is the lookup called on the ids
    (~0.5 ms less than running the model's graph up to it), equal to what the graph
    gives; a layer not fed by the input alone still runs through the graph."""
    model = keras_cnn()
    adapter = keras_adapter.KerasAdapter(model)
    x = adapter.as_batch(np.random.default_rng(0).integers(1, 50, (3, 7)))
    emb, conv = adapter.find_layer("embedding"), adapter.find_layer("conv")
    through_graph = adapter.activations(x, [emb, conv])[emb][0]
    calls: list[int] = []
    real = adapter.shim.call
    monkeypatch.setattr(adapter.shim, "call", lambda m, v: calls.append(1) or real(m, v))
    direct = adapter.activations(x, [emb], first_only=True)[emb][0]
    assert not calls
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(direct),
                                  keras.ops.convert_to_numpy(through_graph))
    adapter.activations(x, [conv], first_only=True)
    assert calls
