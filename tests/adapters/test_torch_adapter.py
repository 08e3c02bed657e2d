"""The torch adapter's own mechanics: sessions, the shared autograd loop, ops."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import eli5_nn
from eli5_nn.adapters import get_adapter
from eli5_nn.adapters.torch_autograd import autograd_rounds
from eli5_nn.errors import Eli5NNTypeError, ExplanationError


def test_nested_sessions_restore_the_modes_once():
    model = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5), nn.Linear(4, 2)).train()
    model[1].eval()
    adapter = get_adapter(model)
    with adapter.session():
        with get_adapter(model).session():
            assert not any(m.training for m in model.modules())
        assert not any(m.training for m in model.modules())
    assert [m.training for m in model.modules()] == [True, True, False, True]


def test_the_autograd_loop_says_when_nothing_can_be_differentiated():
    x = torch.rand(2, 3)
    with pytest.raises(ExplanationError, match="does not depend"):
        autograd_rounds(lambda: x * 2, lambda: [], lambda s: [np.ones_like(s)], cut=False)
    w = torch.rand(3, requires_grad=True)
    scores, rounds = autograd_rounds(lambda: x * w, lambda: [w], lambda s: [s, 2 * s], cut=False)
    assert scores.dtype == np.float64 and len(rounds) == 2
    torch.testing.assert_close(rounds[1][0], 2 * rounds[0][0])


def test_all_finite_and_scores_checks():
    adapter = get_adapter(nn.Linear(3, 2))
    ops = adapter.ops
    assert ops.all_finite(torch.ones(4)) and not ops.all_finite(torch.tensor([1.0, np.nan]))
    assert not ops.all_finite(torch.tensor([np.inf, -np.inf]))
    assert ops.all_finite(torch.tensor([3e38, 3e38]))  # the sum overflows, the values do not
    with pytest.raises(Eli5NNTypeError, match="expected a tensor of class scores"):
        adapter._scores({"no": "tensor"})
    with pytest.raises(ExplanationError, match=r"shape \(2, 3, 4\)"):
        adapter._scores(torch.zeros(2, 3, 4))
    assert tuple(adapter._scores(torch.zeros(2)).shape) == (2, 1)


def test_randomize_layer_refuses_the_users_model():
    model = nn.Sequential(nn.Linear(3, 2))
    adapter = get_adapter(model)
    ref = adapter.find_layer("0")
    with pytest.raises(ExplanationError, match="only copies"):
        adapter.randomize_layer(model, ref, seed=0)
    copy = adapter.copy_model()
    adapter.randomize_layer(copy, ref, seed=0)
    assert not torch.equal(copy[0].weight, model[0].weight)


def _reference_cam(model: nn.Module, x: torch.Tensor, layer: nn.Module, c: int) -> np.ndarray:
    """Grad-CAM by hand: the layer's output kept apart from what follows it."""
    store: list[torch.Tensor] = []

    def hook(_m: nn.Module, _i: object, out: torch.Tensor) -> torch.Tensor:
        store.append(out.detach().clone().requires_grad_(True))
        return store[0].clone()

    h = layer.register_forward_hook(hook)
    try:
        scores = model(x)
    finally:
        h.remove()
    (g,) = torch.autograd.grad(scores[0, c], store[0])
    a = store[0].detach()
    return (g.mean(dim=(2, 3), keepdim=True) * a)[0].numpy()


@pytest.mark.parametrize("method", ["grad-cam", "fullgrad"])
def test_a_layer_written_into_in_place_downstream_is_read_before_the_write(method):
    """Tapped outputs go downstream without a copy; where the model then writes into
    one (ReLU(inplace=True) after the conv), the pass is redone with copies and the
    model remembered, so the result equals the hand computation and the model's
    output is unchanged."""
    from eli5_nn import explain_prediction_nn as explain
    from eli5_nn.adapters import common
    from tests.models import plain_cnn

    torch.manual_seed(0)
    model = plain_cnn().eval()
    x = torch.randn(1, 3, 8, 8)
    before = model(x).detach()
    kw = {"layer": "0"} if method == "grad-cam" else {}
    t = explain(model, x, method=method, targets=[2], **kw).targets[0]
    if method == "grad-cam":
        np.testing.assert_allclose(t.attribution, _reference_cam(model, x, model[0], 2),
                                   rtol=1e-5, atol=1e-6)
    else:  # the same as on a copy of the model whose ReLU writes nothing in place
        import copy

        plain = copy.deepcopy(model)
        plain[1].inplace = False
        ref = explain(plain, x, method=method, targets=[2]).targets[0]
        np.testing.assert_allclose(t.attribution, ref.attribution, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(t.heatmap, ref.heatmap, rtol=1e-5, atol=1e-6)
    assert any(k[0] == "copy-tapped" and v for k, v in common.model_cache(model).items())
    torch.testing.assert_close(model(x), before)


def test_layers_nobody_writes_into_are_not_copied():
    from eli5_nn import explain_prediction_nn as explain
    from eli5_nn.adapters import common
    from tests.models import ResNetish

    torch.manual_seed(0)
    model = ResNetish().eval()
    explain(model, torch.rand(1, 3, 16, 16), method="grad-cam", layer="layers", targets=[1])
    flags = [v for k, v in common.model_cache(model).items() if k[0] == "copy-tapped"]
    assert flags == []


class _SeesLayout(nn.Module):
    """A small CNN that records whether its input arrived channels-last; ``flatten``
    chooses how the feature map is flattened: ``"reshape"`` (any layout),
    ``"view"`` (fails on a channels-last map) or ``"raw"`` (reads the storage as
    if it were contiguous: right on a contiguous input only)."""

    def __init__(self, flatten: str = "reshape") -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 6 * 6, 3)
        self.flatten = flatten
        self.seen: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.is_contiguous(memory_format=torch.channels_last)
                         and not x.is_contiguous())
        h = self.conv(x).relu()
        if self.flatten == "view":
            h = h.view(h.shape[0], -1)
        elif self.flatten == "raw":
            h = h.as_strided((h.shape[0], h[0].numel()), (h[0].numel(), 1))
        else:
            h = h.reshape(h.shape[0], -1)
        return self.fc(h)


def _hand_gradient(model: nn.Module, x: torch.Tensor, c: int) -> np.ndarray:
    xi = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(model(xi)[0, c], xi)
    return g[0].numpy()


@pytest.mark.parametrize("flatten, fast", [("reshape", True), ("view", False),
                                           ("raw", False)])
def test_cpu_images_go_channels_last_only_where_the_model_agrees(flatten, fast):
    """Convolutional models get CPU images channels-last (faster in oneDNN) where
    one row run both ways gives the same scores; a model that cannot take that
    layout (``view``) or reads memory as if contiguous gets the plain layout. The
    gradient equals the hand computation either way; the weights keep their
    layout."""
    from eli5_nn import explain_prediction_nn as explain

    model = _SeesLayout(flatten).eval()
    x = torch.randn(1, 3, 6, 6, generator=torch.Generator().manual_seed(1))
    t = explain(model, x, method="gradient-x-input", targets=[1]).targets[0]
    model.seen.clear()
    t2 = explain(model, x, method="gradient-x-input", targets=[1]).targets[0]
    assert any(model.seen) is fast  # the second call: the decision is remembered
    assert all(model.seen) is fast
    model.seen.clear()
    expected = _hand_gradient(model, x, 1) * x[0].numpy()
    np.testing.assert_allclose(t.attribution, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(t2.attribution, expected, rtol=1e-5, atol=1e-6)
    assert model.conv.weight.is_contiguous()


def test_text_and_3d_inputs_keep_their_layout():
    """Only (N, C, H, W) images are candidates: a model on (N, C, L) sequences
    is passed its input as it is."""
    from eli5_nn import explain_prediction_nn as explain

    seen: list[bool] = []
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv1d(2, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 6, 2))
    model.register_forward_pre_hook(lambda m, a: seen.append(a[0].is_contiguous()))
    explain(model.eval(), torch.randn(1, 2, 8), method="gradient", targets=[0])
    assert seen and all(seen)


@pytest.mark.parametrize("method", ["gradient-x-input", "grad-cam"])
def test_replaced_embedding_lookups_are_skipped(method, monkeypatch):
    """Passes on embedding rows replace the embedding's output; an ``nn.Embedding``
    does not look the ids up there (one lookup per call: the embedding rows
    themselves). The result equals the hand computation and the module has no
    ``forward`` of its own left behind."""
    from eli5_nn import explain_prediction_nn as explain
    from eli5_nn.demo_models import TextCNN

    torch.manual_seed(0)
    model = TextCNN(vocab=30, dim=4, channels=5).eval()
    ids = torch.tensor([[3, 7, 1, 9, 2, 0]])
    explain(model, ids, method=method, pad_value=0, targets=[1])  # traces, cached

    lookups = []
    real = torch.nn.functional.embedding
    monkeypatch.setattr(torch.nn.functional, "embedding",
                        lambda *a, **k: lookups.append(1) or real(*a, **k))
    t = explain(model, ids, method=method, pad_value=0, targets=[1]).targets[0]
    monkeypatch.undo()
    assert len(lookups) == 1
    assert "forward" not in vars(model.embedding)
    e = model.embedding(ids).detach().requires_grad_(True)
    h = model.relu(model.conv(e.transpose(1, 2)))
    if method == "grad-cam":
        (g,) = torch.autograd.grad(model.fc(h.amax(dim=2))[0, 1], h)
        cam = (g.mean(dim=2, keepdim=True) * h).sum(1).relu()[0, :5].detach().numpy()
        np.testing.assert_allclose(t.heatmap, cam / cam.max(), rtol=1e-5, atol=1e-6)  # no pad
    else:
        (g,) = torch.autograd.grad(model.fc(h.amax(dim=2))[0, 1], e)
        np.testing.assert_allclose(t.attribution, (g * e)[0].detach().numpy(), rtol=1e-5,
                                   atol=1e-6)


def test_the_module_walk_lists_what_model_modules_lists():
    """Shared submodules once, ``None`` children skipped, depth-first order."""
    from eli5_nn.adapters.torch import _all_modules

    shared = nn.Linear(2, 2)
    inner = nn.Sequential(shared, nn.ReLU(), nn.Sequential(nn.Tanh(), shared))
    model = nn.Sequential(inner, nn.Sequential(shared), nn.Identity())
    model.register_module("gone", None)
    assert [id(m) for m in _all_modules(model)] == [id(m) for m in model.modules()]
    tree = nn.Sequential(*[nn.Sequential(nn.Conv2d(1, 1, 1), nn.Sequential(nn.ReLU()))
                           for _ in range(3)])
    assert [id(m) for m in _all_modules(tree)] == [id(m) for m in tree.modules()]
    deep: nn.Module = nn.ReLU()
    for _ in range(3000):  # deeper than Python's recursion limit
        deep = nn.Sequential(deep, nn.Identity())
    walked = _all_modules(deep)  # 3000 Sequentials, then the ReLU, then 3000 Identities
    assert len(walked) == 6001 and walked[0] is deep and walked[1] is deep[0]
    assert isinstance(walked[3000], nn.ReLU) and walked[-1] is deep[1]


def test_forward_chunks_on_the_cpu_keep_the_largest_layer_within_its_byte_budget():
    """Rows per pass without a graph: the largest module's input + output per row,
    measured on one row, sets the cap (a ReLU in place counts its tensor once)."""
    from eli5_nn.adapters import torch as torch_adapter
    from eli5_nn.adapters.base import MAX_FORWARD_ROWS

    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(inplace=True),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 2))
    adapter = get_adapter(model)
    assert adapter.max_forward_rows == MAX_FORWARD_ROWS  # no input seen yet
    x = torch.rand(4, 3, 32, 32)
    with adapter.session():
        adapter.bytes_per_row(x)
        largest = (3 + 16) * 32 * 32 * 4  # the convolution's input and output
        assert adapter._largest_module_bytes(x) == largest
        assert adapter.max_forward_rows == torch_adapter.FORWARD_LAYER_BYTES // largest
    assert all(not m._forward_hooks for m in model.modules())  # no hook left behind
    adapter.max_forward_rows = 3
    assert adapter.max_forward_rows == 3
    tiny = get_adapter(nn.Linear(3, 2))
    with tiny.session():
        tiny.bytes_per_row(torch.rand(2, 3))
        assert tiny.max_forward_rows == MAX_FORWARD_ROWS  # small rows: the fixed cap


def test_forward_chunks_of_torchscript_models_keep_the_fixed_cap():
    """TorchScript takes no hooks: the largest layer is not measured and the fixed
    cap holds (explaining a scripted model with an input-gradient method works)."""
    import eli5_nn
    from eli5_nn.adapters.base import MAX_FORWARD_ROWS

    model = torch.jit.script(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(),
                                           nn.Linear(4 * 6 * 6, 3)).eval())
    x = torch.rand(3, 1, 8, 8)
    adapter = get_adapter(model)
    with adapter.session():
        adapter.bytes_per_row(x)
        assert adapter.max_forward_rows == MAX_FORWARD_ROWS
    expls = eli5_nn.explain_predictions(model, x, method="integrated-gradients", steps=4)
    assert len(expls) == 3 and np.isfinite(expls[0].targets[0].attribution).all()


def test_a_model_changed_between_calls_is_read_afresh():
    """What is kept per model structure (the automatic CAM layer, its layout, the
    trace) is not reused once a submodule is swapped: the second call reads the new
    layer, as a call on a freshly built model with the same modules does."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 5)).eval()
    x = torch.rand(1, 3, 12, 12)
    first = eli5_nn.explain_prediction_nn(model, x, method="grad-cam", targets=[1])
    assert first.targets[0].attribution.shape == (4, 10, 10)
    model[0] = nn.Sequential(nn.Conv2d(3, 6, 5), nn.ReLU())
    model[3] = nn.Linear(6, 5)
    again = eli5_nn.explain_prediction_nn(model, x, method="grad-cam", targets=[1])
    fresh = nn.Sequential(*model).eval()
    expected = eli5_nn.explain_prediction_nn(fresh, x, method="grad-cam", targets=[1])
    assert again.targets[0].attribution.shape == (6, 8, 8)
    np.testing.assert_allclose(again.targets[0].attribution, expected.targets[0].attribution)
    assert "'0'" in again.description and "6×8×8" in again.description
