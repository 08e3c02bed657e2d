"""Fewer passes for the same accuracy: Integrated Gradients' quadrature rules.

On the benchmark's ResNet-style network (random weights, BatchNorm, ReLU) and
several images, each rule's attribution is compared with a reference (the
midpoint rule with ``REFERENCE`` steps) and checked for completeness:
``|sum(attribution) - (f(x) - f(0))| / |f(x) - f(0)|``. Rows give the median
over the images of both errors and the passes (forward + backward of one input)
each rule takes. Captum's ``IntegratedGradients`` (50 steps, Gauss–Legendre,
its default) is computed by Captum itself.

The passes are written here in torch (each rule's nodes, in chunks) so that
every rule sees the same gradients; :mod:`eli5_nn.methods.quadrature` gives the
nodes and weights, including the matched rule's weights from the scores and
path slopes of the passes.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_torch import make_model  # noqa: E402
from eli5_nn.methods.quadrature import MATCHED, RULES, matched_weights, nodes  # noqa: E402

REFERENCE = 256
CHUNK = 16


def _passes(model: torch.nn.Module, x: torch.Tensor, c: int, alphas: np.ndarray
            ) -> tuple[np.ndarray, torch.Tensor]:
    """Scores and input gradients of the target at ``alphas * x`` (zero baseline)."""
    scores, grads = [], []
    a = torch.as_tensor(alphas, dtype=x.dtype)
    for s in range(0, len(a), CHUNK):
        xs = (a[s:s + CHUNK, None, None, None] * x).requires_grad_(True)
        out = model(xs)[:, c]
        (g,) = torch.autograd.grad(out.sum(), xs)
        scores.append(out.detach().double())
        grads.append(g.double())
    return torch.cat(scores).numpy(), torch.cat(grads)


def attribution(model: torch.nn.Module, x: torch.Tensor, c: int, rule: str, steps: int
                ) -> torch.Tensor:
    """Integrated Gradients of class ``c`` from a zero baseline with ``rule``."""
    xd = x.double()
    if rule == MATCHED:
        f, g = _passes(model, x, c, nodes(MATCHED, steps))
        slopes = (g * xd).flatten(1).sum(1).numpy()
        w = matched_weights(f[None], slopes[None])[0]
    else:
        alphas, w = RULES[rule](steps)
        _, g = _passes(model, x, c, alphas)
    return xd * (torch.as_tensor(w)[:, None, None, None] * g).sum(0, keepdim=True)


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Rows {rule, passes, completeness, l2}: medians over the images."""
    from captum.attr import IntegratedGradients

    model = make_model()
    size, n_images = (112, 3) if quick else (112, 6)
    settings = [("gausslegendre", 50), ("gausslegendre", 25), ("riemann_middle", 25),
                ("riemann_trapezoid", 25), (MATCHED, 25), (MATCHED, 17)]
    errs: dict[str, list[tuple[float, float]]] = {}
    for seed in range(n_images):
        x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            out = model(torch.cat([x, torch.zeros_like(x)]))
        c = int(out[0].argmax())
        delta = float(out[0, c] - out[1, c])
        ref = attribution(model, x, c, "riemann_middle", REFERENCE)
        found = {f"{r} {n}": attribution(model, x, c, r, n) for r, n in settings}
        found["Captum IntegratedGradients 50"] = IntegratedGradients(model).attribute(
            x, baselines=0.0, target=c, n_steps=50, internal_batch_size=CHUNK).double()
        for name, a in found.items():
            errs.setdefault(name, []).append(
                (abs(float(a.sum()) - delta) / abs(delta),
                 float((a - ref).norm() / ref.norm())))
    rows = []
    for name, e in errs.items():
        arr = np.array(e)
        rows.append({"rule": name, "passes": int(name.rsplit(" ", 1)[1]),
                     "completeness": float(np.median(arr[:, 0])),
                     "completeness_max": float(arr[:, 0].max()),
                     "l2": float(np.median(arr[:, 1])), "size": size, "images": n_images})
    return rows


if __name__ == "__main__":
    for row in run("--quick" in sys.argv):
        print(row)
