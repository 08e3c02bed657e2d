"""The demo: a CNN trained on scikit-learn's digits, explained by every image method."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from .explain import explain_predictions
from .formatters import Comparison, save_html
from .methods import METHODS

DEMO_METHODS = (
    "grad-cam", "grad-cam++", "gradient", "gradient-x-input", "smoothgrad",
    "integrated-gradients", "fullgrad",
)


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    data = load_digits()
    return (data.images / 16.0).astype(np.float32)[:, None], data.target.astype(np.int64)


def _build_model() -> Any:
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10),
    )


def train_digits_cnn(cache: Path, log: Any = print) -> tuple[Any, np.ndarray, np.ndarray]:
    """Train (or load from ``cache``) the demo CNN; returns (model, X_test, y_test)."""
    import torch

    x, y = _digits()
    order = np.random.default_rng(0).permutation(len(x))
    train, test = order[:1500], order[1500:]
    model = _build_model()
    weights = cache / "digits_cnn.pt"
    if weights.exists():
        model.load_state_dict(torch.load(weights, weights_only=True))
        log(f"loaded the cached model from {weights}")
    else:
        torch.manual_seed(0)
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        xt, yt = torch.from_numpy(x[train]), torch.from_numpy(y[train])
        t0 = time.perf_counter()
        for _epoch in range(12):
            for b in torch.randperm(len(xt)).split(64):
                opt.zero_grad()
                torch.nn.functional.cross_entropy(model(xt[b]), yt[b]).backward()
                opt.step()
        log(f"trained the digits CNN in {time.perf_counter() - t0:.1f}s")
        cache.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), weights)
    model.eval()
    with torch.no_grad():
        acc = float((model(torch.from_numpy(x[test])).argmax(1).numpy() == y[test]).mean())
    log(f"test accuracy {acc:.3f} on {len(test)} held-out digits")
    return model, x[test], y[test]


def run_demo(out: str | Path, n_digits: int = 6, log: Any = print) -> Path:
    """Train or load the model, explain ``n_digits`` test digits with every method,
    and write ``out/report.html``: one table with a row per digit and the methods
    side by side. Returns the report's path."""
    out = Path(out)
    model, x_test, y_test = train_digits_cnn(out / "cache", log=log)
    docs = x_test[:n_digits]
    by_method = {}
    for key in DEMO_METHODS:
        t0 = time.perf_counter()
        by_method[key] = explain_predictions(
            model, docs, method=key, random_state=0 if key == "smoothgrad" else None,
            progress=False,
        )
        log(f"{METHODS[key].name:22s} {len(docs)} digits in {time.perf_counter() - t0:.2f}s")
    names = [METHODS[k].name for k in DEMO_METHODS]
    comparisons = [
        Comparison([by_method[k][i] for k in DEMO_METHODS], names,
                   label=f"digit {int(y_test[i])}")
        for i in range(len(docs))
    ]
    t0 = time.perf_counter()
    path = save_html(
        out / "report.html", comparisons, title="eli5-nn demo",
        intro="A small CNN trained on scikit-learn's 8×8 digits. Each row is a held-out "
              "digit, each column explains the model's top class with one method; the "
              "caption gives the predicted class, its score and probability. Brighter "
              "means more important; each map is scaled to its own maximum.",
    )
    log(f"rendered the report in {time.perf_counter() - t0:.2f}s")
    return path
