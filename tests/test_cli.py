"""``eli5-nn explain``: saved PyTorch models (TorchScript, torch.export) on image and
text files; user errors give a message and exit status 2, never a traceback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from eli5_nn.cli import main
from tests import models
from tests.text.models import TextCNN


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("cli")
    torch.manual_seed(0)
    cnn = models.plain_cnn(n_classes=5).eval()
    torch.jit.save(torch.jit.script(cnn), d / "cnn.ts")
    torch.export.save(torch.export.export(cnn, (torch.rand(1, 3, 32, 32),)), d / "cnn.pt2")
    torch.save(cnn, d / "pickled.pt")
    text = TextCNN().eval()
    batch = torch.export.Dim("batch", min=1, max=4096)
    torch.export.save(
        torch.export.export(text, (torch.zeros(2, 6, dtype=torch.long),),
                            dynamic_shapes={"ids": {0: batch}}),
        d / "text.pt2",
    )
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.jpg"):
        Image.fromarray((rng.random((40, 50, 3)) * 255).astype("uint8")).save(d / name)
    (d / "vocab.txt").write_text("\n".join(["<pad>", "<unk>"] + [f"w{i}" for i in range(48)]))
    (d / "review.txt").write_text("w1 w2 zzz w5")
    (d / "names.txt").write_text("\n".join(["zero", "<b>one</b>", "two", "three", "four"]))
    (d / "not_an_image.png").write_text("hello")
    return {p.name: p for p in d.iterdir()}


def _run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_torchscript_image_report(files, tmp_path, capsys):
    out = tmp_path / "r.html"
    code, stdout, _ = _run(capsys, "explain", files["cnn.ts"], files["a.png"], files["b.jpg"],
                           "--size", 32, 32, "--method", "integrated-gradients", "--targets",
                           1, 2, "--target-names", files["names.txt"], "--out", out)
    assert code == 0 and str(out) in stdout
    html = out.read_text()
    assert html.count("data:image/png;base64,") >= 4  # 2 images × 2 targets at least
    assert "<b>one</b>" not in html and "&lt;b&gt;one&lt;/b&gt;" in html


def test_export_archive_grad_cam_overlay_png(files, tmp_path, capsys):
    out = tmp_path / "o.png"
    code, _, _ = _run(capsys, "explain", files["cnn.pt2"], files["a.png"], "--size", 32, 32,
                      "--mean", 0.5, "--std", 0.25, "--out", out)
    assert code == 0
    with Image.open(out) as im:
        assert im.width > 32 and np.asarray(im.convert("L")).std() > 0


def test_text_with_a_vocabulary(files, tmp_path, capsys):
    out = tmp_path / "t.html"
    code, _, _ = _run(capsys, "explain", files["text.pt2"], files["review.txt"], "--vocab",
                      files["vocab.txt"], "--method", "occlusion", "--length", 6, "--out", out)
    assert code == 0
    html = out.read_text()
    assert "w1" in html and "&lt;unk&gt;" in html


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.ts", "a.png"], "does not exist"),
        (["pickled.pt", "a.png"], "pickled model"),
        (["cnn.ts", "missing.png"], "does not exist"),
        (["cnn.ts", "not_an_image.png", "--size", "32", "32"], "not an image"),
        (["cnn.ts", "a.png", "--size", "32", "32"], "TorchScript model"),  # grad-cam
        (["cnn.pt2", "a.png", "--size", "7", "7"], "could not run"),
        (["cnn.ts", "a.png", "--size", "32", "32", "--method", "nope"], "unknown method"),
        (["cnn.ts", "a.png", "--size", "32", "32", "--method", "gradient", "--targets", "9"],
         "out of range"),
        (["cnn.ts", "a.png", "--out", "x.gif"], "must end in .html or .png"),
    ],
)
def test_user_errors_exit_2_without_traceback(files, tmp_path, capsys, args, message):
    args = [str(files.get(a, a)) if i < 2 else a for i, a in enumerate(args)]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "r.html")]
    code, _, err = _run(capsys, "explain", *args)
    assert code == 2
    assert message in err and "Traceback" not in err
