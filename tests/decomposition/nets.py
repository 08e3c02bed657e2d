"""Small networks covering every operation contextual decomposition supports."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tests import models
from tests.text.models import BiLSTM, TextCNN


class FunctionalNet(nn.Module):
    """Functional calls, in-place ops, residual +, cat, view/reshape, Conv1d path."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.bn = nn.BatchNorm2d(6)
        self.conv2 = nn.Conv2d(6, 6, 3, padding=1)
        self.conv1d = nn.Conv1d(6, 4, 3, padding=1)
        self.act = nn.LeakyReLU(0.1)
        self.drop = nn.Dropout(0.3)
        self.fc = nn.Linear(6 + 4 + 6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn(self.conv(x)), inplace=True)
        r = self.conv2(h)
        r += h  # residual, in place
        r.relu_()
        p = F.max_pool2d(r, 2)
        a = F.adaptive_avg_pool2d(p, 1).view(p.size(0), -1)
        seq = torch.flatten(p, 2)  # (N, 6, L)
        s = self.act(self.conv1d(seq)).mean(dim=2)
        m = torch.max(seq, dim=2)[0]
        z = torch.cat([torch.tanh(a), torch.sigmoid(s), m.reshape(m.shape[0], 6)], dim=1)
        return self.fc(self.drop(z)) * 2.0 - 1.0


class Conv1dNet(nn.Module):
    """Conv1d → Tanh → AvgPool1d → MaxPool1d → Sigmoid → Linear on (N, C, L) input."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv1d(2, 5, 3), nn.Tanh(), nn.AvgPool1d(2), nn.MaxPool1d(2), nn.Sigmoid(),
            nn.Flatten(), nn.Linear(5 * 3, 4),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class LastState(nn.Module):
    """Embedding → unidirectional LSTM → last hidden state → Linear."""

    def __init__(self, cell: type[nn.Module] = nn.LSTM, layers: int = 1) -> None:
        super().__init__()
        self.embedding = nn.Embedding(30, 6)
        self.rnn = cell(6, 5, num_layers=layers, batch_first=False)
        self.fc = nn.Linear(5, 3)
        self.lstm = cell is nn.LSTM

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        out, state = self.rnn(self.embedding(ids).transpose(0, 1))
        h = state[0] if self.lstm else state
        return self.fc(h[-1])


class MaxOverTime(nn.Module):
    """Embedding → bidirectional GRU → max over time (torch.max) → Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(30, 6)
        self.rnn = nn.GRU(6, 4, batch_first=True, bidirectional=True, num_layers=2)
        self.fc = nn.Linear(8, 2)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(self.embedding(ids))
        return self.fc(out.max(dim=1).values)


def image_nets() -> dict[str, nn.Module]:
    """Image-shaped (N, 3, 16, 16) networks."""
    nets = {name: models.randomize_bn(f()) for name, f in models.ARCHITECTURES.items()}
    nets["functional"] = models.randomize_bn(FunctionalNet())
    return nets


def text_nets() -> dict[str, nn.Module]:
    """Token-id (N, T) networks with vocabularies of at least 30."""
    return {
        "text_cnn": TextCNN(vocab=30),
        "bilstm_2_layers": BiLSTM(vocab=30, layers=2),
        "bigru": BiLSTM(vocab=30, layers=1, cell=nn.GRU),
        "lstm_last_state": LastState(),
        "gru_2_layers_last_state": LastState(nn.GRU, layers=2),
        "gru_max_over_time": MaxOverTime(),
    }
