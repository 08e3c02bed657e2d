"""eli5-nn against Captum on text: a text CNN and a BiLSTM over IMDB-length reviews.

The models and reviews of ``bench_text`` (256 reviews of 160 token ids, padded
after a random length). eli5-nn explains all reviews in one
``explain_predictions`` call; Captum gets the same reviews and targets in one
``attribute`` call, with the usual Captum recipe for text:

- gradient / gradient × input: ``LayerGradientXActivation`` on the embedding
  (``multiply_by_inputs=False`` for the plain gradient), reduced per token as
  eli5-nn does (norm / sum over the embedding dimensions);
- Integrated Gradients: ``LayerIntegratedGradients`` on the embedding from the
  padding id's embedding (eli5-nn's text baseline), same steps, Gauss–Legendre;
- SmoothGrad: ``NoiseTunnel(Saliency)`` on a forward that takes embeddings, same
  samples; Captum takes one noise level for the whole batch (the median of
  eli5-nn's per-review levels);
- Grad-CAM (text CNN only; Captum's ``LayerGradCam`` takes dimension 1 as the
  channels, which a BiLSTM's (N, T, C) output is not): the convolution's ReLU;
- occlusion: ``Occlusion`` with a window of one token and the padding id as
  baseline. Captum occludes every position, padding included (160 per review);
  eli5-nn only the review's tokens (120 on average): the row notes it.
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
from benchmarks.bench_captum import captum_row  # noqa: E402
from benchmarks.bench_text import STEPS, TextModel, models, reviews  # noqa: E402
from benchmarks.timing import auto_batch_size, paired  # noqa: E402

SAMPLES = 10
NOISE = 0.15


class Text:
    """Ours and Captum's calls for one model over ``ids``."""

    def __init__(self, tm: TextModel, ids: np.ndarray) -> None:
        from captum.attr import (
            LayerGradCam,
            LayerGradientXActivation,
            LayerIntegratedGradients,
            NoiseTunnel,
            Occlusion,
            Saliency,
        )

        self.tm, self.ids = tm, ids
        self.ids_t = torch.as_tensor(ids)
        model = tm.model
        with torch.no_grad():
            self.cls = model(self.ids_t).argmax(1)
        self.targets = [[int(c)] for c in self.cls]
        e = tm.embed(self.ids_t)
        self.std = float(NOISE * (e.amax(dim=(1, 2)) - e.amin(dim=(1, 2))).median())
        emb = model.embedding
        self.grad = LayerGradientXActivation(model, emb, multiply_by_inputs=False)
        self.gxi = LayerGradientXActivation(model, emb)
        self.lig = LayerIntegratedGradients(model, emb)
        self.nt = NoiseTunnel(Saliency(tm.body))
        self.occ = Occlusion(model)
        self.cam = LayerGradCam(model, getattr(model, tm.layer)) if tm.name == "text CNN" \
            else None

    def ours(self, method: str, **kw: Any) -> Callable[[], Any]:
        kw = {"layer": self.tm.layer, **kw} if method == "grad-cam" else kw
        return lambda: eli5_nn.explain_predictions(
            self.tm.model, self.ids, method=method, targets=self.targets, pad_value=0,
            progress=False, **kw)

    def captum(self, method: str, batch: int | None = None) -> Callable[[], Any]:
        """Captum's call; ``batch``: rows per pass, a multiple of the number of
        reviews (Captum batches whole steps or samples of every review:
        ``internal_batch_size`` below the number of inputs is raised to it, and
        ``nt_samples_batch_size`` counts samples, each one row per review)."""
        ids, t = self.ids_t, self.cls
        per_review = None if batch is None else batch // len(self.ids)
        calls: dict[str, Callable[[], Any]] = {
            "gradient": lambda: self.grad.attribute(ids, target=t).norm(dim=-1),
            "gradient-x-input": lambda: self.gxi.attribute(ids, target=t).sum(-1),
            "integrated-gradients": lambda: self.lig.attribute(
                ids, baselines=torch.zeros_like(ids), target=t, n_steps=STEPS,
                method="gausslegendre", internal_batch_size=batch).sum(-1),
            "smoothgrad": lambda: self.nt.attribute(
                self.tm.embed(ids), nt_type="smoothgrad", nt_samples=SAMPLES,
                stdevs=self.std, target=t, nt_samples_batch_size=per_review).norm(dim=-1),
            "occlusion": lambda: self.occ.attribute(
                ids, sliding_window_shapes=(1,), baselines=0, target=t),
        }
        if self.cam is not None:
            cam = self.cam
            calls["grad-cam"] = lambda: cam.attribute(ids, target=t, relu_attributions=True)
        return calls[method]


def text_rows(tm: TextModel, n_docs: int, repeat: int) -> list[dict[str, Any]]:
    """Every text method both libraries have, on ``n_docs`` reviews."""
    tx = Text(tm, reviews(n_docs))
    fw = f"torch {tm.name} x{n_docs}"
    rows = []
    one_pass = ["gradient", "gradient-x-input"] + (["grad-cam"] if tx.cam is not None else [])
    for method in one_pass:
        o, c, r = paired(tx.ours(method), tx.captum(method), repeat)
        rows.append(captum_row(fw, method, o, c, r, "one batched pass"))
    for method, n, kw in (("smoothgrad", SAMPLES, {"samples": SAMPLES, "noise": NOISE}),
                          ("integrated-gradients", STEPS, {"steps": STEPS})):
        chunk = auto_batch_size(tm.model, tx.ids_t, n_docs * n)
        rep = max(3, repeat // 3)
        o, c, r = paired(tx.ours(method, **kw), tx.captum(method), rep)
        rows.append(captum_row(fw, method, o, c, r, f"{n} passes per review; ours batch "
                               f"{chunk} (auto), Captum all in one (its default)"))
        # the same rows per pass in both: Captum's smallest pass holds one step (or
        # sample) of every review, so whole multiples of the number of reviews
        equal = n_docs * max(1, chunk // n_docs)
        o, c, r = paired(tx.ours(method, batch_size=equal, **kw), tx.captum(method, equal), rep)
        rows.append(captum_row(fw, f"{method} batch_size={equal}", o, c, r,
                               f"{n} passes per review; both {equal} rows a pass (Captum's "
                               f"least: one {'step' if method[0] == 'i' else 'sample'} "
                               "of every review)"))
    o, c, r = paired(tx.ours("occlusion"), tx.captum("occlusion"), max(3, repeat // 3))
    rows.append(captum_row(fw, "occlusion", o, c, r, "Captum also occludes the padding "
                           "(160 variants per review, ours about 120)"))
    return rows


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Rows {framework, method, ours_s, captum_s, ratio, note}; 256 reviews (the size
    the targets are set at), fewer rounds with --quick (the one-pass rows, a few
    hundredths of a second a call, still 9 rounds: 3 left their ratios to chance)."""
    n_docs, repeat = (256, 9) if quick else (256, 15)
    return [row for tm in models() for row in text_rows(tm, n_docs, repeat)]


if __name__ == "__main__":
    for row in run("--quick" in sys.argv):
        print(row)
