"""dataset_report and summarize: mean maps per class and per pair, the share inside masks,
faithfulness AUCs, one standalone HTML page with every text escaped."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eli5_nn.datasets import dataset_report, explain_dataset, summarize
from eli5_nn.errors import ExplanationError

pytest.importorskip("pyarrow")


class Corner(torch.nn.Module):
    """A linear model of two classes: class 1 reads only the top-left 4×4 corner."""

    def __init__(self) -> None:
        super().__init__()
        w = torch.zeros(2, 1, 8, 8)
        w[0, 0, 4:, 4:] = 1.0
        w[1, 0, :4, :4] = 1.0
        self.w = torch.nn.Parameter(w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x[:, None] * self.w).flatten(2).sum(-1)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    x = np.random.default_rng(0).uniform(0.1, 1, size=(12, 1, 8, 8)).astype(np.float32)
    labels = np.array([0, 1] * 6)
    x[labels == 1, :, :4, :4] += 2  # class 1 rests on its corner
    x[labels == 0, :, 4:, 4:] += 2
    x[0, :, :4, :4] += 5  # item 0: truly 0, predicted 1
    bad = x.copy()
    bad[3] = np.nan
    explain_dataset(Corner(), bad, method="gradient-x-input", out=out, labels=labels,
                    target_names=["<b>zero</b>", "one"], faithfulness=True, progress=False)
    return out


def test_summaries(run):
    mask = np.zeros((8, 8), dtype=np.float32)
    mask[:4, :4] = 1
    s = summarize(run, masks=mask)
    assert len(s.ids) == 11 and s.n_errors == 1
    assert s.predicted[0] == 1 and s.labels[0] == 0
    assert s.class_counts == {0: 6, 1: 5}  # item 3 (class 1) is NaN
    assert s.pair_counts == {(0, 0): 5, (0, 1): 1, (1, 1): 5}
    assert s.class_share[1] == pytest.approx(1.0)  # class 1's evidence is all in the corner
    assert s.class_share[0] == pytest.approx(1 / 6)  # only item 0, predicted 1
    assert s.share is not None and s.share[0] == pytest.approx(1.0)
    assert s.ids[s.ranked(1, most=False)[0]] != "0"
    m1 = s.class_maps[1]
    assert m1[:4, :4].min() > 0 and m1[4:, 4:].max() == 0
    assert set(s.auc) == {"deletion_auc", "insertion_auc"}
    assert np.isfinite(s.auc["deletion_auc"]).all()
    per_item = np.zeros((12, 16, 16), dtype=np.float32)
    per_item[:, :8, :8] = 1  # one mask per item, at twice the resolution
    assert summarize(run, masks=per_item).class_share[1] == pytest.approx(1.0)
    by_id = {str(i): per_item[i] for i in range(12)}
    np.testing.assert_allclose(summarize(run, masks=by_id).share, s.share)
    with pytest.raises(ExplanationError, match="masks"):
        summarize(run, masks=np.zeros((2, 3, 4, 5)))


def test_report_is_standalone_and_escaped(run, tmp_path):
    mask = np.zeros((8, 8))
    mask[:4, :4] = 1
    path = dataset_report(run, tmp_path / "r.html", masks=mask, title="audit <script>")
    text = path.read_text()
    assert "<script>" not in text and "audit &lt;script&gt;" in text
    assert "&lt;b&gt;zero&lt;/b&gt;" in text and "<b>zero</b>" not in text
    assert text.count("data:image/png;base64,") >= 5
    assert "Items most inside the mask" in text and "Faithfulness" in text
    assert "src='http" not in text and 'src="http' not in text
    default = dataset_report(run)
    assert default == run / "report.html" and default.is_file()
