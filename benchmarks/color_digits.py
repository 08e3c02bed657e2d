"""ColorMNIST (Rieger et al. 2020) on scikit-learn's digits.

Each digit (16×16) is drawn in a colour: in training the colour is the
class's colour, at test the mapping is reversed (class y gets the colour of
class 9 - y); the validation split is drawn in random colours (no cue). The
penalties' region is the colour: the input ``x = g ⊗ c`` (grey digit times an
RGB colour) is split into its grey part ``g · mean(c)`` and the colour part
``x - g · mean(c)``, as the mask ``1 - mean(c) / c_k`` per channel (so
``mask * x`` is the colour part). ``python benchmarks/color_digits.py
[--quick]`` prints a table and, last, ``RESULT vanilla=... cdep=... gradient=...``.
"""

from __future__ import annotations

import colorsys
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.penalty_runs import Protocol, Sets, digits_16, main  # noqa: E402

#: ten distinct colours, every channel at least 0.2 (the colour mask divides by them)
COLOURS = np.array([colorsys.hsv_to_rgb(k / 10, 0.75, 1.0) for k in range(10)],
                   dtype=np.float32)


def colourise(x: np.ndarray, colours: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3, 16, 16) images and the colour masks (N, 3, 16, 16)."""
    imgs = x[:, None] * colours[:, :, None, None]
    frac = 1.0 - colours.mean(axis=1, keepdims=True) / colours  # (N, 3)
    masks = np.broadcast_to(frac[:, :, None, None], imgs.shape).astype(np.float32)
    return imgs.astype(np.float32), masks.copy()


def make_sets(seed: int) -> Sets:
    """Train: class colours; validation: random colours; test: reversed colours."""
    x, y, train_idx, rest = digits_16(seed)
    rng = np.random.default_rng(seed + 100)
    val_idx, test_idx = rest[: len(rest) // 2], rest[len(rest) // 2:]

    def pack(idx: np.ndarray, colours: np.ndarray) -> tuple[torch.Tensor, ...]:
        imgs, masks = colourise(x[idx], colours)
        return torch.as_tensor(imgs), torch.as_tensor(y[idx]), torch.as_tensor(masks)

    return {  # type: ignore[dict-item]
        "train": pack(train_idx, COLOURS[y[train_idx]]),
        "val": pack(val_idx, COLOURS[rng.integers(0, 10, len(val_idx))]),
        "test": pack(test_idx, COLOURS[9 - y[test_idx]]),
    }


if __name__ == "__main__":
    main(Protocol("ColorMNIST (digits 16×16)", make_sets, channels=3))
