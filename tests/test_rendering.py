"""Rendering explanations of real (tiny) models end to end: explain, then draw
(eli5.show_prediction, eli5.format_as_text, eli5_nn.compare)."""

from __future__ import annotations

import warnings

import eli5
import numpy as np
import pytest
import torch
from PIL import Image

import eli5_nn
from tests.models import plain_cnn
from tests.test_neutral import run_without_frameworks

IMAGE_METHODS = sorted(k for k, m in eli5_nn.METHODS.items() if m.image and not m.requires)
QUICK = {"smoothgrad": {"samples": 4, "random_state": 0},
         "integrated-gradients": {"steps": 8}}


@pytest.fixture(scope="module")
def cnn() -> tuple[torch.nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    return plain_cnn(n_classes=4).eval(), torch.rand(1, 3, 12, 12,
                                                     generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("method", IMAGE_METHODS)
def test_every_image_method_renders_signed_and_unsigned(cnn, method):
    model, x = cnn
    expl = eli5_nn.explain_prediction_nn(model, x, method=method, top_targets=2,
                                         **QUICK.get(method, {}))
    for signed in (False, True):
        img = eli5_nn.format_as_image(expl, signed=signed, scale="explanation")
        assert img.mode == "RGB" and img.width > 2 * 128
    html = eli5_nn.format_as_html(expl, signed=True)
    assert html.count('<img class="eli5-nn-pic') == 3
    one = eli5_nn.explain_prediction_nn(model, x, method=method, **QUICK.get(method, {}))
    assert eli5.format_as_image(one).size == (12, 12)  # eli5's own overlay still works


def test_show_prediction_and_format_as_text_for_images(cnn):
    model, x = cnn
    shown = eli5.show_prediction(model, x, method="gradient")
    assert isinstance(shown, Image.Image)
    # several targets: one panel each (eli5's own format_as_image draws only one)
    both = eli5.show_prediction(model, x, method="gradient", targets=[0, 1])
    assert isinstance(both, Image.Image) and both.width > shown.width
    expl = eli5.explain_prediction(model, x, method="grad-cam", top_targets=2,
                                   target_names=["ant", "bee", "cat", "dog"])
    text = eli5.format_as_text(expl)
    assert "Grad-CAM" in text
    for t in expl.targets:
        assert f"y={t.target!r}" in text and f"score={t.score:.3f}" in text
        assert f"probability={t.proba:.3f}" in text


def test_show_prediction_for_text(tmp_path):
    from tests.text.models import TextCNN

    torch.manual_seed(0)
    ids = np.array([[5, 7, 9, 3, 0]])
    tokens = ["good", "movie", "<img src=x onerror=alert(1)>", "end", "<pad>"]
    shown = eli5.show_prediction(TextCNN().eval(), ids, method="integrated-gradients",
                                 tokens=tokens, pad_value=0, steps=8)
    assert "good" in shown.data and "background-color" in shown.data
    expl = eli5_nn.explain_prediction_nn(TextCNN().eval(), ids, method="integrated-gradients",
                                         tokens=tokens, pad_value=0, steps=8)
    html = eli5_nn.format_as_html(expl)
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "<img src=x" not in html


def test_compare_puts_methods_side_by_side_on_one_scale(cnn):
    model, x = cnn
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # steps= reaches IG only, without a warning
        comp = eli5_nn.compare(model, x, methods=["grad-cam", "gradient",
                                                  "integrated-gradients"], steps=8)
    assert comp.names == ["Grad-CAM", "Gradient", "Integrated Gradients"]
    assert len({e.targets[0].target for e in comp.explanations}) == 1
    img = comp.format_as_image(labels=False, legend=False, min_size=12)
    assert img.size == (8 + 4 * (12 + 8), 8 + 12 + 8)  # input + three methods in one row
    assert eli5_nn.format_as_image(comp).width > img.width
    html = comp._repr_html_()
    assert html.count('<img class="eli5-nn-pic') == 4 and "<th>Grad-CAM</th>" in html
    shared = eli5_nn.compare(model, x, methods=["gradient", "smoothgrad"], scale="shared",
                             samples=4, random_state=0, targets=[0, 1])
    assert shared.format_as_html().count('<img class="eli5-nn-pic') == 2 * 3
    with pytest.raises(ValueError, match="valid methods"):
        eli5_nn.compare(model, x, methods=["nope"])
    with pytest.raises(ValueError, match="non-empty list"):
        eli5_nn.compare(model, x, methods="gradient")


def test_formatters_import_no_framework():
    out = run_without_frameworks(
        "import eli5_nn.formatters\n"
        "from tests.formatters.factories import image_explanation\n"
        "e = image_explanation()\n"
        "eli5_nn.format_as_html(e); eli5_nn.format_as_image(e, signed=True)\n"
    )
    assert out.returncode == 0, out.stderr
