"""The demo: a CNN trained on scikit-learn's digits, explained by every image method."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from . import explain_predictions
from .formatters.html import image_data_uri, render_report
from .methods import METHODS

DEMO_METHODS = (
    "grad-cam", "grad-cam++", "gradient", "gradient-x-input", "smoothgrad",
    "integrated-gradients", "fullgrad",
)
UPSCALE = 16


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
    and write ``out/report.html``. Returns the report's path."""
    out = Path(out)
    model, x_test, y_test = train_digits_cnn(out / "cache", log=log)
    docs = x_test[:n_digits]
    pictures = [
        Image.fromarray((d[0] * 255).astype(np.uint8), mode="L").resize(
            (8 * UPSCALE, 8 * UPSCALE), Image.Resampling.NEAREST
        )
        for d in docs
    ]
    import eli5

    rows: list[dict[str, Any]] = [
        {"label": f"digit {int(y)}", "cells": [{"src": image_data_uri(p), "caption": ""}]}
        for p, y in zip(pictures, y_test[:n_digits], strict=True)
    ]
    descriptions = []
    for key in DEMO_METHODS:
        t0 = time.perf_counter()
        expls = explain_predictions(model, docs, method=key, random_state=0
                                    if key == "smoothgrad" else None)
        log(f"{METHODS[key].name:22s} {len(docs)} digits in {time.perf_counter() - t0:.2f}s")
        for row, expl, pic in zip(rows, expls, pictures, strict=True):
            expl.image = pic
            t = expl.targets[0]
            row["cells"].append({
                "src": image_data_uri(eli5.format_as_image(expl)),
                "caption": f"→ {t.target} (p={t.proba:.2f})",
            })
        descriptions.append(f"{METHODS[key].name}: {expls[0].description}")
    section = {
        "title": "Digits CNN (PyTorch)",
        "text": " | ".join(descriptions),
        "header": ["input", "image"] + [METHODS[k].name for k in DEMO_METHODS],
        "rows": rows,
    }
    html = render_report(
        "eli5-nn demo", [section],
        intro="Each column explains the model's top class with one method; "
              "brighter means more important.",
    )
    out.mkdir(parents=True, exist_ok=True)
    path = out / "report.html"
    path.write_text(html, encoding="utf-8")
    return path.resolve()
