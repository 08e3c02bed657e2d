"""Text explanations of PyTorch models: axioms, hand computations, padding, errors."""

from __future__ import annotations

import eli5
import numpy as np
import pytest
import torch

import eli5_nn
from eli5_nn import explain_prediction_nn as explain
from tests.text.models import (
    AttentionGRU,
    BiLSTM,
    MaskedBag,
    TextCNN,
    TinyTransformer,
)

# (CD covers fewer architectures (no Transformer): it has its own tests)
TEXT_METHODS = sorted(
    k for k, m in eli5_nn.METHODS.items() if m.text and k != "cd" and not m.requires
)
IDS = np.array([[5, 7, 9, 7, 3, 0, 0]])
TOKENS = ["good", "movie", "<script>alert(1)</script>", "movie", "end", "<pad>", "<pad>"]
ARCHS = {
    "cnn": TextCNN, "bilstm": BiLSTM, "bigru": lambda: BiLSTM(cell=torch.nn.GRU),
    "attention-gru": AttentionGRU, "transformer": TinyTransformer,
}


@pytest.fixture(params=sorted(ARCHS))
def text_model(request: pytest.FixtureRequest) -> torch.nn.Module:
    torch.manual_seed(0)
    return ARCHS[request.param]().eval()


def _kw(method: str) -> dict[str, object]:
    return {"smoothgrad": {"samples": 4, "random_state": 0},
            "integrated-gradients": {"steps": 64}}.get(method, {})


@pytest.mark.parametrize("method", TEXT_METHODS)
def test_padding_never_gets_weight_and_every_occurrence_has_its_span(text_model, method):
    expl = explain(text_model, IDS, method=method, tokens=TOKENS, **_kw(method))
    t = expl.targets[0]
    assert t.heatmap.shape == (5,)
    assert t.heatmap.min() >= 0 and t.heatmap.max() <= 1
    spans = t.weighted_spans.docs_weighted_spans[0]
    # (a CAM of an untrained model may be all negative: relu leaves a zero heatmap)
    assert any(w != 0 for _, _, w in spans.spans)
    names = [name for name, _, _ in spans.spans]
    assert len(names) == 5 and len(set(names)) == 5  # "movie" twice: two features
    assert spans.document == "good movie <script>alert(1)</script> movie end"
    for name, [(start, end)], _w in spans.spans:
        assert spans.document[start:end] == name.rsplit(" [", 1)[0]
    assert "<pad>" not in spans.document


def test_integrated_gradients_completeness_from_all_padding(text_model):
    # (max-over-time and ReLU make the path integrand piecewise: 128 nodes for 1%)
    with torch.no_grad():
        f_x = text_model(torch.as_tensor(IDS))[0].double().numpy()
        f_pad = text_model(torch.zeros_like(torch.as_tensor(IDS)))[0].double().numpy()
    # the class whose score moves most from padding to the text (1% of a tiny
    # difference would test float round-off, not completeness)
    c = int(np.argmax(np.abs(f_x - f_pad)))
    expl = explain(text_model, IDS, method="integrated-gradients", tokens=TOKENS, steps=128,
                   targets=[c])
    for t in expl.targets:
        assert t.attribution.shape == (7, 8)
        expected = f_x[c] - f_pad[c]
        assert abs(t.attribution.sum() - expected) <= 0.01 * abs(expected) + 1e-6
        # the pad positions equal the baseline: exactly zero attribution
        assert np.all(t.attribution[5:] == 0)


def test_occlusion_equals_the_score_drop_it_claims(text_model):
    expl = explain(text_model, IDS, method="occlusion", tokens=TOKENS, pad_value=0)
    t = expl.targets[0]
    c = 0 if t.target == 0 else int(t.target)
    ids = torch.as_tensor(IDS)
    with torch.no_grad():
        full = float(text_model(ids)[0, c])
        for pos in range(5):
            cut = ids.clone()
            cut[0, pos] = 0
            drop = full - float(text_model(cut)[0, c])
            assert t.attribution[pos] == pytest.approx(drop, rel=1e-5, abs=1e-6)
    assert np.all(t.attribution[5:] == 0)
    spans = t.weighted_spans.docs_weighted_spans[0].spans
    np.testing.assert_allclose([w for _, _, w in spans], t.attribution[:5], rtol=1e-6)


def test_gradient_x_input_by_hand():
    torch.manual_seed(1)
    model = TextCNN().eval()
    expl = explain(model, IDS, method="gradient-x-input", targets=[1])
    e = model.embedding(torch.as_tensor(IDS)).detach().requires_grad_(True)
    h = model.relu(model.conv(e.transpose(1, 2)))
    score = model.fc(h.amax(dim=2))[0, 1]
    (g,) = torch.autograd.grad(score, e)
    by_hand = (g * e).sum(-1)[0].detach().numpy()
    np.testing.assert_allclose(expl.targets[0].attribution.sum(-1), by_hand, rtol=1e-5,
                               atol=1e-7)
    # padding left out of the weights; the sensitivity is the gradient's norm
    sens = explain(model, IDS, method="gradient", targets=[1]).targets[0]
    np.testing.assert_allclose(
        [w for _, _, w in sens.weighted_spans.docs_weighted_spans[0].spans],
        g[0].norm(dim=-1).numpy()[:5], rtol=1e-5,
    )


def test_repeated_words_each_get_their_own_weight():
    torch.manual_seed(0)
    model = TinyTransformer().eval()  # positions make the two "movie" differ
    t = explain(model, IDS, method="occlusion", tokens=TOKENS, pad_value=0).targets[0]
    weights = {name: w for name, _, w in t.weighted_spans.docs_weighted_spans[0].spans}
    assert weights["movie [1]"] != pytest.approx(weights["movie [3]"])


def test_grad_cam_over_a_temporal_layer_is_resized_to_the_tokens():
    torch.manual_seed(0)
    model = TextCNN().eval()
    expl = explain(model, IDS, method="grad-cam", tokens=TOKENS)
    assert "'relu'" in expl.description  # the last temporal layer
    t = expl.targets[0]
    assert t.attribution.shape == (16, 7)  # channels × time of the layer
    cam = np.clip(t.attribution.sum(0), 0, None)[:5]
    np.testing.assert_allclose(t.heatmap, cam / cam.max(), rtol=1e-6)
    lstm = BiLSTM().eval()
    t = explain(lstm, IDS, method="grad-cam", tokens=TOKENS, layer="rnn").targets[0]
    assert t.attribution.shape == (7, 16)  # time × features (batch first)


def test_attention_reads_the_models_weights():
    torch.manual_seed(0)
    model = AttentionGRU().eval()
    t = explain(model, IDS, method="attention", tokens=TOKENS).targets[0]
    with torch.no_grad():
        out, _ = model.rnn(model.embedding(torch.as_tensor(IDS)))
        _, w = model.attention(out)
    np.testing.assert_allclose(t.attribution[:5], w[0, :5].numpy(), rtol=1e-5)
    assert np.all(t.attribution[5:] == 0)
    tr = TinyTransformer().eval()
    t = explain(tr, IDS, method="attention", tokens=TOKENS).targets[0]
    assert t.attribution.shape == (7,) and t.attribution[:5].sum() > 0
    with pytest.raises(ValueError, match="no attention layer"):
        explain(TextCNN().eval(), IDS, method="attention")


def test_extra_inputs_as_tuple_and_dict():
    torch.manual_seed(0)
    model = MaskedBag().eval()
    mask = (IDS != 0).astype(np.int64)
    a = explain(model, (IDS, mask), method="occlusion", pad_value=0, targets=[1]).targets[0]
    w = model.fc.weight[1].detach().numpy()
    emb = model.embedding.weight.detach().numpy()
    by_hand = emb[IDS[0]] @ w / 4.0 - emb[0] @ w / 4.0
    np.testing.assert_allclose(a.attribution[:5], by_hand[:5], rtol=1e-5, atol=1e-7)

    class Named(MaskedBag):
        def forward(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            return super().forward(input_ids, mask)

    named = Named().eval()
    named.load_state_dict(model.state_dict())
    b = explain(named, {"mask": mask, "input_ids": IDS}, method="integrated-gradients",
                targets=[1], pad_value=0).targets[0]
    # linear model: IG = (e - e_pad) * w / 4 per token, masked positions contribute 0
    np.testing.assert_allclose(b.attribution.sum(-1)[:5], by_hand[:5], rtol=1e-4, atol=1e-6)


def test_tokens_are_escaped_in_eli5_html():
    torch.manual_seed(0)
    expl = explain(TextCNN().eval(), IDS, method="integrated-gradients", tokens=TOKENS,
                   targets=[1])
    html = eli5.format_as_html(expl)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;" in html
    text = eli5.format_as_text(expl)
    assert "good [0]" in text


def test_document_with_offsets():
    torch.manual_seed(0)
    doc = "Good movie, <script>alert(1)</script>: the movie. End!"
    t = explain(TextCNN().eval(), IDS, method="occlusion", tokens=TOKENS, pad_value=0,
                document=doc).targets[0]
    spans = t.weighted_spans.docs_weighted_spans[0]
    assert spans.document == doc
    assert [doc[s:e] for _, [(s, e)], _ in spans.spans] == [
        "Good", "movie", "<script>alert(1)</script>", "movie", "End"]


def test_bad_text_input_raises_clear_errors():
    torch.manual_seed(0)
    model = TextCNN().eval()
    with pytest.raises(ValueError, match="tokens has 3 entries.*7 positions"):
        explain(model, IDS, tokens=["a", "b", "c"])
    with pytest.raises(TypeError, match="token ids must be integers"):
        explain(model, IDS.astype(np.float32), method="gradient")
    with pytest.raises(ValueError, match=r"outside the vocabulary.*0\.\.49"):
        explain(model, np.array([[5, 50, 3]]), method="gradient")
    with pytest.raises(ValueError, match="no embedding layer"):
        explain(torch.nn.Sequential(torch.nn.Linear(7, 2)), IDS, method="gradient")
    with pytest.raises(ValueError, match="does not apply to text"):
        explain(model, IDS, method="fullgrad")
    with pytest.raises(ValueError, match="pass pad_value"):
        explain(TextCNN(padding_idx=None).eval(), IDS, method="occlusion")
    with pytest.raises(ValueError, match="one doc"):
        explain(model, np.vstack([IDS, IDS]))


def test_model_left_as_found():
    torch.manual_seed(0)
    model = TinyTransformer().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for method in TEXT_METHODS + ["attention", "attention-rollout"]:
        explain(model, IDS, method=method, pad_value=0, **_kw(method))
    assert model.training and all(m.training for m in model.modules())
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert all(p.grad is None for p in model.parameters())
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


def test_every_target_carries_the_layout_of_its_attribution():
    torch.manual_seed(0)
    model = TextCNN().eval()
    for method, axes in [("gradient", "TC"), ("occlusion", "T"), ("grad-cam", "CT")]:
        t = explain(model, IDS, method=method, pad_value=0).targets[0]
        assert t.layout.axes == axes, method
        assert len(t.attribution.shape) == len(axes)
    lstm = BiLSTM().eval()
    t = explain(lstm, IDS, method="grad-cam", layer="rnn").targets[0]
    assert t.layout.axes == "TC" and t.attribution.shape[0] == IDS.shape[1]


def _docs_of_varied_length(n: int = 6, length: int = 12) -> np.ndarray:
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 50, size=(n, length))
    for d in range(n):
        ids[d, 3 + d:] = 0  # padding after 3, 4, ... tokens
    return ids


@pytest.mark.parametrize(
    "method", ["gradient", "gradient-x-input", "grad-cam", "integrated-gradients"])
def test_maps_built_for_all_rows_at_once_equal_the_per_row_recipe(method):
    """The vectorised result building gives, row by row, what the one-row recipe gives:
    the channel reduction (norm / sum / CAM resized), the padding left out, and the
    heatmap scaled by the maximum over the doc's real tokens only."""
    from eli5_nn.modalities import text as text_mod
    from eli5_nn.modalities.image import normalise

    torch.manual_seed(0)
    model = TextCNN().eval()
    ids = _docs_of_varied_length()
    kw = {"steps": 8} if method == "integrated-gradients" else {}
    expls = eli5_nn.explain_predictions(model, ids, method=method, targets=[[0, 1]] * len(ids),
                                        pad_value=0, progress=False, **kw)
    how = eli5_nn.METHODS[method].text
    for d, expl in enumerate(expls):
        real = ids[d] != 0
        for t in expl.targets:
            if method == "grad-cam":
                row = t.layout.channel_sum(t.attribution)
                signed = text_mod.resize_1d(row, ids.shape[1])[real]
                shown = np.clip(signed, 0, None)
            else:
                signed = text_mod.token_weights(t.attribution, how)[real]
                shown = np.abs(signed)
            np.testing.assert_allclose(
                [w for _, _, w in t.weighted_spans.docs_weighted_spans[0].spans], signed,
                rtol=1e-6, atol=1e-9)
            np.testing.assert_allclose(t.heatmap, normalise(shown), rtol=1e-6, atol=1e-9)
            assert t.heatmap.shape == (int(real.sum()),)


def test_spans_are_spelled_when_first_read_and_hold_no_model_input(monkeypatch):
    """Nothing computed that nobody asked for: explaining many reviews spells no token
    until a result's spans or top tokens are read, and then only that doc's."""
    import gc
    import weakref

    from eli5_nn.modalities import text as text_mod

    spelled: list[int] = []
    original = text_mod.default_tokens
    monkeypatch.setattr(text_mod, "default_tokens",
                        lambda ids: spelled.append(len(ids)) or original(ids))
    torch.manual_seed(0)
    model = TextCNN().eval()
    ids_t = torch.as_tensor(_docs_of_varied_length())
    expls = eli5_nn.explain_predictions(model, ids_t, method="gradient", pad_value=0,
                                        progress=False)
    assert spelled == []
    t = expls[2].targets[0]
    spans = t.weighted_spans.docs_weighted_spans[0]
    assert spelled == [12]
    words = enumerate(ids_t[2, :5].tolist())
    assert [n for n, _, _ in spans.spans] == [f"{i} [{k}]" for k, i in words]
    assert t.feature_weights is not None and spelled == [12]  # the doc's spans are kept
    ref = weakref.ref(ids_t)
    del ids_t
    gc.collect()
    assert ref() is None  # the lazy fields keep numpy rows, not the model input


def test_tokens_missing_from_the_document_fail_at_the_call():
    torch.manual_seed(0)
    with pytest.raises(eli5_nn.errors.ExplanationError, match="not found in document"):
        explain(TextCNN().eval(), IDS, method="gradient", tokens=TOKENS,
                document="good movie end")


def test_text_targets_are_built_when_first_read_and_hold_no_model():
    """A text call returns its explanations with the targets not yet built (no
    per-review objects on the hot path); reading them builds the same targets as
    asked for one review at a time, and until then the results keep neither the
    model nor its input alive."""
    import gc
    import weakref

    from eli5.base import Explanation

    from eli5_nn.results import Lazy

    torch.manual_seed(0)
    model = TextCNN(vocab=30, dim=8, channels=8).eval()
    ids = torch.randint(1, 30, (4, 12))
    ids[1, 8:] = 0
    expls = eli5_nn.explain_predictions(model, ids, method="gradient-x-input", pad_value=0)
    slot = vars(Explanation)["targets"]  # the stored value, read past the lazy property
    assert all(isinstance(slot.__get__(e, type(e)), Lazy) for e in expls)
    alone = explain(model, ids[1:2], method="gradient-x-input", pad_value=0)
    got = expls[1].targets[0]
    assert got.target == alone.targets[0].target
    np.testing.assert_allclose(got.attribution, alone.targets[0].attribution, rtol=1e-5,
                               atol=1e-7)
    assert [w for w, *_ in got.weighted_spans.docs_weighted_spans[0].spans] == \
        [w for w, *_ in alone.targets[0].weighted_spans.docs_weighted_spans[0].spans]
    # unread results keep no model alive
    ref = weakref.ref(model)
    del model, alone
    gc.collect()
    assert ref() is None
    assert len(expls[3].targets) == 1  # still readable
