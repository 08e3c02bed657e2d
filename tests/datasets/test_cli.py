"""The explain-dataset and dataset-report subcommands (added to a parser as eli5_nn.cli does)."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch

from eli5_nn.datasets import read_errors, read_items
from eli5_nn.datasets.cli import add_subcommands
from eli5_nn.loaders import load_model
from tests.models import ResNetish, randomize_bn

pytest.importorskip("pyarrow")


def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="eli5-nn")
    add_subcommands(parser.add_subparsers(dest="command", required=True), load_model)
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_explain_dataset_and_report_commands(tmp_path, capsys):
    torch.manual_seed(0)
    model = randomize_bn(ResNetish(n_classes=3, width=4, channels=1)).eval()
    torch.jit.save(torch.jit.script(model), tmp_path / "model.pt")
    x = np.random.default_rng(0).normal(size=(7, 1, 10, 10)).astype(np.float32)
    x[4] = np.inf
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", np.arange(7) % 3)
    np.save(tmp_path / "mask.npy", np.ones((10, 10)))
    out = tmp_path / "out"
    argv = ["explain-dataset", str(tmp_path / "model.pt"), str(tmp_path / "x.npy"),
            "--method", "integrated-gradients", "--steps", "4", "--out", str(out),
            "--labels", str(tmp_path / "y.npy"), "--shard-size", "4", "--no-progress"]
    assert _main(argv) == 0
    assert "7 items explained, 1 errors" in capsys.readouterr().out
    assert read_items(out, ["index"]).num_rows == 6
    assert read_errors(out).to_pylist()[0]["index"] == 4
    assert _main(argv) == 0  # a rerun skips the finished shards
    assert "2 finished shards skipped" in capsys.readouterr().out
    assert _main(["dataset-report", str(out), "--mask", str(tmp_path / "mask.npy")]) == 0
    assert (out / "report.html").is_file()


def test_user_errors_exit_2(tmp_path, capsys):
    assert _main(["dataset-report", str(tmp_path)]) == 2
    assert "manifest.json" in capsys.readouterr().err
    (tmp_path / "m.pt").write_bytes(b"x")
    assert _main(["explain-dataset", str(tmp_path / "m.pt"), str(tmp_path / "nothing.txt"),
                  "--out", str(tmp_path / "o")]) == 2



def test_user_errors_reach_the_terminal_through_eli5_nn_cli(tmp_path):
    """The eli5-nn command holds framework noise back, but not the subcommands' own errors."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "eli5_nn", "dataset-report", str(tmp_path)],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 2
    assert "eli5-nn dataset-report: error:" in out.stderr and "manifest.json" in out.stderr
