"""Text methods on a text CNN over 256 IMDB-length reviews (CPU).

Rows: ``explain_predictions`` over 256 reviews against a per-review loop of
``explain_prediction``; and each text method against its floor, the same
passes written by hand in torch (the embedding output made a leaf, one
batched backward; occlusion as batched forward passes of every variant).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import eli5_nn  # noqa: E402
from benchmarks.bench_torch import _interleaved  # noqa: E402
from tests.text.models import TextCNN  # noqa: E402

N_DOCS, LENGTH, VOCAB = 256, 160, 6000


def _data() -> tuple[torch.nn.Module, np.ndarray]:
    torch.manual_seed(0)
    model = TextCNN(vocab=VOCAB, dim=32, channels=64).eval()
    rng = np.random.default_rng(0)
    ids = rng.integers(1, VOCAB, (N_DOCS, LENGTH))
    lengths = rng.integers(LENGTH // 2, LENGTH, N_DOCS)
    ids[np.arange(LENGTH)[None, :] >= lengths[:, None]] = 0
    return model, ids


def _floor_gxi(model: Any, ids: torch.Tensor) -> None:
    e = model.embedding(ids).detach().requires_grad_(True)
    out = model.fc(model.relu(model.conv(e.transpose(1, 2))).amax(dim=2))
    c = out.argmax(1)
    (g,) = torch.autograd.grad(out.gather(1, c[:, None]).sum(), e)
    (g * e).sum(-1)


def _floor_ig(model: Any, ids: torch.Tensor, steps: int, chunk: int) -> None:
    e = model.embedding(ids).detach()
    base = model.embedding(torch.zeros_like(ids)).detach()
    with torch.no_grad():
        c = model(ids).argmax(1)
    total = torch.zeros_like(e)
    alphas = (torch.arange(steps, dtype=e.dtype) + 0.5) / steps
    for i in range(len(ids)):
        for s in range(0, steps, chunk):
            a = alphas[s:s + chunk, None, None]
            path = (base[i] + a * (e[i] - base[i])).requires_grad_(True)
            out = model.fc(model.relu(model.conv(path.transpose(1, 2))).amax(dim=2))
            (g,) = torch.autograd.grad(out[:, c[i]].sum(), path)
            total[i] += g.sum(0)
    ((e - base) * total / steps).sum(-1)


def _floor_occlusion(model: Any, ids: torch.Tensor, chunk: int) -> None:
    with torch.no_grad():
        full = model(ids)
        doc, pos = torch.nonzero(ids != 0, as_tuple=True)
        for s in range(0, len(doc), chunk):
            v = ids[doc[s:s + chunk]].clone()
            v[torch.arange(len(v)), pos[s:s + chunk]] = 0
            full[doc[s:s + chunk]] - model(v)


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Rows {framework, method, ours_s, floor_s, ratio, note}."""
    model, ids = _data()
    ids_t = torch.as_tensor(ids)
    repeat = 2 if quick else 3
    rows = []

    def add(method: str, ours: float, floor: float, note: str) -> None:
        rows.append({"framework": "torch text", "method": method, "ours_s": ours,
                     "floor_s": floor, "ratio": ours / floor, "note": note})

    explain, many = eli5_nn.explain_prediction_nn, eli5_nn.explain_predictions
    for method, kw in (("gradient-x-input", {}), ("integrated-gradients", {"steps": 20})):
        ours, loop = _interleaved(
            lambda m=method, k=kw: many(model, ids, method=m, pad_value=0, progress=False, **k),
            lambda m=method, k=kw: [explain(model, ids[i:i + 1], method=m, pad_value=0, **k)
                                    for i in range(N_DOCS)],
            1,
        )
        add(f"{method} x256 vs loop", ours, loop, "floor = per-review explain_prediction loop")
    ours, floor = _interleaved(
        lambda: many(model, ids, method="gradient-x-input", pad_value=0, progress=False),
        lambda: _floor_gxi(model, ids_t), repeat)
    add("gradient-x-input x256", ours, floor, "one batched backward to the embedding")
    ours, floor = _interleaved(
        lambda: many(model, ids, method="integrated-gradients", steps=20, pad_value=0,
                     progress=False),
        lambda: _floor_ig(model, ids_t, 20, 20), 1)
    add("integrated-gradients x256", ours, floor, "20 steps; floor one review at a time")
    ours, floor = _interleaved(
        lambda: many(model, ids, method="occlusion", pad_value=0, progress=False),
        lambda: _floor_occlusion(model, ids_t, 512), 1)
    add("occlusion x256", ours, floor, "every variant in batched forwards (chunk 512)")
    return rows


if __name__ == "__main__":
    for row in run("--quick" in sys.argv):
        print(row)
