"""Small PyTorch text classifiers for the text suite: ids → Embedding → body → classifier."""

from __future__ import annotations

import torch
from torch import nn

from eli5_nn.demo_models import TextCNN

__all__ = ["AttentionGRU", "BiLSTM", "MaskedBag", "TextCNN", "TinyTransformer"]

VOCAB, DIM, N_CLASSES = 50, 8, 2


class BiLSTM(nn.Module):
    """Embedding → stacked bidirectional LSTM (batch first) → mean over time → Linear."""

    def __init__(self, vocab: int = VOCAB, dim: int = DIM, hidden: int = 8, layers: int = 2,
                 n_classes: int = N_CLASSES, cell: type[nn.Module] = nn.LSTM) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, dim, padding_idx=0)
        self.rnn = cell(dim, hidden, num_layers=layers, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(2 * hidden, n_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(self.embedding(ids))
        return self.fc(out.mean(dim=1))


class AdditiveAttention(nn.Module):
    """Scores each position, softmax over positions; returns (context, weights)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.score = nn.Linear(dim, 1)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        w = torch.softmax(self.score(torch.tanh(h)).squeeze(-1), dim=1)
        return (w.unsqueeze(-1) * h).sum(dim=1), w


class AttentionGRU(nn.Module):
    """Embedding → GRU → additive attention → Linear."""

    def __init__(self, vocab: int = VOCAB, dim: int = DIM, hidden: int = 8,
                 n_classes: int = N_CLASSES) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, dim, padding_idx=0)
        self.rnn = nn.GRU(dim, hidden, batch_first=True)
        self.attention = AdditiveAttention(hidden)
        self.fc = nn.Linear(hidden, n_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(self.embedding(ids))
        ctx, _w = self.attention(out)
        return self.fc(ctx)


class TinyTransformer(nn.Module):
    """Embedding + positions → one TransformerEncoderLayer → mean → Linear."""

    def __init__(self, vocab: int = VOCAB, dim: int = DIM, n_classes: int = N_CLASSES,
                 max_len: int = 32) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, dim, padding_idx=0)
        self.position = nn.Parameter(torch.randn(1, max_len, dim) * 0.1)
        self.encoder = nn.TransformerEncoderLayer(dim, 2, 16, dropout=0.0, batch_first=True)
        self.fc = nn.Linear(dim, n_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.embedding(ids) + self.position[:, : ids.shape[1]]
        return self.fc(self.encoder(h).mean(dim=1))


class MaskedBag(nn.Module):
    """Takes (ids, mask): the masked mean of the embeddings → Linear. A model
    with a second input, and a linear one, so occlusion and IG are exact."""

    def __init__(self, vocab: int = VOCAB, dim: int = DIM, n_classes: int = N_CLASSES) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, dim)
        self.fc = nn.Linear(dim, n_classes)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        e = self.embedding(ids) * mask.unsqueeze(-1).to(torch.float32)
        return self.fc(e.sum(dim=1) / 4.0)
