"""The demo trains, caches and writes a report with sections; the command prints
only its own progress lines and the report's path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from eli5_nn.demo import DEMO_METHODS, TEXT_METHODS, run_demo

ROOT = Path(__file__).resolve().parent.parent


def test_demo_writes_a_report_and_reuses_its_cache(tmp_path):
    logs: list[str] = []
    path = run_demo(tmp_path, n_digits=2, log=logs.append, n_reviews=2, n_train_reviews=600)
    html = path.read_text(encoding="utf-8")
    # a section per modality, with headings
    assert html.count('<h2 class="eli5-nn-section">') == 2
    assert html.index(">Digits: every image method</h2>") < html.index(">IMDB reviews: the")
    # one row per digit: the input, then every method side by side; one legend
    assert html.count('<img class="eli5-nn-pic') == 2 * (len(DEMO_METHODS) + 1)
    assert "digit " in html and "Integrated Gradients" in html and "<script" not in html
    assert html.count('<div class="eli5-nn-legend">') == 2  # images, texts
    assert "digits CNN (PyTorch)" in html and "Sequential" not in html
    assert html.count("deletion AUC") >= 2 * len(DEMO_METHODS)  # faithfulness, on hover
    assert "mean AUC" in html
    assert "Content-Security-Policy" in html and "http://" not in html
    assert any("trained the digits CNN" in m for m in logs)
    assert any("test accuracy" in m and float(m.split()[2]) > 0.8 for m in logs)
    assert any("rendered the report" in m for m in logs)
    # reviews side by side: one row per review, one column per (model, method)
    assert html.count('<table class="eli5-nn-textgrid">') == 1
    assert "review 1 (labelled" in html and "review 2 (labelled" in html
    assert "PyTorch text CNN: Occlusion" in html and "Keras (" in html
    n_columns = len(TEXT_METHODS) + 1
    assert html.count('<p class="eli5-nn-doc">') == 2 * n_columns
    assert any("trained the PyTorch text CNN on 600 IMDB reviews" in m for m in logs)
    logs.clear()
    run_demo(tmp_path, n_digits=1, log=logs.append, n_reviews=1, n_train_reviews=600)
    assert not any(m.startswith("trained") for m in logs)  # everything cached


def test_the_command_prints_only_its_progress_and_the_report_path(tmp_path):
    out = tmp_path / "cli"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    done = subprocess.run(
        [sys.executable, "-m", "eli5_nn", "demo", "--out", str(out), "--digits", "1",
         "--reviews", "0"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=900,
        check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr == ""  # no warnings, no framework log lines
    lines = done.stdout.splitlines()
    assert lines[-1] == f"report written to {(out / 'report.html').resolve()}"
    assert all(ln.split()[0] in {"trained", "test", "loaded", "rendered"}
               or ln.split()[0] in {m.split()[0] for m in ("Grad-CAM", "Grad-CAM++",
                                    "Gradient", "Gradient", "SmoothGrad", "Integrated",
                                    "FullGrad")}
               for ln in lines[:-1]), lines
