"""The report in a real browser: headless Chromium draws the images, and no
token or target name carrying markup runs as script.

Needs Debian's ``chromium`` package (``apt-get install chromium``; ``.ci/run``
installs it). Without it the test is skipped locally, and fails under CI
(``CI=true``). Two pages are checked: the standalone page of ``save_html``
and the bare fragment of ``format_as_html`` in a page without a Content
Security Policy (as a notebook would show it), so escaping is tested, not CSP.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import eli5_nn

from .factories import image_explanation, text_explanation

PAYLOADS = [
    "<script>document.documentElement.setAttribute('data-pwned-script', '1')</script>",
    "<img src=x onerror=\"document.documentElement.setAttribute('data-pwned-onerror', '1')\">",
]
PROBE = """<script>
window.addEventListener('load', function () {
  var rects = Array.prototype.map.call(document.querySelectorAll('img.eli5-nn-pic'),
    function (img) { var r = img.getBoundingClientRect();
      return [r.left + window.scrollX, r.top + window.scrollY, r.width, r.height,
              img.complete && img.naturalWidth > 0 ? 1 : 0].join(','); });
  document.documentElement.setAttribute('data-rects', rects.join(';'));
  document.documentElement.setAttribute('data-height', document.body.scrollHeight);
});
</script>"""
WIDTH = 1280


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    message = ("headless Chromium is not installed (Debian: apt-get install chromium); "
               "the browser test cannot run")
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " — CI must install it (.ci/run)")
    pytest.skip(message)


def _run(browser: str, tmp: Path, url: str, *extra: str) -> subprocess.CompletedProcess:
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage", "--hide-scrollbars", "--force-device-scale-factor=1",
           f"--user-data-dir={profile}", "--virtual-time-budget=3000", *extra, url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def _dump(browser: str, tmp: Path, page: Path) -> str:
    out = _run(browser, tmp, page.as_uri(), f"--window-size={WIDTH},800", "--dump-dom")
    assert out.returncode == 0 and "<html" in out.stdout, out.stderr[-2000:]
    return out.stdout


def _screenshot(browser: str, tmp: Path, page: Path, height: int) -> np.ndarray:
    shot = tmp / f"{page.stem}.png"
    out = _run(browser, tmp, page.as_uri(), f"--window-size={WIDTH},{height}",
               f"--screenshot={shot}")
    assert out.returncode == 0 and shot.exists(), out.stderr[-2000:]
    return np.asarray(Image.open(shot).convert("RGB"), dtype=np.int16)


def _pwned(dom: str) -> set[str]:
    """What the payloads wrote on the ``<html>`` element, if they ran."""
    root = re.search(r"<html[^>]*>", dom)
    assert root is not None
    return set(re.findall(r"data-pwned-([a-z]+)=", root.group(0)))


def _explanations() -> list:
    img = image_explanation(size=24, targets=[(PAYLOADS[0], 1.0), (PAYLOADS[1], 0.6)],
                            description=PAYLOADS[1])
    txt = text_explanation(["a", "fine", PAYLOADS[0], "and", PAYLOADS[1], "film"],
                           [0.1, 0.8, 0.5, 0.0, -0.7, 0.3], target=PAYLOADS[1])
    return [img, txt]


def _pages(tmp: Path) -> list[Path]:
    report = eli5_nn.save_html(tmp / "report.html", _explanations(), title=PAYLOADS[0])
    bare = tmp / "fragment.html"
    bare.write_text("<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>"
                    + eli5_nn.format_as_html(_explanations()) + "</body></html>",
                    encoding="utf-8")
    return [report, bare]


def test_report_draws_its_images_and_runs_no_injected_script(tmp_path):
    browser = _chromium()
    # the harness detects script that does run: a control page with the raw payloads
    control = tmp_path / "control.html"
    control.write_text("<html><body>" + "".join(PAYLOADS) + "</body></html>", encoding="utf-8")
    assert _pwned(_dump(browser, tmp_path, control)) == {"script", "onerror"}

    for page in _pages(tmp_path):
        dom = _dump(browser, tmp_path, page)
        assert not _pwned(dom), f"injected script ran in {page.name}"
        assert "&lt;script&gt;document.documentElement" in dom  # shown as text

        # where the images are: a copy of the page with a probe script (same layout)
        probed = tmp_path / f"probed-{page.name}"
        html = page.read_text(encoding="utf-8").replace("Content-Security-Policy", "x-no-csp")
        probed.write_text(html.replace("</body>", PROBE + "</body>"), encoding="utf-8")
        probe_dom = _dump(browser, tmp_path, probed)
        rects = re.search(r'data-rects="([^"]*)"', probe_dom).group(1)
        height = int(re.search(r'data-height="(\d+)"', probe_dom).group(1))
        boxes = [[float(v) for v in r.split(",")] for r in rects.split(";")]
        assert len(boxes) == 3  # the input and two targets
        assert all(b[4] == 1 for b in boxes), "an embedded image failed to decode"

        shot = _screenshot(browser, tmp_path, page, height + 40)
        for left, top, w, h, _ in boxes:
            assert w >= 128 and h >= 128  # small inputs are displayed enlarged
            x0, y0 = int(left) + 2, int(top) + 2
            crop = shot[y0:y0 + int(h) - 4, x0:x0 + int(w) - 4]
            assert crop.shape[0] > 100 and crop.shape[1] > 100
            not_white = (crop.min(axis=-1) < 235).mean()
            assert not_white > 0.9, f"image area mostly blank in {page.name}"
            assert crop.std() > 5  # a picture, not a flat box
        # the overlay of the first target differs from the input next to it
        (l0, t0, w0, h0, _), (l1, t1, *_rest) = boxes[0], boxes[1]
        a = shot[int(t0) + 2:int(t0 + h0) - 2, int(l0) + 2:int(l0 + w0) - 2]
        b = shot[int(t1) + 2:int(t1 + h0) - 2, int(l1) + 2:int(l1 + w0) - 2]
        assert np.abs(a - b).max(axis=-1).mean() > 5


LEGEND_PROBE = """<script>
window.addEventListener('load', function () {
  var rects = Array.prototype.map.call(document.querySelectorAll('.eli5-nn-legend'),
    function (el) { var r = el.getBoundingClientRect();
      return [r.left, r.top, r.right, r.bottom].join(','); });
  document.documentElement.setAttribute('data-legends', rects.join(';'));
  document.documentElement.setAttribute('data-viewport',
    window.innerWidth + ',' + window.innerHeight + ',' + document.documentElement.scrollWidth);
});
</script>"""


def _wide_report(tmp: Path) -> Path:
    """A report as the demo writes it: eight columns of pictures, then four
    columns of text, in two sections."""
    from eli5_nn import Comparison

    methods = ["Grad-CAM", "Grad-CAM++", "Gradient", "Gradient × Input", "SmoothGrad",
               "Integrated Gradients", "FullGrad", "Occlusion"]
    images = [Comparison([image_explanation(size=8, targets=[(f"class {k}", 1.0)], method=m)
                          for m in methods], methods, label=f"digit {k}") for k in range(3)]
    words = ("a fine film with a dull start and a great end " * 8).split()
    weights = np.sin(np.arange(len(words)))
    texts = [Comparison([text_explanation(words, weights * (j + 1), method=m)
                         for j, m in enumerate(methods[:4])], methods[:4],
                        label=f"review {k}") for k in range(2)]
    return eli5_nn.save_html(tmp / "wide.html", {"Digits": images, "Reviews": texts})


@pytest.mark.parametrize("width", [1280, 1920])
def test_the_legend_stays_in_view_at_common_widths(tmp_path, width):
    browser = _chromium()
    page = _wide_report(tmp_path)
    probed = tmp_path / "probed-wide.html"
    html = page.read_text(encoding="utf-8").replace("Content-Security-Policy", "x-no-csp")
    probed.write_text(html.replace("</body>", LEGEND_PROBE + "</body>"), encoding="utf-8")
    out = _run(browser, tmp_path, probed.as_uri(), f"--window-size={width},900", "--dump-dom")
    assert out.returncode == 0, out.stderr[-2000:]
    view_w, view_h, scroll_w = map(int, re.search(r'data-viewport="([^"]*)"',
                                                  out.stdout).group(1).split(","))
    assert view_w == width and scroll_w <= width  # nothing wider than the window
    legends = [[float(v) for v in r.split(",")]
               for r in re.search(r'data-legends="([^"]*)"', out.stdout).group(1).split(";")]
    assert len(legends) == 2  # one per block: the pictures, the texts
    for left, _top, right, _bottom in legends:
        assert 0 <= left and right <= width, (left, right, width)
    assert legends[0][3] <= view_h  # the first legend is on the first screen
    shot = tmp_path / f"report-{width}.png"
    done = _run(browser, tmp_path, page.as_uri(), f"--window-size={width},1400",
                f"--screenshot={shot}")
    assert done.returncode == 0 and shot.exists()
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=np.int16)
    assert pixels.shape[1] == width and pixels.std() > 10  # drawn, not blank
    keep = os.environ.get("ELI5_NN_SCREENSHOTS")
    if keep:  # to look at them: ELI5_NN_SCREENSHOTS=folder pytest tests/formatters/test_browser.py
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / shot.name)
