"""Faithfulness (deletion / insertion) and the model-randomisation check, on PyTorch."""

from __future__ import annotations

import itertools

import eli5
import numpy as np
import pytest
import torch
from torch import nn

import eli5_nn
from eli5_nn.adapters import get_adapter
from eli5_nn.adapters.base import ExplanationError
from eli5_nn.metrics import deletion_insertion, faithfulness, randomization_check
from tests.text.models import MaskedBag, TextCNN

N_DIGITS = 20


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


# -- the best possible curve on a linear model -------------------------------------------------
@pytest.fixture
def linear() -> tuple[nn.Module, torch.Tensor, np.ndarray, float]:
    """Two-class linear model; the true effect of feature i on the logit
    difference (relative to the zero baseline) is ``(w1 - w0)_i * x_i``."""
    torch.manual_seed(0)
    model = nn.Linear(6, 2).eval()
    x = torch.tensor([[0.9, -1.2, 0.4, 1.5, -0.3, 0.7]])
    w = model.weight.detach().double().numpy()
    b = model.bias.detach().double().numpy()
    effects = (w[1] - w[0]) * x[0].double().numpy()
    return model, x, effects, float(b[1] - b[0])


def test_true_effect_map_gives_the_best_deletion_curve(linear: tuple) -> None:
    model, x, effects, bias = linear
    result = deletion_insertion(model, x, effects, target=1)
    # removing the k largest effects is the lowest logit difference reachable with k removals
    top = np.concatenate([[0.0], np.cumsum(np.sort(effects)[::-1])])
    best_deletion = _sigmoid(effects.sum() + bias - top)
    np.testing.assert_allclose(result.deletion_curve, best_deletion, rtol=1e-5)
    best_insertion = _sigmoid(bias + top)
    np.testing.assert_allclose(result.insertion_curve, best_insertion, rtol=1e-5)
    np.testing.assert_allclose(result.fractions, np.arange(7) / 6)
    # no order of the features does better, at any step or in area
    for perm in itertools.permutations(range(6)):
        other = deletion_insertion(model, x, -np.argsort(perm).astype(float), target=1)
        assert np.all(result.deletion_curve <= other.deletion_curve + 1e-7)
        assert np.all(result.insertion_curve >= other.insertion_curve - 1e-7)
        assert result.deletion_auc <= other.deletion_auc + 1e-9


def test_curve_ends_and_auc(linear: tuple) -> None:
    model, x, effects, _ = linear
    r = deletion_insertion(model, x, effects, target=0, steps=3)
    p = torch.softmax(model(x), 1)[0, 0].item()
    p_base = torch.softmax(model(torch.zeros_like(x)), 1)[0, 0].item()
    assert r.deletion_curve[0] == pytest.approx(p) and r.insertion_curve[-1] == pytest.approx(p)
    assert r.deletion_curve[-1] == pytest.approx(p_base)
    assert r.insertion_curve[0] == pytest.approx(p_base)
    assert len(r.fractions) == 4 and r.n_features == 6 and r.target == 0
    trapezoid = float(np.sum(np.diff(r.fractions) * (r.deletion_curve[1:]
                                                      + r.deletion_curve[:-1]) / 2))
    assert r.deletion_auc == pytest.approx(trapezoid)
    assert 0.0 <= r.deletion_auc <= 1.0 and 0.0 <= r.insertion_auc <= 1.0


# -- images --------------------------------------------------------------------------------
def _aucs(model: nn.Module, x: torch.Tensor, maps: list) -> np.ndarray:
    out = [deletion_insertion(model, x[k:k + 1], m) for k, m in enumerate(maps)]
    return np.array([[r.deletion_auc, r.insertion_auc] for r in out])


@pytest.fixture(scope="module")
def digits_random(digits_model: tuple) -> np.ndarray:
    model, x, _ = digits_model
    rng = np.random.default_rng(1)
    return _aucs(model, x[:N_DIGITS], [rng.random((8, 8)) for _ in range(N_DIGITS)])


@pytest.mark.parametrize(
    "method",
    [
        "integrated-gradients",
        "gradient-x-input",
        pytest.param("grad-cam", marks=pytest.mark.xfail(
            reason="Grad-CAM does no better than random maps on the digits CNN: with its "
            "Flatten→Linear head the channel weights (mean gradients) cancel and most maps are "
            "all zero; on a global-average-pool variant it is at chance too (8×8 inputs, 4×4 "
            "map)", strict=False)),
    ],
)
def test_attributions_beat_random_maps_on_digits(digits_model: tuple, digits_random: np.ndarray,
                                                 method: str) -> None:
    model, x, _ = digits_model
    expls = eli5_nn.explain_predictions(model, x[:N_DIGITS], method=method, progress=False)
    aucs = _aucs(model, x[:N_DIGITS], expls)
    lower_deletion = np.mean(aucs[:, 0] < digits_random[:, 0])
    higher_insertion = np.mean(aucs[:, 1] > digits_random[:, 1])
    assert lower_deletion > 0.6 and higher_insertion > 0.6, (lower_deletion, higher_insertion)


def test_patches_steps_and_chunking(digits_model: tuple) -> None:
    model, x, _ = digits_model
    expl = eli5.explain_prediction(model, x[:1], method="gradient")
    whole = deletion_insertion(model, x[:1], expl, patch_size=2)
    assert whole.n_features == 16 and len(whole.fractions) == 17
    chunked = deletion_insertion(model, x[:1], expl, patch_size=2, batch_size=3)
    np.testing.assert_allclose(chunked.deletion_curve, whole.deletion_curve, rtol=1e-5)
    np.testing.assert_allclose(chunked.insertion_curve, whole.insertion_curve, rtol=1e-5)
    coarse = deletion_insertion(model, x[:1], expl, steps=4)
    np.testing.assert_allclose(coarse.fractions, [0, 0.25, 0.5, 0.75, 1])
    # one score per element (channel axis kept) ranks the same as per position here (1 channel)
    per_element = deletion_insertion(model, x[:1], expl.targets[0].heatmap[None])
    full = deletion_insertion(model, x[:1], expl)
    np.testing.assert_allclose(per_element.deletion_curve, full.deletion_curve, rtol=1e-6)


def test_baselines_and_channels_last() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))
    x = torch.rand(1, 3, 6, 6)
    m = np.random.default_rng(0).random((6, 6))
    mean = deletion_insertion(model, x, m, baseline="mean")
    explicit = deletion_insertion(model, x, m, baseline=x.mean(dim=(2, 3), keepdim=True)
                                  .expand_as(x).numpy())
    np.testing.assert_allclose(mean.deletion_curve, explicit.deletion_curve, rtol=1e-5)
    const = deletion_insertion(model, x, m, baseline=0.5)
    p_gray = torch.softmax(model(torch.full_like(x, 0.5)), 1)[0, const.target].item()
    assert const.deletion_curve[-1] == pytest.approx(p_gray, rel=1e-5)


def test_faithfulness_scores_every_target(digits_model: tuple) -> None:
    model, x, _ = digits_model
    expl = eli5.explain_prediction(model, x[:1], method="gradient", top_targets=2)
    scores = faithfulness(model, x[:1], expl)
    assert len(scores) == 2
    for te, s in zip(expl.targets, scores, strict=True):
        assert set(s) == {"deletion_auc", "insertion_auc"}
        assert s == deletion_insertion(model, x[:1], expl, target=te.target).as_dict()
    assert faithfulness(model, x[:1], expl.targets[1]) == scores[1:]


def test_model_state_is_kept(digits_model: tuple) -> None:
    model, x, _ = digits_model
    net = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(64, 10))
    net.train()
    m = np.random.default_rng(0).random((8, 8))
    a = deletion_insertion(net, x[:1], m)
    b = deletion_insertion(net, x[:1], m)
    assert net.training
    np.testing.assert_array_equal(a.deletion_curve, b.deletion_curve)  # dropout was off


# -- text -----------------------------------------------------------------------------------
class BagOfEmbeddings(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb = nn.EmbeddingBag(20, 4, mode="sum", padding_idx=0)
        self.out = nn.Linear(4, 2)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.out(self.emb(ids))


def test_text_deletion_pads_tokens_in_order_of_effect() -> None:
    model = BagOfEmbeddings().eval()
    ids = torch.tensor([[5, 3, 17, 8, 11, 2, 0, 0]])
    w = model.out.weight.detach().double().numpy()
    emb = model.emb.weight.detach().double().numpy()
    effects = emb[ids[0, :6].numpy()] @ (w[1] - w[0])  # one per real token
    bias = float(model.out.bias[1].item() - model.out.bias[0].item())
    r = deletion_insertion(model, ids, effects, target=1, pad_value=0)
    assert r.n_features == 6
    top = np.concatenate([[0.0], np.cumsum(np.sort(effects)[::-1])])
    np.testing.assert_allclose(r.deletion_curve, _sigmoid(effects.sum() + bias - top), rtol=1e-5)
    np.testing.assert_allclose(r.insertion_curve, _sigmoid(bias + top), rtol=1e-5)
    # a map over every position (padding included) ranks the same real tokens
    full = deletion_insertion(model, ids, np.concatenate([effects, [9.0, 9.0]]), target=1)
    np.testing.assert_allclose(full.deletion_curve, r.deletion_curve, rtol=1e-6)
    worst = deletion_insertion(model, ids, -effects, target=1, pad_value=0)
    assert worst.deletion_auc > r.deletion_auc and worst.insertion_auc < r.insertion_auc
    with pytest.raises(ValueError, match="non-pad token"):
        deletion_insertion(model, ids, effects[:4], target=1, pad_value=0)
    with pytest.raises(ValueError, match="pad_value"):
        deletion_insertion(model, ids, effects, target=1, baseline=0.0)


def test_text_explanations_of_the_pipeline() -> None:
    torch.manual_seed(0)
    model = TextCNN().eval()
    ids = np.array([[5, 12, 7, 33, 2, 0, 0]])
    expl = eli5.explain_prediction(model, ids, method="integrated-gradients", pad_value=0)
    assert expl.targets[0].heatmap.shape == (5,)
    r = deletion_insertion(model, ids, expl)  # padding id from the embedding layer
    assert r.n_features == 5
    c = r.target
    p_pad = torch.softmax(model(torch.zeros(1, 7, dtype=torch.long)), 1)[0, c].item()
    assert r.deletion_curve[-1] == pytest.approx(p_pad, rel=1e-5)
    assert faithfulness(model, ids, expl) == [r.as_dict()]
    # a model with a second input: only the token ids are perturbed
    bag = MaskedBag().eval()
    mask = (ids != 0).astype(np.int64)
    e2 = eli5.explain_prediction(bag, (ids, mask), method="occlusion", pad_value=0, targets=[1])
    r2 = deletion_insertion(bag, (ids, mask), e2, pad_value=0)
    pad_in = (torch.zeros(1, 7, dtype=torch.long), torch.as_tensor(mask))
    assert r2.deletion_curve[-1] == pytest.approx(
        torch.softmax(bag(*pad_in), 1)[0, 1].item(), rel=1e-5)
    assert r2.deletion_auc < r2.insertion_auc


# -- errors ---------------------------------------------------------------------------------
def test_bad_input_says_what_is_expected(digits_model: tuple) -> None:
    model, x, _ = digits_model
    expl = eli5.explain_prediction(model, x[:1], method="gradient")
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        deletion_insertion(model, x[:1], expl, steps=0)
    with pytest.raises(ValueError, match="at most the number of features"):
        deletion_insertion(model, x[:1], expl, steps=65)
    with pytest.raises(ValueError, match=r"expected \(8, 8\)"):
        deletion_insertion(model, x[:1], np.ones((4, 4)))
    other = torch.zeros(1, 1, 6, 6)
    with pytest.raises(ValueError, match="computed for this doc"):
        deletion_insertion(nn.Sequential(nn.Flatten(), nn.Linear(36, 10)), other, expl)
    with pytest.raises(ValueError, match="leading batch axis of 1"):
        deletion_insertion(model, x[:2], expl)
    with pytest.raises(ValueError, match="not among the explanation's targets"):
        deletion_insertion(model, x[:1], expl, target=99)
    with pytest.raises(ValueError, match="patch_size"):
        deletion_insertion(model, x[:1], expl, patch_size=(2, 2, 2))
    with pytest.raises(ValueError, match="baseline has shape"):
        deletion_insertion(model, x[:1], expl, baseline=np.zeros((3, 3)))
    with pytest.raises(TypeError, match="target="):
        randomization_check(model, x[:1], targets=[1])
    adapter = get_adapter(model)
    with pytest.raises(ExplanationError, match="never the user's model"):
        adapter.randomize_layer(model, adapter.parameter_layers(x[:1])[0], 0)


# -- model-parameter randomisation ---------------------------------------------------------
def test_gradient_maps_lose_similarity_as_layers_are_randomised(digits_model: tuple) -> None:
    model, x, _ = digits_model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    grads = {k: p.grad for k, p in model.named_parameters()}
    checks = [randomization_check(model, x[k:k + 1], method="gradient") for k in range(5)]
    assert checks[0].layers == ["head.1", "features.2", "features.0"]  # top down
    final = np.array([c.correlations[-1] for c in checks])
    assert final.mean() < 0.3, final
    assert all(c.heatmaps[-1].shape == c.original.shape == (8, 8) for c in checks)
    # the user's model is untouched
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is grads[k] for k, p in model.named_parameters())
    assert not model.training


def test_randomisation_is_reproducible_and_independent_mode(digits_model: tuple) -> None:
    model, x, _ = digits_model
    a = randomization_check(model, x[:1], method="gradient", random_state=3)
    b = randomization_check(model, x[:1], method="gradient", random_state=3)
    np.testing.assert_array_equal(a.correlations, b.correlations)
    assert list(a.as_dict()) == a.layers
    independent = randomization_check(model, x[:1], method="gradient", cascading=False,
                                      random_state=3)
    # the first step randomises the same top layer in both modes
    assert independent.correlations[0] == pytest.approx(a.correlations[0])
    assert not independent.cascading and len(independent.correlations) == 3


def test_faithfulness_on_request_is_attached_and_shown(digits_model: tuple) -> None:
    model, x, _ = digits_model
    expl = eli5_nn.explain_prediction_nn(model, x[:1], method="integrated-gradients",
                                         top_targets=2, faithfulness=True)
    direct = eli5_nn.metrics.faithfulness(model, x[:1], expl)
    assert [t.faithfulness for t in expl.targets] == direct
    html = eli5_nn.format_as_html(expl)
    assert f"deletion AUC {direct[0]['deletion_auc']:.3f}" in html
    many = eli5_nn.explain_predictions(model, x[:3], method="gradient-x-input",
                                       faithfulness=True)
    for i, e in enumerate(many):
        assert e.targets[0].faithfulness == eli5_nn.metrics.faithfulness(model, x[i:i + 1], e)[0]
    plain = eli5_nn.explain_prediction_nn(model, x[:1], method="gradient")
    assert plain.targets[0].faithfulness is None
