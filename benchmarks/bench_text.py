"""Text methods on a text CNN and a BiLSTM over 256 IMDB-length reviews (CPU).

Rows, for each model: ``explain_predictions`` over the reviews against a
per-review loop of ``explain_prediction``; and each text method over the
reviews against its floor, the same passes written by hand in torch: the
embedding output made a leaf and one batched backward (gradient methods),
the (review, step) or (review, sample) units in chunks of the best size among
a few (Integrated Gradients, SmoothGrad), the map of the temporal layer made a
leaf with no graph before it (Grad-CAM), and every one-token-padded variant in
batched forward passes (occlusion).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import eli5_nn  # noqa: E402
from benchmarks import timing  # noqa: E402
from benchmarks.timing import (  # noqa: E402
    TEXT_ONE_PASS_ROUNDS,
    best_chunk,
    interleaved,
    one_pass_row,
    speed_row,
)
from tests.text.models import BiLSTM, TextCNN  # noqa: E402

N_DOCS, LENGTH, VOCAB = 256, 160, 6000
STEPS, SAMPLES = 20, 10


class TextModel:
    """A benchmark model split at its embedding and at its temporal layer."""

    def __init__(self, name: str, model: torch.nn.Module, layer: str,
                 to_map: Callable[[torch.Tensor], torch.Tensor],
                 head: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.name, self.model, self.layer = name, model, layer
        self.to_map, self.head = to_map, head  # embedding → temporal map → logits

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model.embedding(ids).detach()  # type: ignore[operator]

    def body(self, e: torch.Tensor) -> torch.Tensor:
        return self.head(self.to_map(e))


def models() -> list[TextModel]:
    torch.manual_seed(0)
    cnn = TextCNN(vocab=VOCAB, dim=32, channels=64).eval()
    lstm = BiLSTM(vocab=VOCAB, dim=32, hidden=32, layers=1).eval()
    return [
        TextModel("text CNN", cnn, "relu",
                  lambda e: cnn.relu(cnn.conv(e.transpose(1, 2))),
                  lambda h: cnn.fc(h.amax(dim=2))),
        TextModel("BiLSTM", lstm, "rnn",
                  lambda e: lstm.rnn(e)[0],
                  lambda h: lstm.fc(h.mean(dim=1))),
    ]


def reviews(n: int = N_DOCS) -> np.ndarray:
    """Token ids (n, LENGTH), each review padded (id 0) after a random length."""
    return timing.reviews(n, LENGTH, VOCAB)


def _target_cot(out: torch.Tensor, cls: torch.Tensor, weight: float = 1.0) -> torch.Tensor:
    return torch.zeros_like(out).scatter_(1, cls[:, None], weight)


def floor_gradient(tm: TextModel, ids: torch.Tensor, times_input: bool) -> torch.Tensor:
    e = tm.embed(ids).requires_grad_(True)
    out = tm.body(e)
    (g,) = torch.autograd.grad(out, e, grad_outputs=_target_cot(out, out.argmax(1)))
    return (g * e).sum(-1) if times_input else g.norm(dim=-1)


def floor_cam(tm: TextModel, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        h = tm.to_map(tm.embed(ids))
    h.requires_grad_(True)
    out = tm.head(h)
    (g,) = torch.autograd.grad(out, h, grad_outputs=_target_cot(out, out.argmax(1)))
    time_axis = 2 if tm.name == "text CNN" else 1  # (N, C, T) or (N, T, C)
    w = g.mean(dim=time_axis, keepdim=True)
    return (w * h.detach()).sum(dim=3 - time_axis).relu()


def floor_units(tm: TextModel, ids: torch.Tensor, kind: str, n: int, chunk: int
                ) -> torch.Tensor:
    """Integrated Gradients from the padding embedding (``kind="ig"``) or SmoothGrad
    (``"sg"``): the (review, step) units in chunks of ``chunk`` rows."""
    e = tm.embed(ids)
    base = tm.embed(torch.zeros_like(ids))
    with torch.no_grad():
        cls = tm.body(e).argmax(1)
    std = 0.15 * (e.amax(dim=(1, 2)) - e.amin(dim=(1, 2)))
    total = torch.zeros_like(e)
    alphas = (torch.arange(n, dtype=e.dtype) + 0.5) / n
    gen = torch.Generator().manual_seed(0)
    units = len(ids) * n
    for s in range(0, units, chunk):
        u = torch.arange(s, min(s + chunk, units))
        doc, step = u // n, u % n
        if kind == "ig":
            xs = base[doc] + alphas[step, None, None] * (e[doc] - base[doc])
        else:
            xs = e[doc] + std[doc, None, None] * torch.randn((len(u), *e.shape[1:]), generator=gen)
        xs.requires_grad_(True)
        out = tm.body(xs)
        (g,) = torch.autograd.grad(out, xs, grad_outputs=_target_cot(out, cls[doc], 1.0 / n))
        total.index_add_(0, doc, g)
    return ((e - base) * total).sum(-1) if kind == "ig" else total.norm(dim=-1)


def floor_occlusion(tm: TextModel, ids: torch.Tensor, chunk: int) -> torch.Tensor:
    with torch.no_grad():
        full = tm.model(ids)
        cls = full.argmax(1)
        doc, pos = torch.nonzero(ids != 0, as_tuple=True)
        drops = torch.empty(len(doc))
        for s in range(0, len(doc), chunk):
            d = doc[s:s + chunk]
            v = ids[d].clone()
            v[torch.arange(len(v)), pos[s:s + chunk]] = 0
            drops[s:s + chunk] = full[d, cls[d]] - tm.model(v).gather(1, cls[d, None])[:, 0]
    return drops


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Rows {framework, method, ours_s, floor_s, ratio, note}. The floor rows run on
    256 reviews (the size the targets are set at); --quick: the rows against a
    per-review loop on 64."""
    n_loop = 64 if quick else N_DOCS
    n_docs = N_DOCS
    ids = reviews(n_docs)
    ids_t = torch.as_tensor(ids)
    rows = []
    explain, many = eli5_nn.explain_prediction_nn, eli5_nn.explain_predictions
    for tm in models():
        model, fw = tm.model, f"torch {tm.name}"

        def ours(method: str, model: Any = model, **kw: Any) -> Callable[[], Any]:
            return lambda: many(model, ids, method=method, pad_value=0, progress=False, **kw)

        for method, kw in (("gradient-x-input", {}), ("integrated-gradients", {"steps": STEPS})):
            t_ours, t_loop = interleaved(
                lambda m=method, k=kw, model=model: many(
                    model, ids[:n_loop], method=m, pad_value=0, progress=False, **k),
                lambda m=method, k=kw, model=model: [
                    explain(model, ids[i:i + 1], method=m, pad_value=0, **k)
                    for i in range(n_loop)],
                1, warmup=1, min_time=0.0)  # the first call in a process pays imports
            rows.append(speed_row(fw, f"{method} x{n_loop} vs loop", t_ours, t_loop,
                                  "floor = per-review explain_prediction loop"))
        for method, floor, note in (
            ("grad-cam", lambda tm=tm: floor_cam(tm, ids_t),
             f"map of {tm.layer!r} a leaf, no graph before it"),
            ("gradient", lambda tm=tm: floor_gradient(tm, ids_t, False),
             "one batched backward to the embedding"),
            ("gradient-x-input", lambda tm=tm: floor_gradient(tm, ids_t, True),
             "one batched backward to the embedding"),
        ):
            kw = {"layer": tm.layer} if method == "grad-cam" else {}
            rows.append(one_pass_row(fw, f"{method} x{n_docs}", ours(method, **kw), floor, note,
                                     quick, TEXT_ONE_PASS_ROUNDS))
        for method, kind, n, kw in (("smoothgrad", "sg", SAMPLES, {"samples": SAMPLES}),
                                    ("integrated-gradients", "ig", STEPS, {"steps": STEPS})):
            options = (256, 1024, 4096)
            best = best_chunk(lambda c, tm=tm, kind=kind, n=n:
                              lambda: floor_units(tm, ids_t, kind, n, c), options)
            t_ours, t_floor = interleaved(
                ours(method, **kw), lambda tm=tm, kind=kind, n=n, c=best:
                floor_units(tm, ids_t, kind, n, c), 3, warmup=1, min_time=0.0)
            rows.append(speed_row(fw, f"{method} x{n_docs}", t_ours, t_floor,
                                  f"{n} passes per review; floor chunk {best} "
                                  f"(best of {options})"))
        options = (128, 512, 2048)
        best = best_chunk(lambda c, tm=tm: lambda: floor_occlusion(tm, ids_t, c), options)
        t_ours, t_floor = interleaved(ours("occlusion"),
                                      lambda tm=tm, c=best: floor_occlusion(tm, ids_t, c),
                                      3, warmup=1, min_time=0.0)
        rows.append(speed_row(fw, f"occlusion x{n_docs}", t_ours, t_floor,
                              f"every variant in batched forwards; floor chunk {best} "
                              f"(best of {options})"))
    return rows


if __name__ == "__main__":
    for row in run("--quick" in sys.argv):
        print(row)
