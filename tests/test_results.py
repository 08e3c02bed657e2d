"""The result classes (eli5_nn.results): data only, eli5-compatible, displayed through hooks."""

from __future__ import annotations

import json
import pickle

import eli5
import numpy as np
import pytest
from eli5.base import FeatureWeight, FeatureWeights
from eli5.formatters import format_as_dict, format_as_html, format_as_text

import eli5_nn
from eli5_nn import results
from eli5_nn.layout import Layout
from eli5_nn.results import Lazy, NNExplanation, NNTargetExplanation, display


def _target(**kw):
    return NNTargetExplanation(target="cat", score=1.0, proba=0.5,
                               heatmap=np.ones((2, 2)), attribution=np.ones((3, 2, 2)),
                               layout=Layout("CHW"), **kw)


def test_old_paths_are_the_same_classes():
    from eli5_nn.base import NNTargetExplanation as from_base
    from eli5_nn.decomposition import Hierarchy
    from eli5_nn.formatters import Comparison
    from eli5_nn.formatters import NNExplanation as from_formatters
    from eli5_nn.formatters.explanation import NNExplanation as from_explanation

    assert from_base is NNTargetExplanation is eli5_nn.NNTargetExplanation
    assert from_formatters is from_explanation is NNExplanation is eli5_nn.NNExplanation
    assert Comparison is results.Comparison is eli5_nn.Comparison
    assert Hierarchy is results.Hierarchy


def test_eli5_formatters_accept_the_results():
    fw = FeatureWeights(pos=[FeatureWeight("top left", 0.5)], neg=[])
    expl = NNExplanation(estimator="Net", method="m", targets=[_target(feature_weights=fw)])
    d = format_as_dict(expl)
    json.dumps(d, default=str)
    assert d["targets"][0]["target"] == "cat"
    assert "cat" in format_as_text(expl)
    assert "cat" in format_as_html(expl)


def test_layout_is_a_field_and_defaults_to_none():
    t = _target()
    assert t.layout == Layout("CHW")
    assert NNTargetExplanation(target=0).layout is None
    back = pickle.loads(pickle.dumps(t))
    assert back.layout == t.layout
    np.testing.assert_array_equal(back.attribution, t.attribution)


def test_lazy_fields_are_computed_once_on_first_read():
    calls = []

    def weights():
        calls.append(1)
        return FeatureWeights(pos=[FeatureWeight("region", 1.0)], neg=[])

    t = _target(feature_weights=Lazy(weights))
    assert calls == []
    assert t.feature_weights.pos[0].feature == "region"
    assert t.feature_weights.pos[0].feature == "region"
    assert calls == [1]
    expl = NNExplanation(estimator="Net", targets=[t], image=Lazy(lambda: "picture"))
    assert expl.image == "picture"
    t2 = _target(feature_weights=Lazy(weights))
    assert pickle.loads(pickle.dumps(t2)).feature_weights is not None
    spans = _target(weighted_spans=Lazy(lambda: "spans"))
    assert spans.weighted_spans == "spans"
    assert eli5.format_as_dict(_target(weighted_spans=Lazy(lambda: None)))["weighted_spans"] is None
    read: list[str] = []
    lazy = NNTargetExplanation(target="cat", proba=Lazy(lambda: read.append("p") or 0.25))
    e = NNExplanation(estimator="Net", targets=[lazy], description=results.joined(
        "said", Lazy(lambda: read.append("d") or " later")))
    assert read == []
    assert pickle.loads(pickle.dumps(e)) == e  # pickling and comparing read them
    assert e.description == "said later" and lazy.proba == 0.25 and sorted(read) == ["d", "p"]
    assert eli5.format_as_dict(e)["targets"][0]["proba"] == 0.25
    assert results.joined("a", "b") == "ab"


def test_repr_html_goes_through_the_registered_hook(monkeypatch):
    expl = NNExplanation(estimator="Net", targets=[_target()])
    monkeypatch.setitem(display._HOOKS, "html", lambda e: f"<p>{e.estimator}</p>")
    assert expl._repr_html_() == "<p>Net</p>"
    monkeypatch.delitem(display._HOOKS, "html")
    assert expl._repr_html_() is None
    comparison = results.Comparison([expl], ["m"])
    assert comparison._repr_html_() is None
    with pytest.raises(eli5_nn.errors.Eli5NNError, match="import eli5_nn.formatters"):
        comparison.format_as_html()


def test_formatters_register_their_hooks():
    import eli5_nn.formatters as f

    assert display.registered("html") is f.format_as_html
    assert display.registered("comparison_image") is f.comparison_image
    assert display.registered("hierarchy_html") is f.format_hierarchy_html


def test_comparison_checks_its_data():
    with pytest.raises(ValueError, match="one name per explanation"):
        results.Comparison([], [])
    with pytest.raises(ValueError, match="scale must be one of"):
        results.Comparison([eli5.base.Explanation(estimator="x")], ["m"], scale="loud")


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_channel_sums_agree_with_numpy_in_every_layout(dtype):
    """The BLAS product behind the channel sums gives numpy's sums (and dtype), also
    for non-contiguous rows; NaN and inf carry through (the finiteness check reads them)."""
    from eli5_nn.layout import Layout, sum_axis

    rng = np.random.default_rng(0)
    rows = (rng.standard_normal((3, 4, 5, 6)) * 10).astype(dtype)
    for axes, data in (("CHW", rows), ("HWC", np.moveaxis(rows, 1, 3))):
        got = Layout(axes).channel_sums(data)
        ch = axes.index("C") + 1
        np.testing.assert_allclose(got, data.sum(axis=ch), rtol=1e-5, atol=1e-4)
        assert got.dtype == data.sum(axis=ch).dtype
    tokens = rng.standard_normal((2, 7, 3)).astype(np.float32)
    np.testing.assert_allclose(sum_axis(tokens, 2), tokens.sum(axis=2), rtol=1e-5)
    if dtype is not np.int64:
        bad = rows.copy()
        bad[1, 2, 3, 4], bad[2, 0, 0, 0] = np.nan, np.inf
        got = Layout("CHW").channel_sums(bad)
        assert np.isnan(got[1, 3, 4]) and np.isinf(got[2, 0, 0])
        assert np.isfinite(np.delete(got.reshape(-1), [1 * 30 + 3 * 6 + 4, 2 * 30])).all()
