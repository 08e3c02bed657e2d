"""eli5-nn against Captum on the image methods both have (PyTorch, CPU).

The benchmark's ResNet-style network (``bench_torch.make_model``) at 224×224
and at 112×112. For each method both libraries run the same passes on the
same input and target:

- Grad-CAM: Captum's ``LayerGradCam`` on the layer eli5-nn picks
  (``model.layers``), ReLU, upsampled bilinearly to the input with
  ``LayerAttribution.interpolate`` (as eli5-nn resizes its map);
- gradient: ``Saliency``; gradient × input: ``InputXGradient``;
- SmoothGrad: ``NoiseTunnel(Saliency)`` with ``nt_type="smoothgrad"``, the same
  number of samples and the same absolute noise (eli5-nn's ``noise`` is relative
  to the input's range: Captum gets ``stdevs = noise * (max(x) - min(x))``);
- Integrated Gradients: ``IntegratedGradients`` with the same steps and rule
  (Gauss–Legendre, Captum's default), from a zero baseline.

Step- and sample-based methods get two rows: Captum with its own batching (all
steps or samples in one pass, its default) against eli5-nn with its own
(``batch_size`` from its memory budget), and both at the same batch size (the one
eli5-nn picks). Calls alternate in one process after warm-up; the ratio of a row
is the median of the per-round ratios ours ÷ Captum.

On the CPU eli5-nn passes images to convolutional models in channels-last memory
layout (where one row run both ways agrees), which oneDNN runs faster; Captum
gets the input as the user has it (contiguous). The one-pass methods get a
further row with Captum given the same channels-last input, which shows what
the layout alone buys.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import eli5_nn  # noqa: E402
from benchmarks.bench_torch import make_model  # noqa: E402
from benchmarks.timing import auto_batch_size, paired  # noqa: E402

STEPS = 50
SAMPLES = 50
NOISE = 0.15


def captum_row(framework: str, method: str, ours: float, theirs: float, ratio: float,
               note: str, error: float | None = None) -> dict[str, Any]:
    """One row of the vs-Captum table (``error``: IG completeness error, relative)."""
    row = {"framework": framework, "method": method, "ours_s": ours, "captum_s": theirs,
           "ratio": ratio, "note": note}
    if error is not None:
        row["error"] = error
    return row


class Image:
    """Ours and Captum's calls on one image of side ``size``."""

    def __init__(self, size: int) -> None:
        from captum.attr import (
            InputXGradient,
            IntegratedGradients,
            LayerGradCam,
            NoiseTunnel,
            Saliency,
        )

        self.model = model = make_model()
        self.x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            self.target = int(model(self.x)[0].argmax())
        self.std = float(NOISE * (self.x.max() - self.x.min()))
        self.gradcam = LayerGradCam(model, model.layers)
        self.saliency = Saliency(model)
        self.ixg = InputXGradient(model)
        self.nt = NoiseTunnel(Saliency(model))
        self.ig = IntegratedGradients(model)

    def ours(self, method: str, **kw: Any) -> Callable[[], Any]:
        return lambda: eli5_nn.explain_prediction_nn(
            self.model, self.x, method=method, targets=[self.target], progress=False, **kw)

    def captum_gradcam(self, x: torch.Tensor) -> torch.Tensor:
        cam = self.gradcam.attribute(x, target=self.target, relu_attributions=True)
        return F.interpolate(cam, x.shape[2:], mode="bilinear", align_corners=False)

    def captum(self, method: str, batch: int | None = None, channels_last: bool = False
               ) -> Callable[[], Any]:
        x, t = self.x, self.target
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        calls: dict[str, Callable[[], Any]] = {
            "grad-cam": lambda: self.captum_gradcam(x),
            "gradient": lambda: self.saliency.attribute(x, target=t),
            "gradient-x-input": lambda: self.ixg.attribute(x, target=t),
            "smoothgrad": lambda: self.nt.attribute(
                x, nt_type="smoothgrad", nt_samples=SAMPLES, stdevs=self.std, target=t,
                nt_samples_batch_size=batch),
            "integrated-gradients": lambda: self.ig.attribute(
                x, baselines=0.0, target=t, n_steps=STEPS, method="gausslegendre",
                internal_batch_size=batch),
        }
        return calls[method]


def image_rows(size: int, repeat: int) -> list[dict[str, Any]]:
    """Every image method at ``size``×``size``: ours ÷ Captum."""
    im = Image(size)
    fw = f"torch {size}×{size}"
    rows = []
    for method in ("grad-cam", "gradient", "gradient-x-input"):
        o, c, r = paired(im.ours(method), im.captum(method), repeat)
        rows.append(captum_row(fw, method, o, c, r, "one pass"))
        o, c, r = paired(im.ours(method), im.captum(method, channels_last=True), repeat)
        rows.append(captum_row(fw, f"{method}, Captum channels-last", o, c, r,
                               "one pass; Captum given the input in channels-last layout"))
    for method, n, kw in (("smoothgrad", SAMPLES, {"samples": SAMPLES, "noise": NOISE}),
                          ("integrated-gradients", STEPS, {"steps": STEPS})):
        chunk = auto_batch_size(im.model, im.x, n)
        rep = max(3, repeat // 3)
        o, c, r = paired(im.ours(method, **kw), im.captum(method), rep)
        rows.append(captum_row(fw, method, o, c, r,
                               f"{n} passes; ours batch {chunk} (auto), Captum {n} (its default)"))
        o, c, r = paired(im.ours(method, batch_size=chunk, **kw), im.captum(method, chunk), rep)
        rows.append(captum_row(fw, f"{method} batch_size={chunk}", o, c, r,
                               f"{n} passes; both batch {chunk}"))
    return rows


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Rows {framework, method, ours_s, captum_s, ratio, note}."""
    repeat = 5 if quick else 15
    sizes = (224,) if quick else (224, 112)  # 224×224: the size the targets are set at
    return [row for size in sizes for row in image_rows(size, repeat)]


if __name__ == "__main__":
    for row in run("--quick" in sys.argv):
        print(row)
