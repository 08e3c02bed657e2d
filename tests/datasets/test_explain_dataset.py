"""explain_dataset on PyTorch: equal to explain_predictions, resumable to identical files,
bad items recorded in the errors table, every kind of data source."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import eli5_nn
from eli5_nn.datasets import as_array, explain_dataset, read_errors, read_items, read_manifest
from eli5_nn.errors import ExplanationError
from tests.models import ResNetish, randomize_bn

pytest.importorskip("pyarrow")
ROOT = Path(__file__).resolve().parents[2]
N = 23


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return randomize_bn(ResNetish(n_classes=4, width=4, channels=1)).eval()


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(N, 1, 12, 12)).astype(np.float32)


def _reduced(a: np.ndarray, heatmap: np.ndarray) -> np.ndarray:
    return a.sum(axis=0) if a.ndim == 3 else a


CASES = [
    ("grad-cam", {}),
    ("integrated-gradients", {"steps": 8}),
    ("smoothgrad", {"samples": 4, "random_state": 3}),
    ("gradient", {"top_targets": 2}),
    ("gradient-x-input", {"targets": [1, 3]}),
]


@pytest.mark.parametrize(("method", "args"), CASES, ids=[c[0] for c in CASES])
def test_equals_explain_predictions(model, x, tmp_path, method, args):
    run = explain_dataset(model, x, method=method, out=tmp_path, shard_size=10, chunk_size=4,
                          progress=False, full=True, **args)
    expected = eli5_nn.explain_predictions(model, x, method=method, progress=False, **args)
    table = read_items(tmp_path).to_pandas()
    assert run.n_items == N and run.n_errors == 0
    assert run.shards_written == ["items-000000000-000000010.parquet",
                                  "items-000000010-000000020.parquet",
                                  "items-000000020-000000023.parquet"]
    n_targets = len(expected[0].targets)
    assert len(table) == N * n_targets
    top = np.array([eli5_nn.explain_predictions(model, x[i:i + 1], progress=False)[0]
                    .targets[0].target for i in range(3)])
    for _, row in table.iterrows():
        t = expected[row["index"]].targets[row["target_rank"]]
        assert row["target"] == t.target and row["id"] == str(row["index"])
        np.testing.assert_allclose(row["score"], t.score, rtol=1e-5)
        np.testing.assert_allclose(row["proba"], t.proba, rtol=1e-5)
        a = as_array(row["attribution"], row["attribution_shape"])
        np.testing.assert_allclose(a, t.attribution, rtol=1e-5, atol=1e-7)
        if method != "grad-cam":
            np.testing.assert_allclose(as_array(row["heatmap"], row["heatmap_shape"]),
                                       t.heatmap, rtol=1e-5, atol=1e-7)
    assert (table[table["index"] < 3].groupby("index")["predicted"].first().to_numpy()
            == top).all()


def test_reduced_attribution_and_cam_heatmap_at_layer_resolution(model, x, tmp_path):
    explain_dataset(model, x[:4], method="grad-cam", out=tmp_path / "cam", progress=False)
    explain_dataset(model, x[:4], method="integrated-gradients", steps=4,
                    out=tmp_path / "ig", progress=False)
    cam = read_items(tmp_path / "cam").to_pandas()
    ig = read_items(tmp_path / "ig").to_pandas()
    expected = eli5_nn.explain_predictions(model, x[:4], method="integrated-gradients",
                                           steps=4, progress=False)
    for _, row in ig.iterrows():
        t = expected[row["index"]].targets[0]
        assert list(row["attribution_shape"]) == [12, 12]
        np.testing.assert_allclose(as_array(row["attribution"], [12, 12]),
                                   t.attribution.sum(axis=0), rtol=1e-5, atol=1e-6)
    expected = eli5_nn.explain_predictions(model, x[:4], progress=False)
    for _, row in cam.iterrows():
        t = expected[row["index"]].targets[0]
        signed = t.attribution.sum(axis=0)
        assert list(row["heatmap_shape"]) == list(signed.shape)  # the layer's map
        np.testing.assert_allclose(as_array(row["attribution"], signed.shape), signed,
                                   rtol=1e-5, atol=1e-7)
        heat = as_array(row["heatmap"], signed.shape)
        assert heat.min() >= 0 and heat.max() <= 1
        pos = np.clip(signed, 0, None)
        np.testing.assert_allclose(heat, pos / pos.max() if pos.max() > 0 else pos, rtol=1e-5)


_KILLED_RUN = """
import os, signal, sys


class NoKeras:  # a quicker start: this run needs neither Keras nor TensorFlow
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("keras", "tensorflow", "jax"):
            raise ImportError(name)


sys.meta_path.insert(0, NoKeras())
import numpy as np, torch
sys.path.insert(0, {root!r})
from tests.models import ResNetish, randomize_bn
from eli5_nn.datasets import explain_dataset
torch.manual_seed(0)
model = randomize_bn(ResNetish(n_classes=4, width=4, channels=1)).eval()
x = np.random.default_rng(0).normal(size=({n}, 1, 12, 12)).astype(np.float32)
kill_at = int(sys.argv[2])

def batches():
    for i in range(0, {n}, 5):
        if kill_at and i >= kill_at:
            os.kill(os.getpid(), signal.SIGKILL)  # dies mid-shard, without any clean-up
        yield x[i:i + 5], np.arange(i, min(i + 5, {n})) % 4

explain_dataset(model, batches(), method="smoothgrad", samples=3, out=sys.argv[1],
                shard_size=10, chunk_size=4, progress=False, random_state={seed})
"""


def _script(tmp_path: Path, seed: str) -> Path:
    p = tmp_path / f"run_{seed}.py"
    p.write_text(textwrap.dedent(_KILLED_RUN.format(root=str(ROOT), n=N, seed=seed)))
    return p


def _run(script: Path, out: Path, kill_at: int) -> int:
    return subprocess.run([sys.executable, str(script), str(out), str(kill_at)],
                          capture_output=True, check=False, timeout=300).returncode


def test_killed_run_resumes_to_identical_files(model, x, tmp_path):
    out = tmp_path / "resumed"
    script = _script(tmp_path, "None")
    assert _run(script, out, kill_at=15) == -9  # killed in the middle of items 10..20
    assert sorted(p.name for p in out.glob("items-*")) == ["items-000000000-000000010.parquet"]
    seed = read_manifest(out)["settings"]["seed"]
    assert read_manifest(out)["settings"]["seed_drawn"]
    assert _run(script, out, kill_at=0) == 0  # resumed: the drawn seed is reused
    assert not list(out.glob(".*"))  # no partial file left
    reference = tmp_path / "reference"  # the same run, uninterrupted, in this process
    batches = ((x[i:i + 5], np.arange(i, min(i + 5, N)) % 4) for i in range(0, N, 5))
    explain_dataset(model, batches, method="smoothgrad", samples=3, out=reference,
                    shard_size=10, chunk_size=4, progress=False, random_state=seed)
    names = sorted(p.name for p in reference.glob("*.parquet"))
    assert names == sorted(p.name for p in out.glob("*.parquet"))
    assert len(names) == 3
    for name in names:
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name


def test_rerun_skips_finished_shards(model, x, tmp_path):
    first = explain_dataset(model, x, out=tmp_path, shard_size=10, progress=False)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    (tmp_path / first.shards_written[1]).unlink()
    again = explain_dataset(model, x, out=tmp_path, shard_size=10, progress=False)
    assert again.shards_written == [first.shards_written[1]]
    assert len(again.shards_skipped) == 2
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_other_settings_in_the_folder_are_refused(model, x, tmp_path):
    explain_dataset(model, x[:4], out=tmp_path, progress=False)
    with pytest.raises(ExplanationError, match="other settings"):
        explain_dataset(model, x[:4], method="gradient", out=tmp_path, progress=False)


def test_bad_items_go_to_the_errors_table(model, x, tmp_path):
    bad = x.copy()
    bad[2, 0, 3, 3] = np.nan
    wrong = np.zeros((1, 10, 10), dtype=np.float32)
    batches = [(bad[:4], np.arange(4) % 4), ([bad[4], wrong, bad[5]], np.array([0, 1, 2]))]
    run = explain_dataset(model, batches, out=tmp_path, chunk_size=3, progress=False)
    errors = read_errors(tmp_path).to_pandas()
    assert run.n_items == 7 and run.n_errors == 2
    assert errors["index"].tolist() == [2, 5]
    assert "NaN" in errors["reason"][0]
    assert "wrong shape (1, 10, 10)" in errors["reason"][1]
    items = read_items(tmp_path, columns=["index", "label"]).to_pandas()
    assert items["index"].tolist() == [0, 1, 3, 4, 6]
    assert items["label"].tolist() == [0, 1, 3, 0, 2]


def test_folder_of_images_with_an_unreadable_file(model, tmp_path):
    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        (tmp_path / "data" / cls).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (14, 14), dtype=np.uint8)).save(
                tmp_path / "data" / cls / f"{i}.png")
    (tmp_path / "data" / "dog" / "1.png").write_bytes(b"not a png")
    run = explain_dataset(model, tmp_path / "data", out=tmp_path / "out", image_size=(12, 12),
                          channels=1, progress=False)
    errors = run.errors().to_pandas()
    assert errors["id"].tolist() == ["dog/1.png"] and errors["stage"][0] == "load"
    assert "unreadable image file" in errors["reason"][0]
    items = run.items(columns=["id", "label"]).to_pandas()
    assert items["id"].tolist() == ["cat/0.png", "cat/1.png", "cat/2.png", "dog/0.png",
                                    "dog/2.png"]
    assert items["label"].tolist() == [0, 0, 0, 1, 1]
    assert run.manifest["class_names"] == ["cat", "dog"]
    pic = np.asarray(Image.open(tmp_path / "data" / "cat" / "0.png").resize((12, 12),
                     Image.Resampling.BILINEAR), dtype=np.float32)[None, None] / 255
    expected = eli5_nn.explain_predictions(model, pic, progress=False)[0].targets[0]
    first = run.items().to_pandas().iloc[0]
    assert first["score"] == pytest.approx(expected.score, rel=1e-5)


def test_torch_dataloader_and_memmap(model, x, tmp_path):
    ds = torch.utils.data.TensorDataset(torch.as_tensor(x), torch.arange(N) % 4)
    loader = torch.utils.data.DataLoader(ds, batch_size=6)
    a = explain_dataset(model, loader, out=tmp_path / "loader", method="gradient",
                        shard_size=8, progress=False)
    path = tmp_path / "x.npy"
    np.save(path, x)
    mm = np.load(path, mmap_mode="r")
    b = explain_dataset(model, mm, labels=np.arange(N) % 4, out=tmp_path / "memmap",
                        method="gradient", shard_size=8, progress=False)
    ta, tb = a.items().to_pandas(), b.items().to_pandas()
    assert a.n_items == b.n_items == N
    np.testing.assert_array_equal(np.stack(ta["attribution"]), np.stack(tb["attribution"]))
    assert ta["label"].tolist() == tb["label"].tolist() == list(np.arange(N) % 4)
    assert a.manifest["source"]["kind"] == "iterable"
    assert b.manifest["source"]["kind"] == "memmap"


def test_manifest_records_the_settings(model, x, tmp_path):
    run = explain_dataset(model, x[:3], method="smoothgrad", samples=2, out=tmp_path,
                          target_names=["a", "b", "c", "d"], targets=["b"], progress=False)
    m = json.loads((tmp_path / "manifest.json").read_text())
    assert m == run.manifest
    assert m["settings"]["args"] == {"samples": 2, "targets": [1]}
    assert m["settings"]["seed_drawn"] and isinstance(m["settings"]["seed"], int)
    assert m["class_names"] == ["a", "b", "c", "d"]
    assert run.items(columns=["target"]).to_pandas()["target"].tolist() == [1, 1, 1]


class _TextCNN(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = torch.nn.Embedding(50, 8, padding_idx=0)
        self.conv = torch.nn.Conv1d(8, 6, 3, padding=1)
        self.fc = torch.nn.Linear(6, 2)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(self.emb(ids).transpose(1, 2))).mean(-1))


@pytest.mark.parametrize("method", ["integrated-gradients", "grad-cam"])
def test_text_items_keep_one_value_per_token(tmp_path, method):
    torch.manual_seed(0)
    model = _TextCNN().eval()
    ids = np.random.default_rng(0).integers(1, 50, (4, 10))
    ids[1, 6:] = 0  # padding: left out of the heatmap, as explain_predictions does
    run = explain_dataset(model, ids, method=method, out=tmp_path, progress=False)
    expected = eli5_nn.explain_predictions(model, ids, method=method, progress=False)
    table = run.items().to_pandas()
    assert [list(s) for s in table["heatmap_shape"]] == [[10], [6], [10], [10]]
    for _, row in table.iterrows():
        t = expected[row["index"]].targets[0]
        np.testing.assert_allclose(as_array(row["heatmap"], row["heatmap_shape"]), t.heatmap,
                                   rtol=1e-5, atol=1e-7)
        assert list(row["attribution_shape"]) == [10]  # one signed value per position


def test_a_tensor_of_items_reads_like_an_array(model, x, tmp_path):
    run = explain_dataset(model, torch.as_tensor(x[:5]), labels=[0, 1, 2, 3, 0],
                          method="gradient", out=tmp_path, progress=False)
    assert run.manifest["source"]["kind"] == "array"
    assert run.items(["label"]).to_pandas()["label"].tolist() == [0, 1, 2, 3, 0]
