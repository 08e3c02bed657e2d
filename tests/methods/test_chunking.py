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
    cap = adapter.max_forward_rows
    assert _ctx(adapter).chunk_size(100 * cap, forward_only=True) == cap
    adapter.max_forward_rows = 7
    assert _ctx(adapter).chunk_size(7_000, forward_only=True) == 7
    assert _ctx(adapter).chunk_size(5, forward_only=True) == 5
    assert _ctx(adapter, batch_size=3).chunk_size(10_000, forward_only=True) == 3


def test_torch_states_its_cap():
    from eli5_nn.adapters.torch import TorchAdapter

    assert TorchAdapter.max_forward_rows == 512


def test_automatic_chunks_split_the_work_evenly():
    """As many passes as the cap needs, in sizes as equal as possible: no small last
    pass that costs a whole call for a few rows; a given batch_size is kept as is."""
    adapter = FakeAdapter(linear_model())
    adapter.max_forward_rows = 21
    ctx = _ctx(adapter)
    assert ctx.chunk_size(50, forward_only=True) == 17  # 17 + 17 + 16, not 21 + 21 + 8
    assert ctx.chunk_size(42, forward_only=True) == 21
    assert ctx.chunk_size(10_000, forward_only=True) == 21  # 476 passes of 21 or 20
    assert _ctx(adapter, batch_size=21).chunk_size(50, forward_only=True) == 21
