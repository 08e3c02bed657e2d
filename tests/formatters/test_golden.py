"""Golden images of the overlay: unsigned and signed maps, per-target and shared scales.

The images are drawn without text (``labels=False``) so that fonts cannot
change them, and compared with a tolerance (resampling and colormap rounding
may differ slightly between Pillow and matplotlib versions).

To regenerate the goldens after an intended change of the drawing, run::

    ELI5_NN_REGEN_GOLDEN=1 .venv/bin/python -m pytest -q tests/formatters/test_golden.py

and look at the new PNGs in ``tests/formatters/golden/`` before committing them.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import eli5_nn

from .factories import image_explanation

GOLDEN = Path(__file__).parent / "golden"
REGENERATE = os.environ.get("ELI5_NN_REGEN_GOLDEN") == "1"

CASES = {
    "unsigned_per_target": {"signed": False, "scale": "target"},
    "unsigned_shared": {"signed": False, "scale": "shared"},
    "signed_per_target": {"signed": True, "scale": "target"},
    "signed_shared": {"signed": True, "scale": "shared"},
    # a grey 8×8 input (as a digit): enlarged first, its strokes drawn over the map
    "grey_contour_unsigned": {"signed": False, "scale": "target", "grey": True},
    "grey_contour_signed": {"signed": True, "scale": "target", "grey": True},
}


def _grey_ring(size: int = 8) -> Image.Image:
    y, x = np.mgrid[0:size, 0:size] - (size - 1) / 2
    ring = np.abs(np.hypot(y, x) - size / 4) < 1.0
    return Image.fromarray(np.where(ring, 230, 30).astype(np.uint8), mode="L")


def _draw(options: dict) -> Image.Image:
    options = dict(options)
    if options.pop("grey", False):
        expl = image_explanation(size=8, targets=[("strong", 1.0), ("weak", 0.3)])
        expl.image = _grey_ring(8)
        return eli5_nn.format_as_image(expl, labels=False, min_size=64, show_original=True,
                                       **options)
    expl = image_explanation(size=24, targets=[("strong", 1.0), ("weak", 0.3)])
    return eli5_nn.format_as_image(expl, labels=False, min_size=48, show_original=True,
                                   **options)


@pytest.mark.parametrize("name", sorted(CASES))
def test_overlay_matches_its_golden_image(name):
    img = _draw(CASES[name])
    path = GOLDEN / f"{name}.png"
    if REGENERATE:
        GOLDEN.mkdir(exist_ok=True)
        img.save(path, optimize=True)
    assert path.exists(), f"missing golden {path}; regenerate with ELI5_NN_REGEN_GOLDEN=1"
    golden = np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)
    got = np.asarray(img.convert("RGB"), dtype=np.int16)
    assert got.shape == golden.shape
    diff = np.abs(got - golden).max(axis=-1)
    assert diff.mean() < 1.5, f"mean difference {diff.mean():.2f} from {path.name}"
    assert (diff > 24).mean() < 0.01, f"{(diff > 24).mean():.2%} pixels differ from {path.name}"


def test_goldens_differ_where_the_options_differ():
    imgs = {k: np.asarray(_draw(v), dtype=np.int16) for k, v in CASES.items()}
    for a, b in (("unsigned_per_target", "signed_per_target"),
                 ("unsigned_per_target", "unsigned_shared"),
                 ("signed_per_target", "signed_shared"),
                 ("grey_contour_unsigned", "grey_contour_signed")):
        assert (np.abs(imgs[a] - imgs[b]).max(axis=-1) > 24).mean() > 0.005, (a, b)


def test_the_grey_input_stays_visible_under_strong_values():
    """Its contour is drawn over the map: dark pixels where the strong map would hide it."""
    with_lines = np.asarray(_draw(CASES["grey_contour_unsigned"]), dtype=np.int16)
    without = np.asarray(_draw({**CASES["grey_contour_unsigned"], "contour": False}),
                         dtype=np.int16)
    changed = np.abs(with_lines - without).max(axis=-1) > 40
    assert 0.01 < changed.mean() < 0.2
