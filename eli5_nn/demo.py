"""The demo: a CNN trained on scikit-learn's digits, explained by every image method,
and text CNNs (PyTorch and Keras) trained on IMDB reviews, explained per token."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from .explain import explain_predictions
from .formatters import save_html
from .methods import METHODS
from .results import Comparison

DEMO_METHODS = (
    "grad-cam", "grad-cam++", "gradient", "gradient-x-input", "smoothgrad",
    "integrated-gradients", "fullgrad",
)


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    data = load_digits()
    return (data.images / 16.0).astype(np.float32)[:, None], data.target.astype(np.int64)


TEXT_METHODS = ("integrated-gradients", "occlusion", "gradient-x-input")
REVIEW_LENGTH, VOCAB_SIZE = 160, 6000


def train_digits_cnn(cache: Path, log: Any = print) -> tuple[Any, np.ndarray, np.ndarray]:
    """Train (or load from ``cache``) the demo CNN; returns (model, X_test, y_test)."""
    import torch

    from .demo_models import digits_cnn, train_classifier

    x, y = _digits()
    order = np.random.default_rng(0).permutation(len(x))
    train, test = order[:1500], order[1500:]
    model = digits_cnn()
    weights = cache / "digits_cnn.pt"
    if weights.exists():
        model.load_state_dict(torch.load(weights, weights_only=True))
        log(f"loaded the cached model from {weights}")
    else:
        t0 = time.perf_counter()
        train_classifier(model, torch.from_numpy(x[train]), torch.from_numpy(y[train]), 12)
        log(f"trained the digits CNN in {time.perf_counter() - t0:.1f}s")
        cache.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), weights)
    model.eval()
    with torch.no_grad():
        acc = float((model(torch.from_numpy(x[test])).argmax(1).numpy() == y[test]).mean())
    log(f"test accuracy {acc:.3f} on {len(test)} held-out digits")
    return model, x[test], y[test]


def train_text_models(
    cache: Path, n_train: int = 6000, log: Any = print
) -> tuple[list[tuple[str, Any]], np.ndarray, list[list[str]], np.ndarray]:
    """Train (or load) a text CNN on IMDB reviews in PyTorch and, when Keras is
    installed, in Keras. Returns ``[(label, model)]``, the held-out ids, their
    tokens and labels."""
    import torch

    from .demo_data import Vocabulary, load_reviews
    from .demo_models import TextCNN, train_classifier

    texts, labels = load_reviews()
    order = np.random.default_rng(0).permutation(len(texts))
    train, test = order[:n_train], order[n_train:n_train + 200]
    vocab = Vocabulary([texts[i] for i in train], VOCAB_SIZE)
    encoded = [vocab.encode(texts[i], REVIEW_LENGTH) for i in np.r_[train, test]]
    ids = np.stack([e[0] for e in encoded])
    x_train, x_test = ids[:n_train], ids[n_train:]
    y_train, y_test = labels[train], labels[test]
    tokens_test = [e[1] for e in encoded[n_train:]]
    models: list[tuple[str, Any]] = []
    net = TextCNN(vocab=VOCAB_SIZE, dim=32, channels=64)
    weights = cache / f"imdb_cnn_{n_train}.pt"
    if weights.exists():
        net.load_state_dict(torch.load(weights, weights_only=True))
        net.eval()
    else:
        t0 = time.perf_counter()
        train_classifier(net, torch.from_numpy(x_train), torch.from_numpy(y_train), 3)
        log(f"trained the PyTorch text CNN on {n_train} IMDB reviews in "
            f"{time.perf_counter() - t0:.1f}s")
        cache.mkdir(parents=True, exist_ok=True)
        torch.save(net.state_dict(), weights)
    with torch.no_grad():
        acc = float((net(torch.from_numpy(x_test)).argmax(1).numpy() == y_test).mean())
    log(f"PyTorch text CNN: test accuracy {acc:.3f} on {len(test)} held-out reviews")
    models.append(("PyTorch text CNN", net))
    try:
        import keras
    except ImportError:
        log("Keras is not installed: the Keras text model is left out")
        return models, x_test, tokens_test, y_test
    path = cache / f"imdb_cnn_{n_train}_{keras.backend.backend()}.keras"
    if path.exists():
        kmodel = keras.saving.load_model(path, safe_mode=True)
    else:
        keras.utils.set_random_seed(0)
        inp = keras.Input((REVIEW_LENGTH,), dtype="int32")
        h = keras.layers.Embedding(VOCAB_SIZE, 32)(inp)
        h = keras.layers.Conv1D(64, 3, padding="same", activation="relu")(h)
        h = keras.layers.GlobalMaxPooling1D()(h)
        kmodel = keras.Model(inp, keras.layers.Dense(2)(h), name="keras_text_cnn")
        kmodel.compile(optimizer=keras.optimizers.Adam(3e-3),
                       loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        t0 = time.perf_counter()
        kmodel.fit(x_train.astype("int32"), y_train, epochs=3, batch_size=64, verbose=0)
        log(f"trained the Keras ({keras.backend.backend()}) text CNN in "
            f"{time.perf_counter() - t0:.1f}s")
        cache.mkdir(parents=True, exist_ok=True)
        kmodel.save(path)
    scores = np.asarray(keras.ops.convert_to_numpy(kmodel(x_test.astype("int32"))))
    log(f"Keras text CNN: test accuracy {float((scores.argmax(1) == y_test).mean()):.3f}")
    models.append((f"Keras ({keras.backend.backend()}) text CNN", kmodel))
    return models, x_test, tokens_test, y_test


def _text_comparisons(out: Path, n_reviews: int, n_train_reviews: int, log: Any
                      ) -> list[Comparison]:
    """The held-out reviews explained by every text model and method: one
    comparison per review (the methods side by side)."""
    text_models, ids, tokens, labels = train_text_models(out / "cache", n_train=n_train_reviews,
                                                         log=log)
    names = ["negative", "positive"]
    columns: list[tuple[str, list[Any]]] = []
    for label, text_model in text_models:
        for key in TEXT_METHODS if label.startswith("PyTorch") else TEXT_METHODS[:1]:
            t0 = time.perf_counter()
            expls = explain_predictions(
                text_model, ids[:n_reviews], method=key, tokens=tokens[:n_reviews],
                pad_value=0, target_names=names, targets=[1], progress=False,
            )
            log(f"{label}: {METHODS[key].name} of {n_reviews} reviews in "
                f"{time.perf_counter() - t0:.2f}s")
            for e in expls:
                e.estimator = label
            columns.append((f"{label}: {METHODS[key].name}", expls))
    return [
        Comparison([expls[i] for _, expls in columns], [name for name, _ in columns],
                   label=f"review {i + 1} (labelled {names[int(labels[i])]})")
        for i in range(n_reviews)
    ]


INTRO = (
    "Digits: a small CNN trained on scikit-learn's 8×8 digits. Each row is a held-out digit "
    "with the model's top class, its score and probability; each column explains that class "
    "with one method, the digit's outline drawn over the map. Brighter means more important; "
    "each map is scaled to its own maximum. Under each map: deletion AUC (lower is better) and "
    "insertion AUC (higher is better), how well the map ranks the pixels that drive the "
    "prediction (hover for details). Reviews: text CNNs trained on IMDB reviews (PyTorch and "
    "Keras) explain the positive class, one row per review, the methods side by side: green "
    "words speak for it, red against it."
)


def run_demo(out: str | Path, n_digits: int = 6, log: Any = print, n_reviews: int = 3,
             n_train_reviews: int = 6000) -> Path:
    """Train or load the models, explain ``n_digits`` test digits with every image
    method and ``n_reviews`` held-out IMDB reviews with the text methods, and write
    ``out/report.html``: a section with a row per digit and the methods side by
    side, then a section with a row per review and the text methods side by side.
    Returns the report's path."""
    out = Path(out)
    model, x_test, y_test = train_digits_cnn(out / "cache", log=log)
    docs = x_test[:n_digits]
    by_method = {}
    for key in DEMO_METHODS:
        t0 = time.perf_counter()
        by_method[key] = explain_predictions(
            model, docs, method=key, random_state=0 if key == "smoothgrad" else None,
            progress=False, faithfulness=True,
        )
        for e in by_method[key]:
            e.estimator = "digits CNN (PyTorch)"
        log(f"{METHODS[key].name:22s} {len(docs)} digits in {time.perf_counter() - t0:.2f}s")
    names = [METHODS[k].name for k in DEMO_METHODS]
    sections: dict[str, list[Any]] = {
        "Digits: every image method": [
            Comparison([by_method[k][i] for k in DEMO_METHODS], names,
                       label=f"digit {int(y_test[i])}")
            for i in range(len(docs))
        ],
    }
    if n_reviews:
        sections["IMDB reviews: the text methods side by side"] = _text_comparisons(
            out, n_reviews, n_train_reviews, log)
    t0 = time.perf_counter()
    path = save_html(out / "report.html", sections, title="eli5-nn demo", intro=INTRO)
    log(f"rendered the report in {time.perf_counter() - t0:.2f}s")
    return path
