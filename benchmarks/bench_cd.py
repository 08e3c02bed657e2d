"""Contextual decomposition against plain forward passes (CPU).

A VGG-style net on one 224×224 image: CD of 64 patch masks (an 8×8 grid of
28×28 patches), decomposed in one batched pass, against the floor of 64
plain forward passes of the same batch. In general CD carries two parts
(relevant, irrelevant) through every layer, about 3× the floor; for one image
under many masks their sum is the image's own activation at every layer, the
same in every row, so eli5-nn carries it once (one batch-1 row) and only the
relevant part at full batch: about the floor's cost.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.timing import interleaved  # noqa: E402
from eli5_nn.decomposition import contextual_decomposition  # noqa: E402

SIZE, GRID = 224, 8


def vgg_style(width: int = 16) -> nn.Module:
    """Five conv-conv-pool stages (VGG layout, narrow) and a linear head."""
    layers: list[nn.Module] = []
    c_in = 3
    for k, c in enumerate((width, 2 * width, 4 * width, 8 * width, 8 * width)):
        for _ in range(1 if k < 2 else 2):
            layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.ReLU(inplace=True)]
            c_in = c
        layers.append(nn.MaxPool2d(2))
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, 10)]
    torch.manual_seed(0)
    return nn.Sequential(*layers).eval()


def patch_masks() -> torch.Tensor:
    """(64, 3, 224, 224) masks, one per patch of the 8×8 grid."""
    p = SIZE // GRID
    masks = torch.zeros(GRID * GRID, 3, SIZE, SIZE)
    for k in range(GRID * GRID):
        r, c = divmod(k, GRID)
        masks[k, :, r * p:(r + 1) * p, c * p:(c + 1) * p] = 1
    return masks


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Time CD of 64 patch masks against 64 forward passes; returns two table rows:
    image, masks and floor batch in the default (N, C, H, W) memory layout, then
    all three channels-last (CD follows its input's layout; the floor gets the
    same layout, so the ratio measures CD's own cost in each)."""
    model = vgg_style()
    x = torch.rand(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    masks = patch_masks()
    rows = []
    for layout, fmt in (("", torch.contiguous_format), (", channels-last", torch.channels_last)):
        xl, ml = x.contiguous(memory_format=fmt), masks.contiguous(memory_format=fmt)
        batch = x.expand(len(masks), -1, -1, -1).contiguous(memory_format=fmt)

        def ours(xl: torch.Tensor = xl, ml: torch.Tensor = ml) -> None:
            with torch.no_grad():
                contextual_decomposition(model, xl, ml)

        def floor(batch: torch.Tensor = batch) -> None:
            with torch.no_grad():
                model(batch)

        best_ours, best_floor = interleaved(ours, floor, 2 if quick else 5, warmup=1,
                                            min_time=0.0)
        rows.append({"framework": "torch", "method": f"cd (64 patch masks{layout})",
                     "ours_s": best_ours, "floor_s": best_floor, "ratio": best_ours / best_floor,
                     "note": "VGG-style 224×224; floor: 64 plain forward passes, batched, "
                             "same memory layout"})
    return rows


if __name__ == "__main__":
    print(json.dumps(run("--quick" in sys.argv), indent=1))
