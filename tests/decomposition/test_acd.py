"""ACD hierarchies: a sentiment model trained on IMDB reviews separates praise from
criticism; hierarchies end in one component; the HTML shows every level."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import eli5_nn
from eli5_nn.decomposition import Hierarchy, hierarchy
from eli5_nn.demo_data import Vocabulary
from eli5_nn.formatters.hierarchy import format_hierarchy_html
from tests.text.models import TextCNN

LENGTH = 160
REVIEW = ("the acting was great and the music was wonderful but the plot was terrible "
          "and the ending was awful")


@pytest.fixture
def sentiment(imdb, imdb_models) -> tuple[nn.Module, Vocabulary, float]:
    """The session's text CNN trained on IMDB reviews, its vocabulary and accuracy."""
    model, acc = imdb_models["cnn"]
    return model, imdb["vocab"], acc


def test_praise_and_criticism_end_up_in_separate_components_of_opposite_sign(sentiment):
    model, vocab, acc = sentiment
    print(f"held-out accuracy {acc:.3f}")
    assert acc > 0.7
    ids, tokens = vocab.encode(REVIEW, LENGTH)
    h = hierarchy(model, ids[None], tokens=tokens, pad_value=0, target=1)
    assert h.tokens == REVIEW.split()
    positive, negative = {"great", "wonderful"}, {"terrible", "awful"}
    separated = False
    for level in range(len(h.levels)):
        phrases = h.phrases(level)
        pos = [s for p, s in phrases if positive & set(p.split()) and not negative & set(p.split())]
        neg = [s for p, s in phrases if negative & set(p.split()) and not positive & set(p.split())]
        if pos and neg and max(pos) > 0 and min(neg) < 0:
            separated = True
    assert separated, [h.phrases(i) for i in range(len(h.levels))]
    # the last level is the whole review, one component
    assert len(h.levels[-1].components) == 1
    assert sorted(h.levels[-1].components[0].units) == list(range(len(h.tokens)))
    html = eli5_nn.format_as_html(h)
    assert html.count("level ") >= len(h.levels) and "wonderful" in html


def test_image_hierarchy_grows_8_connected_regions_into_one():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                          nn.Flatten(), nn.Linear(16, 3)).eval()
    x = torch.rand(1, 1, 12, 12)
    h = hierarchy(model, x, patch=3, percentile=80)
    assert isinstance(h, Hierarchy) and h.kind == "image" and h.grid == (4, 4)
    assert len(h.levels[-1].components) == 1 and len(h.levels[-1].components[0].units) == 16
    sizes = [sum(len(c.units) for c in lv.components) for lv in h.levels]
    assert sizes == sorted(sizes) and sizes[0] >= 1
    for lv in h.levels:
        for c in lv.components:  # every component is 8-connected
            cells = {divmod(u, 4) for u in c.units}
            start = next(iter(cells))
            seen, todo = {start}, [start]
            while todo:
                r, q = todo.pop()
                for dr in (-1, 0, 1):
                    for dq in (-1, 0, 1):
                        nb = (r + dr, q + dq)
                        if nb in cells and nb not in seen:
                            seen.add(nb)
                            todo.append(nb)
            assert seen == cells
    html = format_hierarchy_html(h)
    assert html.count("<img") == len(h.levels)


def test_hierarchy_refuses_bad_arguments():
    model = TextCNN().eval()
    ids = torch.randint(1, 50, (1, 6))
    with pytest.raises(ValueError, match="tokens"):
        hierarchy(model, ids, tokens=["a", "b"])
    with pytest.raises(ValueError, match="target"):
        hierarchy(model, ids, target=7)
    with pytest.raises(ValueError, match="percentile"):
        hierarchy(model, ids, percentile=100)
    with pytest.raises(ValueError, match="patch"):
        hierarchy(model, ids, patch=2)
    with pytest.raises(TypeError):
        eli5_nn.format_as_html(object())
