"""PyTorch image methods against their floors, on a ResNet-style net at 224×224 (CPU).

The floor of a method is the same number of forward+backward passes written
directly in torch (hooks and ``torch.autograd.grad``), with the best chunking
of steps/samples among a few sizes. The CAM floors record no graph before the
layer and go backward down to the layer only; FullGrad's floor is one pass to
the input and to every bias layer's output. The floors pass the input in the
memory layout eli5-nn passes it in (channels-last on the CPU, see
:func:`our_memory_format`), so that a ratio measures eli5-nn's own work. Ours
and the floor run alternately in the same process: a one-pass row reports the
median of the per-round ratios of CPU time (:func:`benchmarks.timing.one_pass_row`),
a step- or sample-based row each side's best time.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import eli5_nn  # noqa: E402
from benchmarks.timing import best_chunk, interleaved, one_pass_row, speed_row  # noqa: E402
from tests.models import ResNetish, randomize_bn  # noqa: E402

SIZE = 224
STEPS = 50
SAMPLES = 25


def make_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return randomize_bn(ResNetish(n_classes=10, width=16, blocks=(1, 1, 1, 1))).eval()


def our_memory_format(model: torch.nn.Module, x: torch.Tensor) -> torch.memory_format:
    """The memory layout eli5-nn passes inputs like ``x`` to ``model`` in (its torch
    adapter runs CPU images of convolutional models channels-last where that agrees
    with the plain layout). The floors run in the same layout, so that a ratio
    measures eli5-nn's own work, not the layout."""
    from eli5_nn.adapters.torch import TorchAdapter

    adapter = TorchAdapter(model)
    with adapter.session():
        adapter._choose_format(x)
    chosen = bool(adapter._channels_last)
    return torch.channels_last if chosen else torch.contiguous_format


def _floor_cam(model: torch.nn.Module, x: torch.Tensor, layer: torch.nn.Module,
               plus: bool = False, fmt: torch.memory_format = torch.contiguous_format
               ) -> torch.Tensor:
    """Forward without a graph up to the layer, whose output becomes a leaf; backward
    from the class score to it; the channel weighting of Grad-CAM or Grad-CAM++."""
    store: list[torch.Tensor] = []

    def leaf(m: torch.nn.Module, i: Any, o: torch.Tensor) -> torch.Tensor:
        torch.set_grad_enabled(True)  # record only what follows the layer
        store.append(o.detach().requires_grad_(True))
        return store[-1]

    handle = layer.register_forward_hook(leaf)
    try:
        with torch.no_grad():
            out = model(x.contiguous(memory_format=fmt))
    finally:
        handle.remove()
    a = store[0]
    (g,) = torch.autograd.grad(out[0, int(out[0].argmax())], a)
    a = a.detach()
    if plus:  # Grad-CAM++ (eq. 19): alpha = G^2 / (2 G^2 + sum A G^3)
        g2 = g * g
        denom = 2 * g2 + a.sum(dim=(2, 3), keepdim=True) * g2 * g
        alpha = torch.where(denom != 0, g2 / torch.where(denom != 0, denom, 1.0), 0.0)
        w = (alpha * g.relu()).sum(dim=(2, 3), keepdim=True)
    else:
        w = g.mean(dim=(2, 3), keepdim=True)
    return (w * a).sum(1).relu()


def _floor_gradient(model: torch.nn.Module, x: torch.Tensor, times_input: bool = False,
                    fmt: torch.memory_format = torch.contiguous_format) -> torch.Tensor:
    xi = x.detach().requires_grad_(True)
    out = model(xi.contiguous(memory_format=fmt))
    (g,) = torch.autograd.grad(out[0, int(out[0].argmax())], xi)
    return g * x if times_input else g.abs().amax(1)


def _bias_sites(model: torch.nn.Module) -> list[tuple[torch.nn.Module, torch.Tensor]]:
    """(module, effective bias) of every BatchNorm and biased Linear/Conv layer."""
    sites = []
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            assert m.running_var is not None and m.running_mean is not None
            scale = torch.rsqrt(m.running_var + m.eps) * m.weight.detach()
            sites.append((m, m.bias.detach() - m.running_mean * scale))
        elif isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)) and m.bias is not None:
            sites.append((m, m.bias.detach()))
    return sites


def _floor_fullgrad(model: torch.nn.Module, x: torch.Tensor,
                    sites: list[tuple[torch.nn.Module, torch.Tensor]],
                    fmt: torch.memory_format = torch.contiguous_format
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """One pass to the input and every bias layer's output; the bias maps spread
    (mass-preserving) over the input, and the paper's display map (per-map
    min-max of |.|, channel sum, bilinear resize)."""
    outs: list[torch.Tensor] = []
    handles = [m.register_forward_hook(lambda m, i, o: outs.append(o)) for m, _ in sites]
    try:
        xi = x.detach().requires_grad_(True)
        out = model(xi.contiguous(memory_format=fmt))
    finally:
        for h in handles:
            h.remove()
    gx, *gs = torch.autograd.grad(out[0, int(out[0].argmax())], [xi, *outs])

    def psi(t: torch.Tensor) -> torch.Tensor:
        a = t.abs()
        mn, mx = a.amin(dim=(1, 2, 3), keepdim=True), a.amax(dim=(1, 2, 3), keepdim=True)
        return ((a - mn) / (mx - mn).clamp_min(1e-12)).sum(1, keepdim=True)

    attribution = gx * x
    display = psi(attribution)
    size = x.shape[2:]
    for g, (_, bias) in zip(gs, sites, strict=True):
        if g.ndim == 4:
            per = g * bias[None, :, None, None]
            both = F.interpolate(torch.cat([per.sum(1, keepdim=True), psi(per)], 1), size,
                                 mode="bilinear", align_corners=False)
            scale = g.shape[2] * g.shape[3] / (size[0] * size[1]) / x.shape[1]
            attribution = attribution + both[:, :1] * scale
            display = display + both[:, 1:]
        else:
            attribution = attribution + (g * bias).sum() / x[0].numel()
    return attribution, display


def _floor_steps(model: torch.nn.Module, x: torch.Tensor, n: int, chunk: int, kind: str,
                 fmt: torch.memory_format = torch.contiguous_format) -> torch.Tensor:
    with torch.no_grad():
        c = int(model(x.contiguous(memory_format=fmt))[0].argmax())
    total = torch.zeros_like(x)
    std = 0.15 * (x.max() - x.min())
    alphas = (torch.arange(n, dtype=x.dtype) + 0.5) / n
    for start in range(0, n, chunk):
        k = min(chunk, n - start)
        if kind == "ig":
            xs = alphas[start:start + k, None, None, None] * x
        else:
            xs = x + std * torch.randn((k, *x.shape[1:]))
        xs.requires_grad_(True)
        out = model(xs.contiguous(memory_format=fmt))
        (g,) = torch.autograd.grad(out[:, c].sum(), xs)
        total += g.sum(0, keepdim=True)
    return total * x / n if kind == "ig" else total / n


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Time every method and its floor; returns table rows."""
    model = make_model()
    x = torch.rand(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    layer = model.layers
    sites = _bias_sites(model)
    fmt = our_memory_format(model, x)
    # one-pass rows: medians of alternated rounds (a best time of a dozen rounds of a
    # Grad-CAM call was left to chance on a busy machine: 0.97-1.14 for one build)
    rows = []
    explain = eli5_nn.explain_prediction_nn
    simple: list[tuple[str, Any, str]] = [
        ("grad-cam", lambda: _floor_cam(model, x, layer, fmt=fmt),
         "forward without a graph up to the layer, backward to it"),
        ("grad-cam++", lambda: _floor_cam(model, x, layer, plus=True, fmt=fmt), "as grad-cam"),
        ("gradient", lambda: _floor_gradient(model, x, fmt=fmt),
         "forward + backward to the input"),
        ("gradient-x-input", lambda: _floor_gradient(model, x, times_input=True, fmt=fmt),
         "forward + backward to the input"),
        ("fullgrad", lambda: _floor_fullgrad(model, x, sites, fmt=fmt),
         "one pass to the input and every bias layer; bias maps resized"),
    ]
    for method, floor, note in simple:
        rows.append(one_pass_row("torch", method, lambda m=method: explain(model, x, method=m),
                                 floor, note, quick))
    # --quick: a fifth of the passes
    samples, steps = (SAMPLES // 5, STEPS // 5) if quick else (SAMPLES, STEPS)
    for method, kind, n, kw in (
        ("smoothgrad", "sg", samples, {"samples": samples}),
        ("integrated-gradients", "ig", steps, {"steps": steps}),
    ):
        # the floor's best chunk size first, then ours against that floor
        options = tuple(c for c in ((5, 10) if quick else (5, 10, 25, 50)) if c <= n)
        best = best_chunk(
            lambda c, n=n, kind=kind: lambda: _floor_steps(model, x, n, c, kind, fmt), options)
        ours, t_floor = interleaved(
            lambda kw=kw, method=method: explain(model, x, method=method, progress=False, **kw),
            lambda n=n, kind=kind, c=best: _floor_steps(model, x, n, c, kind, fmt),
            1 if quick else 2, warmup=1, min_time=0.0,
        )
        rows.append(speed_row("torch", method, ours, t_floor,
                              f"{n} passes; floor chunk {best} (best of {options})"))
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
