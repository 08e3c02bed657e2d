"""The writer, the manifest, the summaries and the report import no framework; nor does
importing eli5_nn.datasets (Ray, torch and TensorFlow are imported by the engines only
when they run)."""

from __future__ import annotations

import pytest

from tests.test_neutral import run_without_frameworks

pytest.importorskip("pyarrow")


def test_dataset_modules_import_without_any_framework_or_ray():
    out = run_without_frameworks(
        "import eli5_nn.datasets, eli5_nn.datasets.store, eli5_nn.datasets.summaries\n"
        "import eli5_nn.datasets.report, eli5_nn.datasets.cli, eli5_nn.datasets.ray_engine\n"
        "assert 'ray' not in sys.modules\n"
        "import numpy as np, tempfile, pathlib\n"
        "from eli5_nn.datasets import store\n"
        "d = pathlib.Path(tempfile.mkdtemp())\n"
        "w = store.ShardWriter(d, 0, False)\n"
        "w.write({'index': [0], 'id': ['a'], 'attribution': [np.ones((2, 2))],\n"
        "         'heatmap': [np.ones((2, 2))]})\n"
        "print(w.finish(1))\n"
    )
    assert out.returncode == 0, out.stderr
    assert "items-000000000-000000001.parquet" in out.stdout
