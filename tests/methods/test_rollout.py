"""Attention rollout (Abnar & Zuidema 2020): the algebra without a framework, then on
PyTorch transformers built here (text and vision) against the rollout by hand."""

from __future__ import annotations

from typing import Any

import eli5
import numpy as np
import pytest
import torch
from torch import nn

import eli5_nn
from eli5_nn.adapters.base import LayerRef
from eli5_nn.errors import Eli5NNTypeError, ExplanationError
from eli5_nn.layout import Layout
from eli5_nn.methods.rollout import head_mean, outermost, rollout


def ref(name: str) -> LayerRef:
    return LayerRef(name=name, index=0, handle=None, kind="Attention")


def random_attention(rng: np.random.Generator, n: int, t: int) -> np.ndarray:
    w = rng.random((n, t, t))
    return w / w.sum(axis=-1, keepdims=True)


# -- the algebra -------------------------------------------------------------------------------
def test_rollout_is_the_product_of_residual_mixed_layers() -> None:
    rng = np.random.default_rng(0)
    a1, a2, a3 = (random_attention(rng, 2, 5) for _ in range(3))
    eye = np.eye(5)
    mixed = [0.5 * a + 0.5 * eye for a in (a1, a2, a3)]  # rows already sum to 1
    np.testing.assert_allclose(rollout([a1, a2, a3]), mixed[2] @ mixed[1] @ mixed[0])
    np.testing.assert_allclose(rollout([a1, a2, a3]).sum(axis=-1), 1.0)


def test_rollout_of_identity_attention_is_the_identity() -> None:
    eye = np.broadcast_to(np.eye(4), (1, 4, 4))
    np.testing.assert_allclose(rollout([eye, eye]), eye)


def test_rows_are_renormalised() -> None:
    """Weights whose rows do not sum to 1 (masked keys, dropped heads) still give
    rollout rows that sum to 1."""
    a = np.random.default_rng(1).random((1, 3, 3))
    np.testing.assert_allclose(rollout([a, a]).sum(axis=-1), 1.0)


def test_heads_are_averaged_and_shapes_checked() -> None:
    w = np.random.default_rng(2).random((2, 4, 3, 3))
    np.testing.assert_allclose(head_mean(ref("a"), w, 2), w.mean(axis=1))
    with pytest.raises(ExplanationError, match="windowed.*grad-cam"):
        head_mean(ref("win"), np.ones((8, 4, 3, 3)), 2)  # windows in the batch axis


def test_nested_attention_layers_are_read_once() -> None:
    found = [(ref("enc.0.attention.self"), 1), (ref("enc.0.attention"), 2),
             (ref("enc.1.attention"), 3)]
    assert [r.name for r, _ in outermost(found)] == ["enc.0.attention", "enc.1.attention"]


# -- PyTorch models built here -------------------------------------------------------------------
class Block(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(dim, 2, batch_first=True)
        self.norm = nn.LayerNorm(dim)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.norm(h + self.attention(h, h, h)[0])


class TextTransformer(nn.Module):
    """[CLS]-reading classifier: embedding → 2 attention blocks → first token → Linear."""

    def __init__(self, vocab: int = 20, dim: int = 8) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, dim, padding_idx=0)
        self.blocks = nn.ModuleList([Block(dim), Block(dim)])
        self.fc = nn.Linear(dim, 3)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.embedding(ids)
        for b in self.blocks:
            h = b(h)
        return self.fc(h[:, 0])


class PatchTransformer(nn.Module):
    """A vision transformer: 4×4 patches of a 16×16 image, a class token, 2 blocks."""

    def __init__(self, dim: int = 8) -> None:
        super().__init__()
        self.patches = nn.Conv2d(3, dim, 4, stride=4)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim))
        self.blocks = nn.ModuleList([Block(dim), Block(dim)])
        self.fc = nn.Linear(dim, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.patches(x).flatten(2).transpose(1, 2)
        h = torch.cat([self.cls_token.expand(len(x), -1, -1), h], dim=1)
        for b in self.blocks:
            h = b(h)
        return self.fc(h[:, 0])


def hand_rollout(model: nn.Module, *inputs: Any) -> np.ndarray:
    """Every block's head-averaged weights read with hooks, then the rollout by hand."""
    taken: list[torch.Tensor] = []

    def hook(m: nn.Module, args: tuple, _out: Any) -> None:
        q = args[0]
        taken.append(m.forward(q, q, q, need_weights=True, average_attn_weights=True)[1])

    handles = [b.attention.register_forward_hook(hook) for b in model.blocks]
    try:
        with torch.no_grad():
            model(*inputs)
    finally:
        for h in handles:
            h.remove()
    r = None
    for w in taken:
        a = w.double().numpy()
        a = 0.5 * a + 0.5 * np.eye(a.shape[-1])
        a = a / a.sum(axis=-1, keepdims=True)
        r = a if r is None else a @ r
    assert r is not None
    return r


@pytest.fixture
def text_model() -> nn.Module:
    torch.manual_seed(0)
    return TextTransformer().eval()


IDS = torch.tensor([[2, 5, 7, 9, 3, 0, 0]])


def test_text_rollout_is_the_class_token_row(text_model: nn.Module) -> None:
    expl = eli5.explain_prediction(text_model, IDS, method="attention-rollout",
                                   top_targets=2)
    by_hand = hand_rollout(text_model, IDS)[0]
    for t in expl.targets:  # the same for every target
        np.testing.assert_allclose(t.attribution, by_hand[0], rtol=1e-5, atol=1e-7)
        assert t.layout == Layout("T")
        assert t.heatmap.shape == (5,)  # padding left out
    assert "the class token's rollout row (position 0)" in expl.description
    assert "over 2 attention layer(s)" in expl.description


def test_query_picks_another_row_or_the_mean(text_model: nn.Module) -> None:
    by_hand = hand_rollout(text_model, IDS)[0]
    t = eli5.explain_prediction(text_model, IDS, method="attention-rollout",
                                query=2).targets[0]
    np.testing.assert_allclose(t.attribution, by_hand[2], rtol=1e-5, atol=1e-7)
    expl = eli5.explain_prediction(text_model, IDS, method="attention-rollout",
                                   query="mean")
    np.testing.assert_allclose(expl.targets[0].attribution, by_hand[:5].mean(axis=0),
                               rtol=1e-5, atol=1e-7)  # the rows of the real tokens
    assert "mean of the tokens' rollout rows" in expl.description
    with pytest.raises(ExplanationError, match="query=9 is not a token position"):
        eli5.explain_prediction(text_model, IDS, method="attention-rollout", query=9)
    with pytest.raises(Eli5NNTypeError, match="query"):
        eli5.explain_prediction(text_model, IDS, method="attention-rollout", query=1.5)


def test_the_model_is_left_as_found(text_model: nn.Module) -> None:
    text_model.train()
    before = {k: v.clone() for k, v in text_model.state_dict().items()}
    eli5.explain_prediction(text_model, IDS, method="attention-rollout")
    assert all(m.training for m in text_model.modules())
    assert all(torch.equal(v, text_model.state_dict()[k]) for k, v in before.items())
    assert all(p.grad is None for p in text_model.parameters())
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in text_model.modules())


@pytest.fixture
def vision_model() -> nn.Module:
    torch.manual_seed(1)
    return PatchTransformer().eval()


def test_vision_rollout_puts_the_patch_tokens_on_their_grid(vision_model: nn.Module) -> None:
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    expl = eli5.explain_prediction(vision_model, x, method="attention-rollout")
    t = expl.targets[0]
    row = hand_rollout(vision_model, x)[0, 0]
    assert t.layout.prefix_tokens == 1 and t.layout.grid == (4, 4)
    np.testing.assert_allclose(t.layout.channel_sum(t.attribution), row[1:].reshape(4, 4),
                               rtol=1e-5, atol=1e-7)
    assert t.heatmap.shape == (16, 16) and t.heatmap.max() == pytest.approx(1.0)
    assert "4×4 grid" in expl.description
    assert eli5.format_as_image(expl).size == (16, 16)  # eli5's overlay and ours draw it
    assert "Attention Rollout" in eli5_nn.format_as_html(expl)


def test_layout_argument_states_the_grid(vision_model: nn.Module) -> None:
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    layout = {"axes": "NTC", "prefix_tokens": 1, "grid": (2, 8)}
    t = eli5.explain_prediction(vision_model, x, method="attention-rollout",
                                layout=layout).targets[0]
    assert t.layout.grid == (2, 8)
    row = hand_rollout(vision_model, x)[0, 0]
    np.testing.assert_allclose(t.layout.channel_sum(t.attribution), row[1:].reshape(2, 8),
                               rtol=1e-5, atol=1e-7)
    with pytest.raises(ExplanationError, match="grid"):
        eli5.explain_prediction(vision_model, x, method="attention-rollout",
                                layout={"axes": "NTC", "prefix_tokens": 0, "grid": (4, 4)})


def test_a_model_without_attention_is_told_what_to_use() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(4, 2)).eval()
    with pytest.raises(ExplanationError, match="Sequential has no attention layer.*grad-cam"):
        eli5.explain_prediction(model, torch.rand(1, 3, 8, 8), method="attention-rollout")
