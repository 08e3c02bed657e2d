"""Shared fixtures: test architectures and a small CNN trained on scikit-learn's digits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from tests import models


@pytest.fixture(params=sorted(models.ARCHITECTURES))
def arch_model(request: pytest.FixtureRequest) -> nn.Module:
    torch.manual_seed(0)
    return models.randomize_bn(models.ARCHITECTURES[request.param]()).eval()


@pytest.fixture
def image_batch() -> torch.Tensor:
    return torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(1))


class DigitsCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(16 * 4 * 4, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@pytest.fixture(scope="session")
def digits_model() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A CNN trained on 8×8 digits in a couple of seconds; returns (model, X_test, y_test)."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.images / 16.0, dtype=torch.float32)[:, None]
    y = torch.tensor(data.target)
    rng = np.random.default_rng(0)
    idx = torch.as_tensor(rng.permutation(len(x)))
    train, test = idx[:1400], idx[1400:]
    torch.manual_seed(0)
    model = DigitsCNN()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(8):
        for b in train.split(64):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[b]), y[b]).backward()
            opt.step()
    model.eval()
    return model, x[test], y[test]
