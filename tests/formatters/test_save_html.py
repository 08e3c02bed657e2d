"""``save_html``: the path comes first, and a dict gives sections with headings."""

from __future__ import annotations

from pathlib import Path

import pytest

import eli5_nn
from eli5_nn.errors import Eli5NNTypeError

from .factories import image_explanation, text_explanation


@pytest.mark.parametrize("path", ["report.html", Path("report.html")])
def test_swapped_arguments_say_that_the_path_comes_first(tmp_path, monkeypatch, path):
    monkeypatch.chdir(tmp_path)
    expl = image_explanation()
    with pytest.raises(TypeError, match=r"path first.*save_html\('report.html', explanations\)"):
        eli5_nn.save_html(expl, path)
    with pytest.raises(Eli5NNTypeError, match="path first"):
        eli5_nn.save_html(expl, [expl])
    assert not list(tmp_path.iterdir())  # nothing written


def test_sections_with_headings(tmp_path):
    page = eli5_nn.save_html(tmp_path / "r.html", {
        "Images <1>": [image_explanation()],
        "Reviews": [text_explanation(["a", "fine", "film"], [0.1, 0.8, -0.3])],
    }).read_text(encoding="utf-8")
    assert '<h2 class="eli5-nn-section">Images &lt;1&gt;</h2>' in page
    assert page.index("Images &lt;1&gt;") < page.index('<table class="eli5-nn-grid"') < page.index(
        ">Reviews</h2>") < page.index('<p class="eli5-nn-doc"')
    with pytest.raises(TypeError, match="at least one section"):
        eli5_nn.format_as_html({})
