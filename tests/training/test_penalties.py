"""CDEP and the gradient penalty: scalars that train the weights, their edge cases,
text variants, and a tiny training run where they reduce reliance on a shortcut."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from eli5_nn.decomposition import contextual_decomposition
from eli5_nn.training import cdep_penalty, gradient_penalty
from tests.text.models import TextCNN


def _cnn(act: type[nn.Module] = nn.ReLU) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), act(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(4 * 4 * 4, 3))


def _corner() -> torch.Tensor:
    mask = torch.zeros(1, 8, 8)
    mask[:, :3, :3] = 1
    return mask


@pytest.mark.parametrize("kind", ["cdep", "gradient"])
def test_penalties_are_scalars_that_reach_every_weight(kind):
    model = _cnn(nn.ReLU if kind == "cdep" else nn.Tanh)
    x = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    x0 = x.clone()
    pen = (cdep_penalty(model, x, _corner()) if kind == "cdep"
           else gradient_penalty(model, x, y, _corner()))
    assert pen.dim() == 0 and torch.isfinite(pen) and pen > 0
    pen.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().max() > 0, name
    assert torch.equal(x, x0)


def test_gradient_penalty_over_an_empty_mask_is_exactly_zero():
    model = _cnn(nn.Tanh)
    x = torch.rand(4, 1, 8, 8)
    pen = gradient_penalty(model, x, None, torch.zeros(1, 8, 8))
    assert pen.item() == 0.0


def test_cdep_over_a_full_mask_leaves_nothing_irrelevant():
    model = _cnn()
    x = torch.rand(4, 1, 8, 8)
    _, irr = contextual_decomposition(model, x, torch.ones_like(x))
    assert irr.abs().max().item() == 0.0
    pen = cdep_penalty(model, x, torch.ones(1, 8, 8))
    assert torch.allclose(pen, torch.sigmoid(model(x)).mean(), atol=1e-6)


def test_text_variants_take_a_token_mask():
    torch.manual_seed(0)
    model = TextCNN()
    ids = torch.randint(1, 50, (3, 7))
    mask = torch.zeros(3, 7)
    mask[:, 2] = 1
    for pen in (cdep_penalty(model, ids, mask), gradient_penalty(model, ids, None, mask)):
        assert pen.dim() == 0 and pen > 0
        (g,) = torch.autograd.grad(pen, model.embedding.weight)
        assert g.abs().max() > 0
    assert gradient_penalty(model, ids, None, torch.zeros(3, 7)).item() == 0.0


def test_bad_masks_are_refused():
    with pytest.raises(ValueError, match="shape"):
        cdep_penalty(_cnn(), torch.rand(2, 1, 8, 8), torch.ones(8, 9))
    with pytest.raises(TypeError):
        gradient_penalty(_cnn(), [[1.0]], None, torch.ones(1))


def _shortcut_data(n: int, flip: bool, seed: int, strength: float
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Class in a noisy stripe pattern (rows 3-7) and, as a clean shortcut, in the
    top-left corner; ``flip`` puts the wrong class in the corner."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    pattern = torch.zeros(8, 8)
    pattern[3:, ::2] = 1.0
    pattern[3:, 1::2] = -1.0
    sign = (2 * y - 1).float().view(-1, 1, 1)
    x = 0.25 * sign * pattern + 1.0 * torch.randn(n, 8, 8, generator=g)
    x[:, :3, :3] = 0.0
    corner = (1 - y) if flip else y
    x[:, :2, :2] = strength * (2 * corner - 1).float().view(-1, 1, 1)
    return x[:, None], y


def _train(penalty: str, lam: float, act: type[nn.Module], strength: float) -> float:
    x, y = _shortcut_data(256, False, 0, strength)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), act(), nn.Linear(16, 2))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    mask = _corner()
    for _ in range(40):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        if penalty == "cdep":
            loss = loss + lam * cdep_penalty(model, x, mask)
        elif penalty == "gradient":
            loss = loss + lam * gradient_penalty(model, x, None, mask)
        loss.backward()
        opt.step()
    xt, yt = _shortcut_data(512, True, 1, strength)  # the shortcut now points the wrong way
    with torch.no_grad():
        return float((model(xt).argmax(1) == yt).float().mean())


@pytest.mark.parametrize(("penalty", "lam", "act", "strength"), [
    ("cdep", 10.0, nn.Tanh, 3.0),
    # a saturating tanh can keep using the corner with small gradients there: ReLU
    ("gradient", 1000.0, nn.ReLU, 2.5),
])
def test_a_penalty_makes_a_model_rely_less_on_a_shortcut(penalty, lam, act, strength):
    vanilla = _train("none", 0.0, act, strength)
    with_penalty = _train(penalty, lam, act, strength)
    print(f"accuracy with the shortcut reversed: vanilla {vanilla:.2f}, {penalty} "
          f"{with_penalty:.2f}")
    assert vanilla < 0.5
    assert with_penalty > vanilla + 0.2
