"""The automatic chunk sizes: a pass without a graph holds at most the adapter's
``max_forward_rows`` (Keras wants bigger forward chunks than PyTorch)."""

from __future__ import annotations

import numpy as np

from eli5_nn.methods.context import MethodContext
from tests.fake_adapter import FakeAdapter, linear_model


def _ctx(adapter: FakeAdapter, batch_size: int | None = None) -> MethodContext:
    x = np.zeros((1, 3, 4, 4))
    return MethodContext(adapter=adapter, x=x, resolve_targets=lambda s, d: [[0]] * len(d),
                         batch_size=batch_size)


def test_forward_only_chunks_follow_the_adapters_cap():
    adapter = FakeAdapter(linear_model())
    assert _ctx(adapter).chunk_size(10_000, forward_only=True) == adapter.max_forward_rows
    adapter.max_forward_rows = 7
    assert _ctx(adapter).chunk_size(10_000, forward_only=True) == 7
    assert _ctx(adapter).chunk_size(5, forward_only=True) == 5
    assert _ctx(adapter, batch_size=3).chunk_size(10_000, forward_only=True) == 3


def test_torch_states_its_cap():
    """512 rows before any input is seen (the CPU cap per input is tested with the
    torch adapter: its largest layer's bytes per row)."""
    import torch

    from eli5_nn.adapters.torch import TorchAdapter

    assert TorchAdapter(torch.nn.Linear(2, 2)).max_forward_rows == 512


def test_gradient_chunks_follow_the_adapters_cap():
    """A pass with a graph holds at most the adapter's ``max_gradient_rows`` (Keras
    raises it for recurrent layers on TensorFlow and JAX)."""
    from eli5_nn.adapters.torch import TorchAdapter

    adapter = FakeAdapter(linear_model())
    assert _ctx(adapter).chunk_size(10_000) == adapter.max_gradient_rows == 256
    adapter.max_gradient_rows = 9
    assert _ctx(adapter).chunk_size(10_000) == 9
    assert _ctx(adapter, batch_size=3).chunk_size(10_000) == 3
    assert TorchAdapter.max_gradient_rows == 256


def test_pieces_in_row_order_are_joined_without_a_reordering_copy(monkeypatch):
    """Chunks of one cotangent round come in row order: joined as they are (no
    gather); pieces out of order (a second round's rows) are put in order."""
    from eli5_nn.methods.batching import _assemble

    adapter = FakeAdapter(linear_model())
    ctx = _ctx(adapter)
    taken: list[np.ndarray] = []
    take = adapter.ops.take
    monkeypatch.setattr(adapter.ops, "take", lambda x, i, axis=0: taken.append(i) or
                        take(x, i, axis))
    a, b = np.arange(6.0).reshape(3, 2), np.arange(6.0, 10.0).reshape(2, 2)
    joined = _assemble(ctx, [(np.arange(3), a), (np.arange(3, 5), b)])
    np.testing.assert_array_equal(joined, np.concatenate([a, b]))
    assert not taken
    mixed = _assemble(ctx, [(np.array([0, 2, 4]), a), (np.array([1, 3]), b)])
    np.testing.assert_array_equal(mixed, np.concatenate([a, b])[[0, 3, 1, 4, 2]])
    assert len(taken) == 1


def test_passes_cut_at_a_layer_size_their_rows_like_forward_passes(monkeypatch):
    """CAM passes record a graph only after their layer: three times the rows of a
    full gradient pass fit the budget, under the same row cap."""
    adapter = FakeAdapter(linear_model())
    monkeypatch.setattr(adapter, "bytes_per_row", lambda x: 1000)
    monkeypatch.setattr(adapter, "pass_budget_bytes", lambda: 100_000)
    ctx = _ctx(adapter)
    assert ctx.chunk_size(10_000) == 100
    assert ctx.chunk_size(10_000, head_only=True) == 256 == adapter.max_gradient_rows
    monkeypatch.setattr(adapter, "bytes_per_row", lambda x: 3000)
    assert ctx.chunk_size(10_000) == 33 and ctx.chunk_size(10_000, head_only=True) == 100


def test_grad_cam_of_many_docs_runs_in_passes_sized_for_its_head(monkeypatch):
    """gradient_pass tells the chunk rule when the pass is cut at its layer (CAM),
    and not for a pass to the input."""
    import eli5_nn
    from tests.fake_adapter import conv_model

    seen: list[bool] = []
    real = MethodContext.chunk_size

    def spy(self, n_units, forward_only=False, head_only=False):  # noqa: ANN001
        seen.append(head_only)
        return real(self, n_units, forward_only, head_only)

    monkeypatch.setattr(MethodContext, "chunk_size", spy)
    x = np.random.default_rng(0).random((4, 3, 6, 6))
    eli5_nn.explain_predictions(FakeAdapter(conv_model()), x, method="grad-cam")
    assert seen == [True]
    seen.clear()
    eli5_nn.explain_predictions(FakeAdapter(conv_model()), x, method="gradient")
    assert seen == [False]
