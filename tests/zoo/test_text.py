"""Hugging Face text classifiers: Grad-CAM over the token axis, attention as the model
loads it (sdpa), the stated IG baseline, BatchEncoding docs and ``tokenizer=``."""

from __future__ import annotations

from typing import Any

import eli5
import numpy as np
import pytest
import torch

import eli5_nn
from eli5_nn.adapters import architectures

from .cases import CASES, build, expected_layer, left_as_found, scores
from .test_zoo import pad_embedding_score

transformers = pytest.importorskip("transformers")

TEXT = ["hf-bert", "hf-roberta", "hf-distilbert"]
LAST_BLOCK = {
    "hf-bert": "bert.encoder.layer.1", "hf-roberta": "roberta.encoder.layer.1",
    "hf-distilbert": "distilbert.transformer.layer.1",
}


def token_grad_cam(model: torch.nn.Module, doc: dict, layer: str, target: int) -> np.ndarray:
    """Grad-CAM over the token axis, hidden units as channels, by hand:
    ``cam_t = sum_h mean_t'(dy/dA[t', h]) * A[t, h]`` (signed)."""
    mod = dict(model.named_modules())[layer]
    taken: dict[str, torch.Tensor] = {}

    def hook(_m: Any, _i: Any, out: Any) -> None:
        taken.setdefault("a", out[0] if isinstance(out, tuple) else out)

    handle = mod.register_forward_hook(hook)
    try:
        logits = model(**doc).logits
    finally:
        handle.remove()
    (g,) = torch.autograd.grad(logits[0, target], taken["a"])
    a = taken["a"][0]
    return (g[0].mean(dim=0) * a).sum(dim=-1).detach().cpu().numpy()


@pytest.mark.parametrize("name", TEXT)
@pytest.mark.parametrize("where", ["last block", "automatic"])
def test_grad_cam_runs_over_tokens_with_hidden_units_as_channels(
    name: str, where: str, device: str
) -> None:
    model, doc = build(name, device)
    layer = LAST_BLOCK[name] if where == "last block" else None
    with left_as_found(model):
        t = eli5.explain_prediction(model, doc, method="grad-cam", layer=layer).targets[0]
    layer = layer or expected_layer(CASES[name], model)
    hand = token_grad_cam(model, doc, layer, t.target)
    assert t.layout is not None and t.layout.axes == "TC"
    np.testing.assert_allclose(t.layout.channel_sum(t.attribution), hand, rtol=1e-4, atol=1e-6)
    relu = np.clip(hand, 0, None)
    np.testing.assert_allclose(t.heatmap, relu / relu.max(), atol=1e-5)


def eager_last_attention(model: torch.nn.Module, doc: dict) -> np.ndarray:
    with architectures.eager_attention(model), torch.no_grad():
        out = model(**doc, output_attentions=True)
    return out.attentions[-1][0].double().mean(dim=(0, 1)).cpu().numpy()


@pytest.mark.parametrize("name", TEXT)
def test_attention_on_sdpa_equals_output_attentions_with_eager(name: str, device: str) -> None:
    model, doc = build(name, device)
    assert model.config._attn_implementation == "sdpa"
    with left_as_found(model):
        t = eli5.explain_prediction(model, doc, method="attention").targets[0]
    assert model.config._attn_implementation == "sdpa"
    # the last attention layer's weights, averaged over heads and queries
    np.testing.assert_allclose(t.attribution, eager_last_attention(model, doc), atol=1e-6)


def test_attention_rollout_on_bert(device: str) -> None:
    from .test_vit import eager_attentions, hand_rollout

    model, doc = build("hf-bert", device)
    with left_as_found(model):
        t = eli5.explain_prediction(model, doc, method="attention-rollout").targets[0]
    row = hand_rollout(eager_attentions(model, **doc))[0]  # the [CLS] row
    np.testing.assert_allclose(t.attribution, row, rtol=1e-4, atol=1e-7)


def test_roberta_ig_baseline_is_the_padding_embedding(device: str) -> None:
    """RoBERTa derives position ids from the token ids, so all-padding ids differ
    from the stated baseline: the padding token's word embedding at every position,
    positions, token types and attention mask those of the doc."""
    model, doc = build("hf-roberta", device)
    t = eli5.explain_prediction(model, doc, method="integrated-gradients", steps=64).targets[0]
    total = float(np.sum(t.attribution))
    f = scores(model, doc)[0, t.target]
    exact = f - pad_embedding_score(model, doc, t.target)
    assert abs(total - exact) <= 1e-3 + 1e-3 * abs(exact)
    all_pad = {**doc, "input_ids": torch.full_like(doc["input_ids"], model.config.pad_token_id)}
    assert abs(f - scores(model, all_pad)[0, t.target] - exact) > 1e-3  # not that baseline


def tiny_tokenizer() -> Any:
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "##s", "play", "dog"]
    try:
        return transformers.BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)})
    except TypeError:  # transformers 4 reads a file
        import os
        import tempfile

        path = os.path.join(tempfile.mkdtemp(), "vocab.txt")
        with open(path, "w") as f:
            f.write("\n".join(vocab) + "\n")
        return transformers.BertTokenizerFast(vocab_file=path)


def test_batch_encoding_doc_and_tokenizer(device: str) -> None:
    model, _ = build("hf-bert", device)
    tok = tiny_tokenizer()
    enc = tok("the cats play", return_tensors="pt").to(device)
    pieces = ["[CLS]", "the", "cat", "##s", "play", "[SEP]"]
    assert tok.convert_ids_to_tokens(enc["input_ids"][0]) == pieces
    with left_as_found(model):
        expl = eli5.explain_prediction(model, enc, tokenizer=tok)
    as_dict = eli5.explain_prediction(model, dict(enc))
    t = expl.targets[0]
    np.testing.assert_allclose(t.attribution, as_dict.targets[0].attribution, rtol=1e-5)
    spans = t.weighted_spans.docs_weighted_spans[0]
    shown = {spans.document[s:e]: w for _f, ranges, w in spans.spans for s, e in ranges}
    assert {"the", "cat", "##s", "play"} <= set(shown)  # word pieces shown as such
    assert all(shown.get(s, 0.0) == 0.0 for s in ("[CLS]", "[SEP]"))  # never highlighted
    special = np.isin(enc["input_ids"][0].cpu().numpy(), tok.all_special_ids)
    heat = t.heatmap
    if heat.shape[0] == special.shape[0]:
        assert np.all(heat[special] == 0)
    else:  # special tokens left out of the result
        assert heat.shape[0] == int((~special).sum())


def test_attention_where_there_is_none_says_so(device: str) -> None:
    torch.manual_seed(0)

    class GRUText(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = torch.nn.Embedding(20, 8, padding_idx=0)
            self.rnn = torch.nn.GRU(8, 8, batch_first=True)
            self.fc = torch.nn.Linear(8, 2)

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            return self.fc(self.rnn(self.emb(ids))[0][:, -1])

    model = GRUText().eval().to(device)
    ids = torch.tensor([[3, 4, 5, 6]], device=device)
    with pytest.raises(eli5_nn.errors.ExplanationError, match="GRUText.*attention") as err:
        eli5.explain_prediction(model, ids, method="attention")
    assert "method=" in str(err.value) or "use" in str(err.value)
