"""eli5_nn.adapters.architectures: duck-typed knowledge of real architectures."""

from __future__ import annotations

import eli5
import pytest
import torch
from torch import nn

import eli5_nn
from eli5_nn.adapters import architectures as arch
from eli5_nn.adapters import torch_head

from .cases import CASES, build, expected_layer, left_as_found
from .timm_like import VisionTransformer

pytest.importorskip("transformers")


def test_class_token_heads() -> None:
    assert arch.reads_class_token(build("timm-vit")[0]) is True
    pooled = VisionTransformer()
    pooled.global_pool = "avg"
    assert arch.reads_class_token(pooled) is False
    assert arch.reads_class_token(build("hf-bert")[0]) is True
    assert arch.reads_class_token(build("hf-swin")[0]) is False
    assert arch.reads_class_token(build("small-cnn")[0]) is None


@pytest.mark.parametrize(("name", "layer"), [
    ("timm-vit", "blocks.1.norm1"), ("timm-deit", "blocks.1.norm1"),
    ("hf-bert", "bert.encoder.layer.0"), ("hf-distilbert", "distilbert.transformer.layer.0"),
])
def test_attention_input_layer(name: str, layer: str) -> None:
    model, doc = build(name)
    with torch.no_grad():
        found = arch.class_token_layer(
            model, lambda: model(**doc) if isinstance(doc, dict) else model(doc)
        )
    assert found == layer
    assert all(not h for m in model.modules() for h in (m._forward_hooks, m._forward_pre_hooks))


def test_outermost_attention_modules_only() -> None:
    model, _ = build("hf-bert")
    names = [n for n, _ in arch.attention_modules(model)]
    assert names == ["bert.encoder.layer.0.attention", "bert.encoder.layer.1.attention"]


def test_eager_attention_is_restored_also_on_error() -> None:
    model, doc = build("hf-vit")
    with pytest.raises(RuntimeError), arch.eager_attention(model) as switched:
        assert switched and model.config._attn_implementation == "eager"
        raise RuntimeError("inside")
    assert model.config._attn_implementation == "sdpa"
    cnn, _ = build("small-cnn")
    with arch.eager_attention(cnn) as switched:
        assert not switched


def test_model_inputs_and_tokenizer_tokens() -> None:
    from .test_text import tiny_tokenizer

    tok = tiny_tokenizer()
    enc = tok("the cats", return_offsets_mapping=True, return_length=True)
    assert set(arch.model_inputs(enc)) == {"input_ids", "token_type_ids", "attention_mask"}
    tokens, special = arch.tokenizer_tokens(tok, enc["input_ids"])
    assert tokens == ["[CLS]", "the", "cat", "##s", "[SEP]"]
    assert special.tolist() == [True, False, False, False, True]


def test_fullgrad_on_windowed_attention_says_why(device: str) -> None:
    model, x = build("hf-swin", device)
    with left_as_found(model), pytest.raises(eli5_nn.errors.ExplanationError,
                                             match="(?s)FullGrad.*swin"):
        eli5.explain_prediction(model, x, method="fullgrad")


def test_the_docs_zoo_page_holds_the_table() -> None:
    from pathlib import Path

    from .table import rst_table

    page = Path(__file__).parents[2] / "docs" / "zoo.rst"
    assert rst_table() in page.read_text(encoding="utf-8"), (
        "docs/zoo.rst's table differs from tests/zoo/table.py: paste rst_table() there"
    )


@pytest.mark.parametrize("name", sorted(CASES))
def test_torch_head_finds_the_tables_layer(name: str) -> None:
    model, doc = build(name)
    with torch.no_grad():
        found = torch_head.automatic_layer(
            model, lambda: model(**doc) if isinstance(doc, dict) else model(doc)
        )
    assert found is not None and found[0] == expected_layer(CASES[name], model)
    assert all(not h for m in model.modules() for h in (m._forward_hooks, m._forward_pre_hooks))


class _Text(nn.Module):
    def __init__(self, head: str) -> None:
        super().__init__()
        self.head = head
        self.emb = nn.Embedding(50, 8)
        self.conv = nn.Conv1d(8, 6, 3)
        self.rnn = nn.LSTM(8, 6, batch_first=True)
        layer = nn.TransformerEncoderLayer(8, 2, 16, batch_first=True)
        self.enc = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.fc = nn.Linear(8 if head == "cls" else 6, 2)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        e = self.emb(ids)
        if self.head == "max":  # a text CNN: max over time
            return self.fc(torch.relu(self.conv(e.transpose(1, 2))).max(dim=2).values)
        if self.head == "mean":  # an LSTM averaged over time
            return self.fc(self.rnn(e)[0].mean(dim=1))
        if self.head == "last":  # an LSTM's last hidden state: no map reduced
            return self.fc(self.rnn(e)[1][0][-1])
        return self.fc(self.enc(e)[:, 0])  # a class token read by position


@pytest.mark.parametrize(("head", "layer"), [
    ("max", "conv"), ("mean", "rnn"), ("last", None), ("cls", "enc.layers.0"),
])
def test_torch_head_on_text_heads(head: str, layer: str | None) -> None:
    torch.manual_seed(0)
    model = _Text(head).eval()
    ids = torch.randint(0, 50, (1, 12))
    with torch.no_grad():
        found = torch_head.automatic_layer(model, lambda: model(ids))
    assert (found[0] if found else None) == layer
    if layer == "enc.layers.0":  # found from the traced x[:, 0], not from a known class
        assert "one token" in found[1]


def test_torch_head_on_an_mlp_is_none() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 4), nn.ReLU(), nn.Linear(4, 2)).eval()
    with torch.no_grad():
        assert torch_head.automatic_layer(model, lambda: model(torch.rand(1, 3, 2, 2))) is None


@pytest.mark.parametrize("name", sorted(CASES))
def test_auto_layer_through_the_adapter(name: str, device: str) -> None:
    from eli5_nn.adapters import auto_layer, get_adapter

    model, doc = build(name, device)
    adapter = get_adapter(model)
    x = adapter.as_batch(doc)
    with left_as_found(model):
        ref, why = auto_layer.automatic_layer(adapter, x)
    assert ref.name == expected_layer(CASES[name], model) and why
    assert auto_layer.automatic_layer(adapter, x)[0] == ref  # cached
