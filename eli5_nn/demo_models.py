"""The demo's PyTorch models (imported only when the demo or the tests need torch)."""

from __future__ import annotations

import torch
from torch import nn


class TextCNN(nn.Module):
    """Token ids → Embedding → Conv1d → ReLU → max over time → Linear."""

    def __init__(self, vocab: int = 50, dim: int = 8, channels: int = 16, n_classes: int = 2,
                 padding_idx: int | None = 0) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, dim, padding_idx=padding_idx)
        self.conv = nn.Conv1d(dim, channels, 3, padding=1)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(channels, n_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Class scores (N, n_classes) of token ids (N, T)."""
        h = self.relu(self.conv(self.embedding(ids).transpose(1, 2)))
        return self.fc(h.amax(dim=2))


def digits_cnn() -> nn.Module:
    """A small CNN for 8×8 digits (1 channel), 10 classes."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10),
    )


def train_classifier(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int,
                     lr: float = 3e-3, batch: int = 64, seed: int = 0) -> nn.Module:
    """Adam on cross-entropy; returns the model in eval mode."""
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        for b in torch.randperm(len(x)).split(batch):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[b]), y[b]).backward()
            opt.step()
    return model.eval()
