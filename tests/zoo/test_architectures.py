"""eli5_nn.adapters.architectures: duck-typed knowledge of real architectures."""

from __future__ import annotations

import eli5
import pytest
import torch

import eli5_nn
from eli5_nn.adapters import architectures as arch

from .cases import build, left_as_found
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
