"""PyTorch image methods against their floors, on a ResNet-style net at 224×224 (CPU).

The floor of a method is the same number of forward+backward passes written
directly in torch (hooks and ``torch.autograd.grad``), with the best chunking
of steps/samples among a few sizes. Grad-CAM's floor is the forward pass plus
the backward pass down to the layer only. Ratios are medians of repeated runs
in the same process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import eli5_nn  # noqa: E402
from tests.models import ResNetish, randomize_bn  # noqa: E402

SIZE = 224
STEPS = 50
SAMPLES = 25


def make_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return randomize_bn(ResNetish(n_classes=10, width=16, blocks=(1, 1, 1, 1))).eval()


def _interleaved(ours: Callable[[], Any], floor: Callable[[], Any], repeat: int
                 ) -> tuple[float, float]:
    """Best-of-``repeat`` times of ``ours`` and ``floor``, run alternately after two
    warm-up calls each, so that load from other processes hits both alike."""
    for _ in range(2):
        ours()
        floor()
    best_ours = best_floor = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        ours()
        t1 = time.perf_counter()
        floor()
        t2 = time.perf_counter()
        best_ours, best_floor = min(best_ours, t1 - t0), min(best_floor, t2 - t1)
    return best_ours, best_floor


def _floor_gradcam(model: torch.nn.Module, x: torch.Tensor, layer: torch.nn.Module) -> None:
    store: list[torch.Tensor] = []
    handle = layer.register_forward_hook(lambda m, i, o: store.append(o))
    try:
        out = model(x)
        c = int(out[0].argmax())
        (g,) = torch.autograd.grad(out[0, c], store[0])
        (g.mean(dim=(2, 3), keepdim=True) * store[0]).sum(1).relu()
    finally:
        handle.remove()


def _floor_gradient(model: torch.nn.Module, x: torch.Tensor) -> None:
    xi = x.detach().requires_grad_(True)
    out = model(xi)
    torch.autograd.grad(out[0, int(out[0].argmax())], xi)


def _floor_steps(model: torch.nn.Module, x: torch.Tensor, n: int, chunk: int, kind: str) -> None:
    with torch.no_grad():
        c = int(model(x)[0].argmax())
    total = torch.zeros_like(x)
    alphas = (torch.arange(n, dtype=x.dtype) + 0.5) / n
    for start in range(0, n, chunk):
        k = min(chunk, n - start)
        if kind == "ig":
            xs = alphas[start:start + k, None, None, None] * x
        else:
            xs = x + 0.15 * torch.randn((k, *x.shape[1:]))
        xs.requires_grad_(True)
        out = model(xs)
        (g,) = torch.autograd.grad(out[:, c].sum(), xs)
        total += g.sum(0, keepdim=True)
    if kind == "ig":
        total * x / n


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Time every method and its floor; returns table rows."""
    torch.set_num_threads(max(1, torch.get_num_threads()))
    model = make_model()
    x = torch.rand(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    layer = model.layers
    repeat = 3 if quick else 7
    chunks = (5, 10, 25, 50)
    rows = []

    def add(method: str, ours: float, floor: float, note: str = "") -> None:
        rows.append({"framework": "torch", "method": method, "ours_s": ours, "floor_s": floor,
                     "ratio": ours / floor, "note": note})

    explain = eli5_nn.explain_prediction_nn
    ours, floor = _interleaved(lambda: explain(model, x, method="grad-cam"),
                               lambda: _floor_gradcam(model, x, layer), repeat)
    add("grad-cam", ours, floor, "forward + backward to the layer")
    ours, floor = _interleaved(lambda: explain(model, x, method="gradient"),
                               lambda: _floor_gradient(model, x), repeat)
    add("gradient", ours, floor, "forward + backward to the input")
    for method, kind, n, kw in (
        ("smoothgrad", "sg", SAMPLES, {"samples": SAMPLES}),
        ("integrated-gradients", "ig", STEPS, {"steps": STEPS}),
    ):
        # the floor's best chunk size first, then ours against that floor
        def floor_time(c: int, n: int = n, kind: str = kind) -> float:
            return _interleaved(lambda: None, lambda: _floor_steps(model, x, n, c, kind), 1)[1]

        best_chunk = min((c for c in chunks if c <= n), key=floor_time)
        ours, floor = _interleaved(
            lambda kw=kw, method=method: explain(model, x, method=method, progress=False, **kw),
            lambda n=n, kind=kind, c=best_chunk: _floor_steps(model, x, n, c, kind),
            max(2, repeat // 2),
        )
        add(method, ours, floor, f"{n} passes; floor chunk {best_chunk} (best of {chunks})")
    return rows


_PROBE = """
import sys, threading, time
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('keras', 'tensorflow', 'jax'):
            raise ImportError(name)
sys.meta_path.insert(0, _Block())
sys.path.insert(0, {root!r})
import torch
from benchmarks.bench_torch import make_model
import eli5_nn
def rss():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * 4096
m = make_model(); x = torch.rand(1, 3, 224, 224)
eli5_nn.explain_prediction_nn(m, x, method='integrated-gradients', steps=2, batch_size=2)
base = rss(); peak = [base]; done = []
def sample():
    while not done:
        peak[0] = max(peak[0], rss()); time.sleep(0.002)
t = threading.Thread(target=sample); t.start()
eli5_nn.explain_prediction_nn(m, x, method='integrated-gradients', steps={steps},
                              batch_size={batch_size})
done.append(1); t.join()
print((peak[0] - base) / 2**20)
"""


def _peak_rss_mb(steps: int, batch_size: int) -> float:
    """Peak resident memory above the pre-call level during one IG call (fresh process)."""
    code = _PROBE.format(root=str(Path(__file__).resolve().parents[1]), steps=steps,
                         batch_size=batch_size)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def memory_rows(batch_size: int = 16) -> list[dict[str, Any]]:
    """Peak extra memory of Integrated Gradients at 50 and 200 steps, same batch_size."""
    return [
        {"framework": "torch", "method": f"integrated-gradients steps={s} batch_size={batch_size}",
         "peak_mb": _peak_rss_mb(s, batch_size)}
        for s in (50, 200)
    ]


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    print(json.dumps(run(quick) + memory_rows(), indent=1))
