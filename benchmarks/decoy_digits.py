"""DecoyMNIST (Rieger et al. 2020; Ross et al. 2017) on scikit-learn's digits.

Training images get a 3×3 patch in a random corner whose grey level encodes
the class (255 - 25·y, scaled to [0, 1]); test images get the patch with a
random grey level; the validation split has no patch. The penalties' mask is
the four corner patches. ``python benchmarks/decoy_digits.py [--quick]``
prints a table and, last, ``RESULT vanilla=... cdep=... gradient=...``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.penalty_runs import Protocol, Sets, digits_16, main  # noqa: E402

PATCH = 3


def corners_mask() -> np.ndarray:
    """(16, 16) mask of the four corner patches."""
    m = np.zeros((16, 16), dtype=np.float32)
    for r in (slice(0, PATCH), slice(16 - PATCH, 16)):
        for c in (slice(0, PATCH), slice(16 - PATCH, 16)):
            m[r, c] = 1
    return m


def add_decoy(x: np.ndarray, grey: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each image with a patch of level ``grey`` in a random corner."""
    out = x.copy()
    for i, corner in enumerate(rng.integers(0, 4, len(x))):
        r = slice(0, PATCH) if corner < 2 else slice(16 - PATCH, 16)
        c = slice(0, PATCH) if corner % 2 == 0 else slice(16 - PATCH, 16)
        out[i, r, c] = grey[i]
    return out


def make_sets(seed: int) -> Sets:
    """Train with class-coded decoys, validation clean, test with random decoys."""
    x, y, train_idx, rest = digits_16(seed)
    rng = np.random.default_rng(seed + 100)
    val_idx, test_idx = rest[: len(rest) // 2], rest[len(rest) // 2:]
    mask = torch.as_tensor(np.broadcast_to(corners_mask(), (1, 16, 16)).copy())

    def pack(imgs: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, ...]:
        xt = torch.as_tensor(imgs[:, None])
        return xt, torch.as_tensor(labels), mask.expand(len(imgs), 1, 16, 16)

    x_train = add_decoy(x[train_idx], (255 - 25 * y[train_idx]) / 255.0, rng)
    x_test = add_decoy(x[test_idx], rng.integers(0, 256, len(test_idx)) / 255.0, rng)
    return {"train": pack(x_train, y[train_idx]), "val": pack(x[val_idx], y[val_idx]),
            "test": pack(x_test, y[test_idx])}  # type: ignore[dict-item]


if __name__ == "__main__":
    main(Protocol("DecoyMNIST (digits 16×16)", make_sets, channels=1))
