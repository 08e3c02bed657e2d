"""Hugging Face-style text docs: a dict / BatchEncoding of inputs, ``tokenizer=`` for the
tokens (word pieces as such, special tokens never highlighted), the IG baseline stated
exactly. The tokenizer here is a stand-in with the two attributes eli5-nn reads."""

from __future__ import annotations

import eli5
import numpy as np
import pytest
import torch
from torch import nn

import eli5_nn  # noqa: F401  (registers the handlers)
from eli5_nn.errors import Eli5NNTypeError, ExplanationError

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "cat", "##s", "play", "dog"]


class Tokenizer:
    """What eli5-nn reads of a Hugging Face tokenizer."""

    all_special_ids = [0, 1, 2, 3]

    def convert_ids_to_tokens(self, ids: list[int]) -> list[str]:
        return [VOCAB[i] for i in ids]


class Classifier(nn.Module):
    """Takes keyword inputs as Hugging Face models do: ids, mask, segments."""

    def __init__(self) -> None:
        super().__init__()
        self.word = nn.Embedding(len(VOCAB), 6, padding_idx=0)
        self.position = nn.Embedding(8, 6)
        self.fc = nn.Linear(6, 2)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1])[None]
        h = torch.tanh(self.word(input_ids) + self.position(positions))
        m = attention_mask[..., None].float()
        return self.fc((h * m).sum(1) / m.sum(1))


@pytest.fixture
def model() -> nn.Module:
    torch.manual_seed(0)
    return Classifier().eval()


IDS = torch.tensor([[2, 4, 5, 6, 7, 3, 0, 0]])  # [CLS] the cat ##s play [SEP] [PAD] [PAD]


def encoding(**extra: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"input_ids": IDS, "attention_mask": (IDS != 0).long(),
            "token_type_ids": torch.zeros_like(IDS), **extra}


def shown(t: eli5.base.TargetExplanation) -> dict[str, float]:
    spans = t.weighted_spans.docs_weighted_spans[0]
    return {spans.document[s:e]: w for _f, ranges, w in spans.spans for s, e in ranges}


def test_tokenizer_spells_the_tokens_and_special_tokens_are_left_out(model: nn.Module) -> None:
    expl = eli5.explain_prediction(model, encoding(), tokenizer=Tokenizer(),
                                   method="gradient-x-input")
    t = expl.targets[0]
    assert list(shown(t)) == ["the", "cat", "##s", "play"]  # word pieces as such
    assert t.heatmap.shape == (4,)
    assert t.attribution.shape[0] == 8  # the raw values keep every position
    assert "(padding and special tokens left out)" in expl.description
    plain = eli5.explain_prediction(model, encoding(), method="gradient-x-input")
    np.testing.assert_allclose(t.attribution, plain.targets[0].attribution)
    assert plain.targets[0].heatmap.shape == (6,)  # without a tokenizer: padding only


def test_tokenizer_only_keys_are_dropped(model: nn.Module) -> None:
    """A BatchEncoding asked for offsets holds keys the model does not take."""
    offsets = torch.zeros(1, 8, 2, dtype=torch.long)
    expl = eli5.explain_prediction(model, encoding(offset_mapping=offsets),
                                   tokenizer=Tokenizer(), method="gradient")
    assert list(shown(expl.targets[0])) == ["the", "cat", "##s", "play"]


def test_ig_baseline_is_stated_exactly(model: nn.Module) -> None:
    expl = eli5.explain_prediction(model, encoding(), tokenizer=Tokenizer(),
                                   method="integrated-gradients", steps=64)
    assert ("baseline: the padding embedding (id 0) at every position as the output of "
            "layer 'word'") in expl.description
    t = expl.targets[0]
    with torch.no_grad():  # that baseline: word embeddings replaced, positions kept
        positions = torch.arange(8)[None]
        h = torch.tanh(model.word(torch.zeros_like(IDS)) + model.position(positions))
        m = (IDS != 0)[..., None].float()
        f0 = float(model.fc((h * m).sum(1) / m.sum(1))[0, t.target])
    assert float(np.sum(t.attribution)) == pytest.approx(t.score - f0, rel=1e-3, abs=1e-4)


def test_tokens_and_tokenizer_are_not_both_given(model: nn.Module) -> None:
    with pytest.raises(ExplanationError, match="tokens= or tokenizer="):
        eli5.explain_prediction(model, encoding(), tokenizer=Tokenizer(),
                                tokens=[str(i) for i in range(8)])


def test_a_tokenizer_must_be_one(model: nn.Module) -> None:
    with pytest.raises(Eli5NNTypeError, match="Hugging Face tokenizer"):
        eli5.explain_prediction(model, encoding(), tokenizer=VOCAB)


def test_a_tokenizer_applies_to_text_only() -> None:
    image_model = nn.Sequential(nn.Conv2d(3, 2, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                nn.Flatten(), nn.Linear(2, 2)).eval()
    with pytest.raises(ExplanationError, match="tokenizer= appl"):
        eli5.explain_prediction(image_model, torch.rand(1, 3, 8, 8), tokenizer=Tokenizer())
