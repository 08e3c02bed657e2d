"""The torch adapter states the layout of every tapped tensor from what produced it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from eli5_nn.adapters import get_adapter, torch_module_class
from eli5_nn.errors import ExplanationError
from eli5_nn.layout import Layout


class BertLikeLayer(nn.Module):
    """Self-attention + feed-forward whose last child is a Dropout (as BertOutput)."""

    def __init__(self, d: int = 8) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(d, 2, batch_first=True)
        self.dense = nn.Linear(d, d)
        self.norm = nn.LayerNorm(d)
        self.dropout = nn.Dropout(0.1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        a, _ = self.attn(h, h, h)
        return self.dropout(self.norm(self.dense(a) + h))


class BertLike(nn.Module):
    def __init__(self, vocab: int = 20, d: int = 8, n_classes: int = 3) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.layer = nn.ModuleList([BertLikeLayer(d), BertLikeLayer(d)])
        self.head = nn.Linear(d, n_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.embed(ids)
        for block in self.layer:
            h = block(h)
        return self.head(h[:, 0])


def _layout(model: nn.Module, x: torch.Tensor, name: str) -> Layout:
    adapter = get_adapter(model)
    with adapter.session():
        return adapter.layer_layout(adapter.find_layer(name), adapter.as_batch(x))


def test_bert_like_layer_ending_in_dropout_is_tokens_by_hidden_units():
    torch.manual_seed(0)
    model = BertLike().eval()
    ids = torch.randint(0, 20, (2, 7))
    # the layer's last child is a Dropout: the LayerNorm before it says channels last
    assert _layout(model, ids, "layer.1") == Layout("TC")
    assert _layout(model, ids, "layer.1.dropout") == Layout("TC")
    assert _layout(model, ids, "embed") == Layout("TC")
    assert _layout(model, ids, "head") == Layout("C")
    adapter = get_adapter(model)
    assert adapter.input_layout(adapter.as_batch(ids)) == Layout("T")


def test_conv_net_is_channels_first():
    model = nn.Sequential(nn.Conv2d(3, 5, 3), nn.BatchNorm2d(5), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(5 * 3 * 3, 4)).eval()
    x = torch.rand(1, 3, 8, 8)
    for name in ("0", "1", "2", "3"):
        assert _layout(model, x, name) == Layout("CHW"), name
    assert _layout(model, x, "4") == Layout("C")
    adapter = get_adapter(model)
    batch = adapter.as_batch(x)
    assert adapter.input_layout(batch) == Layout("CHW")
    found = adapter.spatial_layers(batch)
    assert [(ref.name, shape, lay.axes) for ref, shape, lay in found] == [
        ("0", (5, 6, 6), "CHW"), ("1", (5, 6, 6), "CHW"), ("2", (5, 6, 6), "CHW"),
        ("3", (5, 3, 3), "CHW"),
    ]


def test_conv1d_and_recurrent_sequences():
    conv = nn.Sequential(nn.Conv1d(4, 6, 3), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(),
                         nn.Linear(6, 2)).eval()
    assert _layout(conv, torch.rand(1, 4, 10), "1") == Layout("CT")
    adapter = get_adapter(conv)
    assert adapter.input_layout(adapter.as_batch(torch.rand(1, 4, 10))) == Layout("CT")

    class Rnn(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(4, 5, batch_first=True, bidirectional=True)
            self.act = nn.Tanh()
            self.fc = nn.Linear(10, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(self.act(self.lstm(x)[0])[:, -1])

    rnn = Rnn().eval()
    assert _layout(rnn, torch.rand(1, 9, 4), "lstm") == Layout("TC")
    assert _layout(rnn, torch.rand(1, 9, 4), "act") == Layout("TC")
    adapter = get_adapter(rnn)
    assert adapter.input_layout(adapter.as_batch(torch.rand(1, 9, 4))) == Layout("TC")


class SwinLikeBlock(nn.Module):
    """A block on an NHWC map: LayerNorm and an MLP over the last axis."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, 2 * d)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(2 * d, d)
        self.drop_path = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop_path(self.fc2(self.act(self.fc1(self.norm(x)))))


class SwinLike(nn.Module):
    def __init__(self, d: int = 6) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, d, 4, stride=4)
        self.block = SwinLikeBlock(d)
        self.head = nn.Linear(d, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.patch(x).permute(0, 2, 3, 1)  # NHWC from here on
        return self.head(self.block(h).mean(dim=(1, 2)))


def test_nhwc_swin_like_block_is_channels_last():
    model = SwinLike().eval()
    x = torch.rand(1, 3, 16, 16)
    assert _layout(model, x, "block") == Layout("HWC")
    assert _layout(model, x, "block.drop_path") == Layout("HWC")
    assert _layout(model, x, "patch") == Layout("CHW")


class ConvNextLikeBlock(nn.Module):
    """Depthwise conv, then LayerNorm and MLP in NHWC, permuted back to NCHW."""

    def __init__(self, d: int = 6) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(d, d, 3, padding=1, groups=d)
        self.norm = nn.LayerNorm(d)
        self.pwconv = nn.Linear(d, d)
        self.drop_path = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.pwconv(self.norm(self.dwconv(x).permute(0, 2, 3, 1))).permute(0, 3, 1, 2)
        return x + self.drop_path(h)


def test_block_permuting_back_after_its_last_linear_is_channels_first():
    model = nn.Sequential(nn.Conv2d(3, 6, 1), ConvNextLikeBlock(6), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(6, 2)).eval()
    assert _layout(model, torch.rand(1, 3, 5, 5), "1") == Layout("CHW")


class PatchEmbed(nn.Module):
    def __init__(self, d: int, patch: int, grid: tuple[int, int]) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, d, patch, stride=patch)
        self.grid_size = grid
        self.patch_size = (patch, patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class ViTLike(nn.Module):
    """A look-alike of timm's VisionTransformer: ``patch_embed.grid_size``,
    ``num_prefix_tokens`` and a class token."""

    def __init__(self, d: int = 8, patch: int = 4, grid: tuple[int, int] = (4, 4)) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed(d, patch, grid)
        self.num_prefix_tokens = 1
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.blocks = nn.Sequential(BertLikeLayer(d), BertLikeLayer(d))
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.patch_embed(x)
        t = torch.cat([self.cls_token.expand(len(t), -1, -1), t], dim=1)
        return self.head(self.norm(self.blocks(t))[:, 0])


def test_vit_like_tokens_get_prefix_and_grid_from_the_model():
    torch.manual_seed(0)
    model = ViTLike().eval()
    x = torch.rand(1, 3, 16, 16)
    layout = _layout(model, x, "blocks.1")
    assert layout == Layout("TC", prefix_tokens=1, grid=(4, 4))
    assert _layout(model, x, "blocks.0.norm") == layout
    assert _layout(model, x, "patch_embed") == Layout("TC", prefix_tokens=0, grid=(4, 4))
    row = np.arange(17 * 8, dtype=float).reshape(17, 8)
    assert layout.channel_sum(row).shape == (4, 4)


def test_vit_without_stated_grid_gets_a_square_grid_and_the_rest_as_prefix():
    torch.manual_seed(0)
    model = ViTLike().eval()
    del model.num_prefix_tokens
    model.patch_embed.grid_size = None
    model.patch_embed.patch_size = None
    assert _layout(model, torch.rand(1, 3, 16, 16), "blocks.1") == Layout(
        "TC", prefix_tokens=1, grid=(4, 4))
    # a non-square input: the grid keeps the input's aspect ratio
    assert _layout(model, torch.rand(1, 3, 16, 32), "blocks.1") == Layout(
        "TC", prefix_tokens=1, grid=(4, 8))


def test_unstated_layout_names_the_layout_argument():
    class Heads(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 6)
            self.split = nn.Unflatten(2, (2, 3))  # (N, T, 2, 3): no axis of size 6

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.split(self.fc(x)).sum(dim=(1, 2))

    with pytest.raises(ExplanationError, match="layout="):
        _layout(Heads().eval(), torch.rand(1, 5, 4), "split")


def test_layouts_are_traced_once_per_input_signature():
    model = SwinLike().eval()
    adapter = get_adapter(model)
    calls = []
    handle = model.block.register_forward_hook(lambda *_: calls.append(1))
    try:
        x = adapter.as_batch(torch.rand(2, 3, 16, 16))
        for ref in adapter.layers():
            adapter.layer_layout(ref, x)
        adapter.spatial_layers(x)
        get_adapter(model).layer_layout(adapter.find_layer("block"), x)
    finally:
        handle.remove()
    assert len(calls) == 1


@pytest.mark.parametrize("text", [False, True])
def test_decompose_runs_contextual_decomposition(text):
    from eli5_nn.decomposition import contextual_decomposition

    torch.manual_seed(0)
    if text:
        model = nn.Sequential(nn.Embedding(10, 4), nn.Flatten(), nn.Linear(20, 3)).eval()
        x = torch.randint(0, 10, (2, 5))
        masks = np.zeros((2, 5), dtype=np.float32)
    else:
        model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.Flatten(),
                              nn.Linear(3 * 4 * 4, 3)).eval()
        x = torch.rand(2, 2, 6, 6)
        masks = np.zeros((2, 2, 6, 6), dtype=np.float32)
    masks[0, ..., :2] = 1
    masks[1, ..., 2:] = 1
    adapter = get_adapter(model)
    got = adapter.decompose(adapter.as_batch(x), masks)
    want, _ = contextual_decomposition(model, x, torch.as_tensor(masks))
    assert got.dtype == np.float64 and got.shape == (2, 3)
    np.testing.assert_allclose(got, want.detach().double().numpy(), rtol=1e-6)
    with pytest.raises(ExplanationError, match="do not match"):
        adapter.decompose(adapter.as_batch(x), masks[:1])


def test_adapter_objects_pass_through_and_torch_class_is_offered():
    class Fake:
        __eli5_nn_adapter__ = True

    fake = Fake()
    assert get_adapter(fake) is fake
    assert torch_module_class() is nn.Module
    with pytest.raises(TypeError, match="torch.nn.Module and keras.Model"):
        get_adapter(object())


def test_hugging_face_bert_and_vit_layouts():
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    small = {"hidden_size": 12, "num_hidden_layers": 2, "num_attention_heads": 2,
             "intermediate_size": 24, "num_labels": 3}
    bert = transformers.BertForSequenceClassification(
        transformers.BertConfig(vocab_size=40, **small)).eval()
    names = [n for n, _ in bert.named_modules() if n.endswith("layer.1")]
    assert _layout(bert, torch.randint(0, 40, (1, 9)), names[0]) == Layout("TC")
    vit = transformers.ViTForImageClassification(
        transformers.ViTConfig(image_size=32, patch_size=8, **small)).eval()
    block = [n for n, _ in vit.named_modules() if n.endswith("1.layernorm_before")][0]
    assert _layout(vit, torch.rand(1, 3, 32, 32), block) == Layout(
        "TC", prefix_tokens=1, grid=(4, 4))
