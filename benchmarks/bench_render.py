"""Rendering against computing: a 224×224 image explanation with 3 targets to HTML.

``ours`` is ``eli5_nn.format_as_html`` (overlays, PNG encoding, template) of a
Grad-CAM and of an Integrated Gradients explanation of the ResNet-style
benchmark model; the floor column holds the time to compute that explanation,
so the ratio is the share of rendering in explaining and showing. The input
is uniform noise, the worst case for PNG compression, which dominates.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import eli5_nn  # noqa: E402
from benchmarks.bench_torch import SIZE, make_model  # noqa: E402
from benchmarks.timing import best_time  # noqa: E402


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Time HTML rendering of 3-target explanations against computing them."""
    model = make_model()
    x = torch.rand(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    repeat = 3 if quick else 7
    rows = []
    for method, kw in (("grad-cam", {}), ("integrated-gradients", {"steps": 20})):
        def compute(method: str = method, kw: dict[str, Any] = kw) -> Any:
            return eli5_nn.explain_prediction_nn(model, x, method=method, top_targets=3,
                                                 progress=False, **kw)

        expl = compute()
        floor = best_time(compute, 1 if method != "grad-cam" else repeat)
        unsigned = best_time(lambda expl=expl: eli5_nn.format_as_html(expl), repeat)
        signed = best_time(lambda expl=expl: eli5_nn.format_as_html(expl, signed=True), repeat)
        for label, ours in (("", unsigned), (" signed", signed)):
            rows.append({
                "framework": "render",
                "method": f"format_as_html{label}: {method}, 3 targets, {SIZE}x{SIZE}",
                "ours_s": ours, "floor_s": floor, "ratio": ours / floor,
                "note": f"floor = computing the {method} explanation",
            })
    return rows


if __name__ == "__main__":
    print(json.dumps(run("--quick" in sys.argv), indent=1))
