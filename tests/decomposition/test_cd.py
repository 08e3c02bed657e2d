"""Contextual decomposition: completeness on every supported operation, the
reference's results, masks, gradients, errors and the explain_prediction method."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import eli5_nn
from eli5_nn.decomposition import DecompositionError, contextual_decomposition
from tests.decomposition.nets import Conv1dNet, image_nets, text_nets

IMAGE = image_nets()
TEXT = text_nets()


def _inputs(name: str, n: int = 3) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    if name in IMAGE:
        x = torch.rand(n, 3, 16, 16, generator=g, dtype=torch.float64)
        mask = (torch.rand(n, 3, 16, 16, generator=g) > 0.5).double()
        return IMAGE[name].double().eval(), x, mask
    if name == "conv1d":
        x = torch.randn(n, 2, 14, generator=g, dtype=torch.float64)
        return Conv1dNet().double().eval(), x, (torch.rand(n, 2, 14, generator=g) > 0.5).double()
    ids = torch.randint(1, 30, (n, 9), generator=g)
    return TEXT[name].double().eval(), ids, (torch.rand(n, 9, generator=g) > 0.5).double()


ALL = sorted(IMAGE) + ["conv1d"] + sorted(TEXT)


@pytest.mark.parametrize("name", ALL)
def test_parts_add_up_to_the_output(name):
    model, x, mask = _inputs(name)
    with torch.no_grad():
        out = model(x)
        rel, irr = contextual_decomposition(model, x, mask)
        full_rel, full_irr = contextual_decomposition(model, x, torch.ones_like(mask))
        none_rel, none_irr = contextual_decomposition(model, x, torch.zeros_like(mask))
    scale = out.abs().max()
    assert rel.shape == out.shape
    assert torch.allclose(rel + irr, out, rtol=0, atol=1e-5 * scale)
    assert rel.abs().max() > 0 and irr.abs().max() > 0
    # the full mask leaves nothing irrelevant; the empty one nothing relevant
    assert full_irr.abs().max() <= 1e-9 * scale
    assert torch.allclose(full_rel, out, rtol=0, atol=1e-5 * scale)
    assert none_rel.abs().max() <= 1e-9 * scale


class Cropped(nn.Module):
    """Looks only at the left half of the image (and of the tokens)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv(x[:, :, :, :8]))
        return self.fc(h.mean(dim=(2, 3)))


def test_a_region_the_model_ignores_gets_zero():
    torch.manual_seed(0)
    model = Cropped().double().eval()
    x = torch.rand(2, 3, 16, 16, dtype=torch.float64)
    right = torch.zeros_like(x)
    right[..., 8:] = 1
    rel, irr = contextual_decomposition(model, x, right)
    assert torch.equal(rel, torch.zeros_like(rel))
    assert torch.allclose(irr, model(x))


def test_text_positions_the_model_ignores_get_zero():
    model = TEXT["text_cnn"].double().eval()

    class FirstHalf(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            return self.inner(ids[:, :5])

    ids = torch.randint(1, 30, (2, 10))
    mask = torch.zeros(2, 10)
    mask[:, 5:] = 1
    rel, _ = contextual_decomposition(FirstHalf(), ids, mask)
    assert torch.equal(rel, torch.zeros_like(rel))


# -- the reference's rules, written out for a sequential CNN and an LSTM ----------------------
def _ref_cnn(model: nn.Sequential, rel: torch.Tensor, irr: torch.Tensor) -> torch.Tensor:
    for mod in model:
        if isinstance(mod, (nn.Conv2d, nn.Linear)):
            bias = mod(torch.zeros_like(irr))
            r, i = mod(rel) - bias, mod(irr) - bias
            pr, pi = r.abs() + 1e-20, i.abs() + 1e-20
            rel, irr = r + pr / (pr + pi) * bias, i + pi / (pr + pi) * bias
        elif isinstance(mod, nn.ReLU):
            rel, irr = torch.relu(rel), torch.relu(rel + irr) - torch.relu(rel)
        elif isinstance(mod, nn.MaxPool2d):
            _, idx = nn.functional.max_pool2d(rel + irr, mod.kernel_size, return_indices=True)
            flat = idx.flatten(2)
            rel = rel.flatten(2).gather(2, flat).view_as(idx)
            irr = irr.flatten(2).gather(2, flat).view_as(idx)
        else:
            rel, irr = mod(rel), mod(irr)
    return rel


def test_same_as_the_reference_rules_on_a_sequential_cnn():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 6, 3), nn.ReLU(),
        nn.Flatten(), nn.Linear(6 * 3 * 3, 5),
    ).double().eval()
    x = torch.randn(4, 1, 12, 12, dtype=torch.float64)
    mask = torch.zeros_like(x)
    mask[:, :, 2:7, 3:9] = 1
    rel, _ = contextual_decomposition(model, x, mask)
    expected = _ref_cnn(model, x * mask, x * (1 - mask))
    assert torch.allclose(rel, expected, atol=1e-10)


def _ref_lstm(lstm: nn.LSTM, fc: nn.Linear, emb: torch.Tensor, start: int, stop: int
              ) -> torch.Tensor:
    """Murdoch et al.'s CD of one sentence (T, D) for the phrase start..stop."""
    def three(a, b, c, f):
        return (0.5 * (f(a + c) - f(c) + f(a + b + c) - f(b + c)),
                0.5 * (f(b + c) - f(c) + f(a + b + c) - f(a + c)), f(c))

    w_ii, w_if, w_ig, w_io = lstm.weight_ih_l0.chunk(4)
    w_hi, w_hf, w_hg, w_ho = lstm.weight_hh_l0.chunk(4)
    b_i, b_f, b_g, b_o = (lstm.bias_ih_l0 + lstm.bias_hh_l0).chunk(4)
    t_len, hidden = emb.shape[0], lstm.hidden_size
    rel_c, irr_c = torch.zeros(t_len, hidden).double(), torch.zeros(t_len, hidden).double()
    rel_h, irr_h = torch.zeros(t_len, hidden).double(), torch.zeros(t_len, hidden).double()
    for i in range(t_len):
        prev_r = rel_h[i - 1] if i else torch.zeros(hidden).double()
        prev_i = irr_h[i - 1] if i else torch.zeros(hidden).double()
        inside = start <= i <= stop
        xr = emb[i] if inside else torch.zeros_like(emb[i])
        xi = torch.zeros_like(emb[i]) if inside else emb[i]
        ri, ii, bi = three(w_ii @ xr + w_hi @ prev_r, w_ii @ xi + w_hi @ prev_i, b_i,
                           torch.sigmoid)
        rg, ig, bg = three(w_ig @ xr + w_hg @ prev_r, w_ig @ xi + w_hg @ prev_i, b_g, torch.tanh)
        rel_c[i] = ri * (rg + bg) + bi * rg
        irr_c[i] = ii * (rg + ig + bg) + (ri + bi) * ig
        if inside:
            rel_c[i] += bi * bg
        else:
            irr_c[i] += bi * bg
        if i > 0:
            rf, if_, bf = three(w_if @ xr + w_hf @ prev_r, w_if @ xi + w_hf @ prev_i, b_f,
                                torch.sigmoid)
            rel_c[i] += (rf + bf) * rel_c[i - 1]
            irr_c[i] += (rf + if_ + bf) * irr_c[i - 1] + if_ * rel_c[i - 1]
        o = torch.sigmoid(w_io @ emb[i] + w_ho @ (prev_r + prev_i) + b_o)
        c = rel_c[i] + irr_c[i]
        rel_h[i] = o * 0.5 * (torch.tanh(rel_c[i]) + torch.tanh(c) - torch.tanh(irr_c[i]))
        irr_h[i] = o * 0.5 * (torch.tanh(irr_c[i]) + torch.tanh(c) - torch.tanh(rel_c[i]))
    return fc.weight @ rel_h[-1]


def test_same_as_the_reference_rules_on_an_lstm():
    torch.manual_seed(0)
    model = TEXT["lstm_last_state"].double().eval()
    with torch.no_grad():
        model.fc.bias.zero_()  # the reference leaves the classifier's bias out
    ids = torch.randint(1, 30, (1, 8))
    masks = torch.zeros(3, 8)
    spans = [(0, 2), (3, 5), (2, 7)]
    for k, (a, b) in enumerate(spans):
        masks[k, a:b + 1] = 1
    with torch.no_grad():
        rel, _ = contextual_decomposition(model, ids, masks)
        emb = model.embedding(ids[0])
        for k, (a, b) in enumerate(spans):
            assert torch.allclose(rel[k], _ref_lstm(model.rnn, model.fc, emb, a, b), atol=1e-10)


def test_a_batch_of_masks_equals_one_mask_at_a_time():
    model, x, _ = _inputs("resnetish", n=1)
    masks = (torch.rand(5, 3, 16, 16, generator=torch.Generator().manual_seed(3)) > 0.7).double()
    rel, irr = contextual_decomposition(model, x, masks)
    for k in range(5):
        r, i = contextual_decomposition(model, x, masks[k:k + 1])
        assert torch.allclose(rel[k], r[0], atol=1e-12) and torch.allclose(irr[k], i[0])


@pytest.mark.parametrize("name", ["functional", "bilstm_2_layers", "bigru"])
def test_gradients_of_a_cd_loss_reach_the_weights(name):
    model, x, mask = _inputs(name)
    rel, irr = contextual_decomposition(model, x, mask)
    loss = torch.softmax(torch.stack([rel, irr], -1), -1)[..., 0].mean()
    params = list(model.parameters())
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    missing = [n for (n, _), g in zip(model.named_parameters(), grads, strict=True)
               if g is None or not torch.isfinite(g).all() or g.abs().max() == 0]
    assert not missing


def test_input_and_model_are_left_alone():
    model, x, mask = _inputs("functional")
    model.train()
    x0, state = x.clone(), {k: v.clone() for k, v in model.state_dict().items()}
    contextual_decomposition(model, x, mask)
    assert model.training and torch.equal(x, x0)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    model.eval()


class WithSoftmax(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.fc(x), dim=1)


class WithModule(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.norm = nn.LayerNorm(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.fc(x))


@pytest.mark.parametrize(("model", "name"), [
    (WithSoftmax(), "softmax"), (WithModule(), "LayerNorm"),
])
def test_an_operation_without_a_rule_is_named_never_skipped(model, name):
    with pytest.raises(DecompositionError, match=name):
        contextual_decomposition(model, torch.rand(2, 4), torch.ones(2, 4))


def test_bad_masks_are_refused():
    model, x, _ = _inputs("plain_cnn")
    with pytest.raises(ValueError, match="shape"):
        contextual_decomposition(model, x, torch.ones(3, 3, 8, 8))
    with pytest.raises(ValueError, match="batch"):
        contextual_decomposition(model, x, torch.ones(2, 3, 16, 16))
    with pytest.raises(TypeError, match="Module"):
        contextual_decomposition(lambda t: t, x, torch.ones_like(x))


# -- method="cd" in explain_prediction ---------------------------------------------------------
def test_cd_method_on_text_gives_each_tokens_cd_score():
    model = TEXT["bigru"].float().eval()
    ids = torch.randint(1, 30, (1, 8))
    ids[0, -2:] = 0
    expl = eli5_nn.explain_prediction_nn(model, ids, method="cd", pad_value=0, targets=[1])
    a = expl.targets[0].attribution
    masks = torch.eye(8)[:6]
    rel, _ = contextual_decomposition(model, ids, masks)
    assert np.allclose(a[:6], rel[:, 1].detach().numpy(), atol=1e-6)
    assert np.all(a[6:] == 0)
    assert len(expl.targets[0].weighted_spans.docs_weighted_spans[0].spans) == 6
    assert "Contextual Decomposition" in expl.method


def test_cd_method_on_images_sums_per_patch_to_the_patch_score():
    model = IMAGE["plain_cnn"].float().eval()
    x = torch.rand(1, 3, 16, 16)
    expl = eli5_nn.explain_prediction_nn(model, x, method="cd", patch_size=(8, 4))
    t = expl.targets[0]
    assert t.heatmap.shape == (16, 16) and t.attribution.shape == (3, 16, 16)
    mask = torch.zeros(1, 3, 16, 16)
    mask[..., 8:, 4:8] = 1
    rel, _ = contextual_decomposition(model, x, mask)
    c = int(model(x).argmax())
    assert np.isclose(t.attribution[:, 8:, 4:8].sum(), float(rel[0, c].detach()), atol=1e-5)
    many = eli5_nn.explain_predictions(model, torch.rand(3, 3, 16, 16), method="cd",
                                       patch_size=4)
    assert len(many) == 3
    with pytest.raises(ValueError, match="patch_size"):
        eli5_nn.explain_prediction_nn(model, x, method="cd", patch_size=0)


# -- no gradient recorded: temporaries reused, fresh values overwritten in place ---------------
class SharedValues(nn.Module):
    """Values read by more than one operation, around activations that CD may run
    in place: a conv output read twice, an Identity alias overwritten by the
    model's own in-place ReLU, a value passed on as it is by an eval-mode
    Dropout, an in-place sum, a view, every
    ReLU-like activation, max pooling and a residual sum."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 6, 3, padding=1)
        self.c2 = nn.Conv2d(6, 6, 3, padding=1)
        self.same = nn.Identity()
        self.drop = nn.Dropout(0.5)
        self.relu = nn.ReLU()
        self.relu_ = nn.ReLU(inplace=True)
        self.acts = nn.ModuleList([nn.LeakyReLU(0.2, inplace=True), nn.ELU(), nn.GELU(),
                                   nn.SiLU(), nn.ReLU6(inplace=True)])
        self.fc = nn.Linear(6 * 8 * 8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.c1(x)
        a = self.relu(h)  # h is read again below
        b = self.relu_(self.same(a - h))  # in place on an alias, as the model does
        c = self.c2(a)
        d = torch.relu(self.drop(c)) - c  # eval Dropout passes c itself: not its last reader
        d = torch.relu(d + b) + d  # d is read twice
        d += b
        k = d.relu_()  # in place in the model: d is relu'd too
        d = torch.nn.functional.silu(k) + d
        d = sum(act(self.c2(d)) for act in self.acts)
        p = torch.nn.functional.max_pool2d(d, 2)
        v = p.view(p.shape[0], -1)
        return self.fc(v.relu() + torch.relu(v))


def test_no_gradient_gives_the_same_parts_as_with_gradients():
    """Without autograd, CD reuses scratch memory and overwrites values only their
    one reader sees; with it, every value is new. The parts must be the same."""
    torch.manual_seed(0)
    models = [SharedValues().double().eval()] + [
        _inputs(name)[0] for name in ("resnetish", "functional", "two_branch", "plain_cnn")]
    for model in models:
        g = torch.Generator().manual_seed(1)
        x = torch.randn(3, 3, 16, 16, generator=g, dtype=torch.float64)
        mask = (torch.rand(3, 3, 16, 16, generator=g) > 0.5).double()
        mask[0] = 0  # a row with nothing relevant: zero parts meet the bias
        x0, mask0 = x.clone(), mask.clone()
        with torch.enable_grad():
            ref = contextual_decomposition(model, x, mask)
        assert ref[0].requires_grad  # the reference took the out-of-place path
        with torch.no_grad():
            rel, irr = contextual_decomposition(model, x, mask)
            out = model(x.clone())
        assert torch.allclose(rel, ref[0], rtol=1e-12, atol=1e-12)
        assert torch.allclose(irr, ref[1], rtol=1e-12, atol=1e-12)
        assert torch.allclose(rel + irr, out, rtol=1e-10, atol=1e-10)
        assert torch.equal(x, x0) and torch.equal(mask, mask0)


def test_non_finite_inputs_are_refused_even_when_their_sum_is_finite_or_not():
    model, x, mask = _inputs("plain_cnn")
    big = torch.full_like(x, 1e308)  # finite values whose sum overflows: accepted
    contextual_decomposition(model.float(), big.float().clamp(max=3e38), mask.float())
    model.double()
    for bad in (float("nan"), float("inf")):
        y = x.clone()
        y[0, 0, 0, 0] = bad
        with pytest.raises(ValueError, match="NaN or infinite"):
            contextual_decomposition(model, y, mask)
        m = mask.clone()
        m[1, 2, 3, 4] = bad
        with pytest.raises(ValueError, match="NaN or infinite"):
            contextual_decomposition(model, x, m)
    y = x.clone()
    y[0, 0, 0, :2] = torch.tensor([float("inf"), -float("inf")], dtype=x.dtype)
    with pytest.raises(ValueError, match="NaN or infinite"):
        contextual_decomposition(model, y, mask)


def test_channels_last_inputs_give_the_same_parts_and_keep_their_layout():
    from eli5_nn.decomposition.parts import Parts, gather_spatial

    model, x, mask = _inputs("plain_cnn")
    cl = torch.channels_last
    with torch.no_grad():
        ref = contextual_decomposition(model, x, mask)
        got = contextual_decomposition(model, x.contiguous(memory_format=cl),
                                       mask.contiguous(memory_format=cl))
    assert all(torch.allclose(a, b, rtol=1e-12, atol=1e-12) for a, b in zip(ref, got, strict=True))
    # max pooling gathers both parts in their own (N, H, W, C) memory, without a copy
    g = torch.Generator().manual_seed(0)
    rel, irr = (torch.randn(2, 5, 6, 6, generator=g).contiguous(memory_format=cl)
                for _ in range(2))
    _, idx = torch.nn.functional.max_pool2d(rel + irr, 2, return_indices=True)
    pooled = gather_spatial(Parts(rel, irr), idx)
    assert pooled.rel.is_contiguous(memory_format=cl) and not pooled.rel.is_contiguous()
    expected = gather_spatial(Parts(rel.contiguous(), irr.contiguous()), idx.contiguous())
    assert torch.equal(pooled.rel, expected.rel) and torch.equal(pooled.irr, expected.irr)


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_one_input_with_many_masks_gives_the_same_parts_as_repeated_rows(layout, monkeypatch):
    """One input broadcast over many masks carries the activation once (the
    parts' shared row) instead of an irrelevant part. The parts must be those
    of the same input repeated row by row (which takes the general path)."""
    from eli5_nn.decomposition import parts as parts_module

    calls = []
    shared_split = parts_module.split_bias_shared

    def counted(*args, **kwargs):
        calls.append(1)
        return shared_split(*args, **kwargs)

    monkeypatch.setattr(parts_module, "split_bias_shared", counted)
    cl = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    models = [_inputs(name)[0] for name in sorted(IMAGE)]
    if layout == "nchw":  # SharedValues views its activations, which needs NCHW memory
        models.append(SharedValues().double().eval())
    g = torch.Generator().manual_seed(2)
    for model in models:
        x = torch.randn(1, 3, 16, 16, generator=g, dtype=torch.float64).contiguous(memory_format=cl)
        masks = (torch.rand(6, 3, 16, 16, generator=g) > 0.6).double()
        masks[0], masks[1] = 0, 1  # nothing relevant; everything relevant
        masks = masks.contiguous(memory_format=cl)
        x[0, :, :3] = 0  # zero input meets the bias (the both-zero fallback)
        rows = x.repeat(6, 1, 1, 1).contiguous(memory_format=cl)
        calls.clear()
        with torch.no_grad():
            rel, irr = contextual_decomposition(model, x, masks)
            assert calls  # the shared path was taken
            ref = contextual_decomposition(model, rows, masks)
            out = model(rows)
        scale = out.abs().max()
        part = [0, 2, 3, 4, 5]
        assert torch.allclose(rel[part], ref[0][part], rtol=0, atol=1e-12 * scale)
        assert torch.allclose(irr[part], ref[1][part], rtol=0, atol=1e-12 * scale)
        assert torch.allclose(rel + irr, out, rtol=0, atol=1e-12 * scale)
        assert torch.equal(rel[0], torch.zeros_like(rel[0]))
        # the full mask: the general path keeps an irrelevant part of exactly
        # zero; here it is the difference of the shared row and the relevant
        # part, zero up to rounding (which the bias split magnifies where an
        # activation is itself at rounding level), as in any other row
        assert torch.allclose(rel[1], ref[0][1], rtol=0, atol=1e-7 * scale)
        assert irr[1].abs().max() <= 1e-7 * scale
