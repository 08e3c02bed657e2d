"""The demo trains, caches and writes a report."""

from __future__ import annotations

from eli5_nn.cli import main
from eli5_nn.demo import DEMO_METHODS, run_demo


def test_demo_writes_a_report_and_reuses_its_cache(tmp_path):
    logs: list[str] = []
    path = run_demo(tmp_path, n_digits=2, log=logs.append, n_reviews=1, n_train_reviews=600)
    html = path.read_text(encoding="utf-8")
    # one row per digit: the input, then every method side by side
    assert html.count('<img class="eli5-nn-pic') == 2 * (len(DEMO_METHODS) + 1)
    assert html.count('<tr>') == 3 and "digit " in html
    assert "Integrated Gradients" in html and "<script" not in html
    assert html.count("deletion AUC") >= 2 * len(DEMO_METHODS)  # faithfulness scores
    assert "Content-Security-Policy" in html and "http://" not in html
    assert any("trained the digits CNN" in m for m in logs)
    assert any("test accuracy" in m and float(m.split()[2]) > 0.8 for m in logs)
    assert any("rendered the report" in m for m in logs)
    # highlighted reviews from the PyTorch and the Keras text model
    assert "PyTorch text CNN (review labelled" in html and "Keras (" in html
    assert html.count("Occlusion") >= 1 and "padding left out" in html
    assert any("trained the PyTorch text CNN on 600 IMDB reviews" in m for m in logs)
    logs.clear()
    run_demo(tmp_path, n_digits=1, log=logs.append, n_reviews=1, n_train_reviews=600)
    assert not any(m.startswith("trained") for m in logs)  # everything cached
    assert main(["demo", "--out", str(tmp_path / "cli"), "--digits", "1", "--reviews", "0"]) == 0
