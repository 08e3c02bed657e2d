"""eli5_nn.format_as_html / save_html: embedded images, highlighted text, escaping."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import eli5
import numpy as np
import pytest
from eli5.base import Explanation

import eli5_nn
from eli5_nn.formatters import Comparison

from .factories import image_explanation, plain_target, text_explanation

EVIL = '<script>alert(1)</script><img src=x onerror="alert(2)">'


class _Elements(HTMLParser):
    """Collects the tags and attributes a browser would build."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))


def _no_active_markup(html: str) -> None:
    parser = _Elements()
    parser.feed(html)
    for tag, attrs in parser.tags:
        assert tag not in ("script", "iframe", "object", "embed", "link"), tag
        for name, value in attrs:
            assert not name.lower().startswith("on"), (tag, name)
            if name in ("src", "href"):
                assert (value or "").startswith("data:image/png;base64,"), (tag, value)


def test_image_explanation_embeds_every_target_and_the_input():
    expl = image_explanation(targets=[("cat", 1.0), ("dog", 0.5), ("fox", 0.2)])
    html = eli5_nn.format_as_html(expl)
    assert html.count('<img class="eli5-nn-pic') == 4  # the input and three overlays
    for name in ("cat", "dog", "fox"):  # one caption line per map: target, score, probability
        assert re.search(f"<figcaption>{name}, score [0-9.]+, p=[0-9.]+</figcaption>", html)
    assert "score 2, p=0.500" in html
    assert "Gradient × Input" in html and "made by hand" in html  # method, description
    assert "importance (heatmap)" in html  # the legend
    _no_active_markup(html)
    assert eli5_nn.format_as_html(expl, show_original=False).count('class="eli5-nn-pic') == 3


def test_small_images_are_displayed_large_and_pixelated():
    html = eli5_nn.format_as_html(image_explanation(size=8), min_size=128)
    assert 'width="128" height="128"' in html and "eli5-nn-pixelated" in html


def test_text_explanation_highlights_tokens_with_signed_colours():
    expl = text_explanation(["a", "great", "film", "sadly", "short"],
                            [0.0, 0.9, 0.1, -0.6, 0.0])
    html = eli5_nn.format_as_html(expl)
    assert 'title="0.9">great</span>' in html
    green = re.search(r'background-color: (hsl\([^)]*\))" title="0.9"', html).group(1)
    red = re.search(r'background-color: (hsl\([^)]*\))" title="-0.6"', html).group(1)
    assert green.startswith("hsl(120") and red.startswith("hsl(0")
    assert "positive" in html and "p=0.800" in html and "Integrated Gradients" in html
    assert "token weight" in html
    _no_active_markup(html)


def test_text_scale_per_target_or_fixed():
    expl = text_explanation(["good", "bad"], [0.2, -0.1])
    own = eli5_nn.format_as_html(expl)
    fixed = eli5_nn.format_as_html(expl, scale=10.0)
    colour = r'background-color: hsl\(120, 100.00%, ([0-9.]+)%\)" title="0.2"'
    assert float(re.search(colour, own).group(1)) < float(re.search(colour, fixed).group(1))
    assert "scale ±10" in fixed


@pytest.mark.parametrize("where", ["target", "token", "description", "estimator", "method"])
def test_everything_from_the_model_or_the_user_is_escaped(where):
    if where == "token":
        expl = text_explanation(["fine", EVIL, "movie"], [0.3, 0.8, -0.2])
    else:
        expl = image_explanation(targets=[("cat", 1.0)])
        if where == "target":
            expl.targets[0].target = EVIL
        else:
            setattr(expl, where, EVIL)
    html = eli5_nn.format_as_html(expl)
    _no_active_markup(html)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    page = eli5_nn.formatters.render_page(EVIL, html, intro=EVIL)
    _no_active_markup(page)


def test_several_explanations_text_and_images_in_one_page(tmp_path):
    items = [image_explanation(), text_explanation(["ok"], [0.5]),
             Explanation(estimator="Other", method="plain", targets=[plain_target("z")])]
    path = eli5_nn.save_html(tmp_path / "sub" / "report.html", items, title="My <report>")
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<title>My &lt;report&gt;</title>" in page
    assert "Content-Security-Policy" in page and "script-src" not in page  # default-src 'none'
    assert page.count('<section class="eli5-nn-block') == 3
    _no_active_markup(page)


def test_shared_scale_spans_everything_passed():
    strong = image_explanation(targets=[("a", 1.0)])
    weak = image_explanation(targets=[("b", 0.2)])
    html = eli5_nn.format_as_html([strong, weak], scale="shared", signed=True)
    vmax = re.findall(r"<span>\+([0-9.e-]+)</span>", html)
    assert len(vmax) == 2 and vmax[0] == vmax[1]  # one value on both colour bars
    per = eli5_nn.format_as_html([strong, weak], signed=True)
    assert "max |a|=" not in per or "max of each map" not in per


def test_repr_html_and_comparisons_display_in_notebooks():
    expl = image_explanation()
    assert expl._repr_html_() == eli5_nn.format_as_html(expl)
    comp = Comparison([image_explanation(method="A"), image_explanation(method="B")],
                      ["A", "B"], label="first <input>")
    html = comp._repr_html_()
    assert "<th>A</th>" in html and "<th>B</th>" in html and "first &lt;input&gt;" in html
    two = eli5_nn.format_as_html([comp, Comparison(comp.explanations, comp.names)])
    assert two.count("<table") == 1 and two.count('<th class="eli5-nn-rowlabel">') == 4


def test_eli5_formatters_still_accept_our_explanations():
    expl = image_explanation(targets=[("cat", 1.0)])
    assert isinstance(eli5.format_as_image(expl), type(eli5.format_as_image(expl)))
    assert eli5.format_as_image(expl).size == expl.image.size
    assert "Gradient × Input" in eli5.format_as_html(expl)
    assert eli5.format_as_dict(expl)["method"] == "Gradient × Input"
    text = text_explanation(["good", "film"], [0.5, 0.1])
    assert "good" in eli5.format_as_html(text, force_weights=False)


def test_errors():
    with pytest.raises(TypeError, match="Explanation"):
        eli5_nn.format_as_html("not an explanation")
    with pytest.raises(ValueError, match="scale"):
        eli5_nn.format_as_html(image_explanation(), scale="everything")
    with pytest.raises(ValueError, match="one name per explanation"):
        Comparison([image_explanation()], ["a", "b"])


def test_heatmap_values_outside_unit_interval_are_clipped_for_display():
    expl = image_explanation(targets=[("a", 1.0)])
    expl.targets[0].heatmap = expl.targets[0].heatmap * 1.0000001
    assert np.isfinite(np.asarray(eli5_nn.format_as_image(expl))).all()
