"""Shared protocol of the DecoyMNIST / ColorMNIST reproductions on scikit-learn's digits.

The 8×8 digits are upsampled ×2 (nearest) to 16×16. A split gives train /
validation / test sets; the validation set has no spurious cue, so the
penalty strength picked on it does not peek at the test set's cue. Each
method (vanilla, CDEP, gradient penalty) is trained with the same small CNN,
optimiser, epochs and seeds.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from eli5_nn.training import cdep_penalty, gradient_penalty

Sets = dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]  # name -> (x, y, mask)


def digits_16(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Digits in [0, 1], upsampled to 16×16, and a train/val/test index split."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = np.kron(d.images / 16.0, np.ones((2, 2))).astype(np.float32)
    order = np.random.default_rng(seed).permutation(len(x))
    return x, d.target.astype(np.int64), order[:1100], order[1100:]


def small_cnn(channels: int) -> nn.Module:
    """conv-ReLU-pool ×2 → linear, for 16×16 inputs."""
    return nn.Sequential(
        nn.Conv2d(channels, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 4 * 4, 10),
    )


def train(sets: Sets, channels: int, method: str, lam: float, epochs: int, seed: int,
          device: torch.device) -> nn.Module:
    """Train the small CNN with ``ce + lam * penalty`` (penalty of ``method``)."""
    torch.manual_seed(seed)
    model = small_cnn(channels).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    x, y, mask = (t.to(device) for t in sets["train"])
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=g).to(device)
        for i in range(0, len(x), 64):
            idx = perm[i:i + 64]
            opt.zero_grad()
            loss = F.cross_entropy(model(x[idx]), y[idx])
            if method == "cdep" and lam > 0:
                loss = loss + lam * cdep_penalty(model, x[idx], mask[idx])
            elif method == "gradient" and lam > 0:
                loss = loss + lam * gradient_penalty(model, x[idx], None, mask[idx])
            loss.backward()
            opt.step()
    return model.eval()


def accuracy(model: nn.Module, data: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
             device: torch.device) -> float:
    """Accuracy of ``model`` on (x, y, _)."""
    x, y, _ = data
    with torch.no_grad():
        return float((model(x.to(device)).argmax(1).cpu() == y).float().mean())


@dataclass
class Protocol:
    """One reproduction: its name, how to build the sets for a seed, the channels."""

    name: str
    make_sets: Callable[[int], Sets]
    channels: int


def main(protocol: Protocol, argv: list[str] | None = None) -> dict[str, float]:
    """Run vanilla / CDEP / gradient over seeds; print the table and the RESULT line."""
    ap = argparse.ArgumentParser(description=f"{protocol.name} on scikit-learn's digits")
    ap.add_argument("--quick", action="store_true", help="one seed, fewer epochs")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=None)
    args = ap.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    seeds = 1 if args.quick else args.seeds
    epochs = args.epochs or (6 if args.quick else 12)
    grids = {"vanilla": [0.0], "cdep": [1.0, 10.0] if args.quick else [1.0, 10.0, 100.0],
             "gradient": [10.0, 100.0] if args.quick else [1.0, 10.0, 100.0, 1000.0]}
    results: dict[str, list[float]] = {m: [] for m in grids}
    t0 = time.perf_counter()
    for seed in range(seeds):
        sets = protocol.make_sets(seed)
        for method, lams in grids.items():
            best = (-1.0, 0.0, 0.0)
            for lam in lams:
                model = train(sets, protocol.channels, method, lam, epochs, seed, device)
                val = accuracy(model, sets["val"], device)
                if val > best[0]:
                    best = (val, lam, accuracy(model, sets["test"], device))
            results[method].append(best[2])
            print(f"seed {seed} {method:9s} lam={best[1]:<7g} val={best[0]:.3f} "
                  f"test={best[2]:.3f}", flush=True)
    print(f"\n{protocol.name}: test accuracy over {seeds} seed(s), {epochs} epochs "
          f"({time.perf_counter() - t0:.0f} s on {device})")
    print(f"{'method':10s} {'mean':>6s} {'std':>6s}")
    means = {}
    for method, accs in results.items():
        means[method] = float(np.mean(accs))
        print(f"{method:10s} {means[method]:6.3f} {float(np.std(accs)):6.3f}")
    print(f"RESULT vanilla={means['vanilla']:.3f} cdep={means['cdep']:.3f} "
          f"gradient={means['gradient']:.3f}")
    return means
