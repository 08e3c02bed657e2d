"""The model zoo, table-driven: real architectures with random weights, no downloads.

For each architecture of :data:`tests.zoo.table.TORCH_ZOO`: the default call
works, the automatic layer is the table's, Integrated Gradients is complete, every
method the table lists runs, and each call leaves the model as it found it.
"""

from __future__ import annotations

import eli5
import numpy as np
import pytest
import torch

import eli5_nn  # noqa: F401  (registers the handlers)

from .cases import (
    CASES,
    assert_complete,
    build,
    chosen_layer,
    expected_layer,
    left_as_found,
    scores,
)

pytest.importorskip("transformers")

NAMES = sorted(CASES)


@pytest.mark.parametrize("name", NAMES)
def test_default_call_works_and_leaves_the_model_as_found(name: str, device: str) -> None:
    model, doc = build(name, device)
    with left_as_found(model):
        expl = eli5.explain_prediction(model, doc)
    assert expl.error is None and expl.targets
    t = expl.targets[0]
    assert np.all(np.isfinite(t.heatmap)) and 0 <= t.heatmap.min() <= t.heatmap.max() <= 1
    top = int(np.argmax(scores(model, doc)[0]))
    assert t.target == top
    assert np.isclose(t.score, scores(model, doc)[0, top], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_automatic_layer_is_the_tables(name: str, device: str) -> None:
    case = CASES[name]
    model, doc = build(name, device)
    expl = eli5.explain_prediction(model, doc, method="grad-cam")
    assert chosen_layer(expl.description) == expected_layer(case, model), expl.description
    # the description says why: the head's reduction, or the class token's attention
    assert "reduction" in expl.description or "attention" in expl.description, expl.description


@pytest.mark.parametrize("name", NAMES)
def test_integrated_gradients_is_complete(name: str, device: str) -> None:
    case = CASES[name]
    model, doc = build(name, device)
    with left_as_found(model):
        expl = eli5.explain_prediction(model, doc, method="integrated-gradients")
    t = expl.targets[0]
    if case.modality == "image":
        f = scores(model, doc)[0, t.target]
        f0 = scores(model, torch.zeros_like(doc))[0, t.target]
    else:  # the stated baseline: the padding token's embedding at every position
        f = scores(model, doc)[0, t.target]
        f0 = pad_embedding_score(model, doc, t.target)
        assert "padding" in expl.description
    assert_complete(float(np.sum(t.attribution)), f - f0, name)


def pad_embedding_score(model: torch.nn.Module, doc: dict, target: int) -> float:
    """f(baseline) for a Hugging Face text model: every position's word embedding
    replaced by the padding token's, positions, token types and mask as in ``doc``."""
    emb = model.get_input_embeddings()
    ids = doc["input_ids"]
    with torch.no_grad():
        base = emb(torch.full_like(ids, model.config.pad_token_id))
        out = model(inputs_embeds=base, attention_mask=doc["attention_mask"])
    return float(out.logits[0, target])


METHOD_CASES = [(n, m) for n in NAMES for m in CASES[n].methods]


@pytest.mark.parametrize(("name", "method"), METHOD_CASES)
def test_every_listed_method_runs(name: str, method: str, device: str) -> None:
    model, doc = build(name, device)
    fast = {"integrated-gradients": {"steps": 8}, "smoothgrad": {"samples": 4}}
    with left_as_found(model):
        expl = eli5.explain_prediction(model, doc, method=method, **fast.get(method, {}))
    assert expl.error is None and expl.targets
    assert np.all(np.isfinite(expl.targets[0].heatmap))
