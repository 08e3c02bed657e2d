"""``eli5-nn explain``: saved PyTorch models (TorchScript, torch.export) on image and
text files. The input size comes from the model where it states it, the default
method works for the model's format and is named on the first line; user errors
give one line with the fix and exit status 2; nothing but the command's own lines
reaches the terminal."""

from __future__ import annotations

import re
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
    torch.jit.save(torch.jit.trace(cnn, torch.rand(1, 3, 32, 32)), d / "traced.ts")
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


def _run(capfd: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capfd.readouterr()
    return code, out, err


def test_torchscript_image_report(files, tmp_path, capfd):
    out = tmp_path / "r.html"
    code, stdout, err = _run(capfd, "explain", files["cnn.ts"], files["a.png"], files["b.jpg"],
                             "--size", 32, 32, "--method", "integrated-gradients", "--targets",
                             1, 2, "--target-names", files["names.txt"], "--out", out)
    assert code == 0 and str(out) in stdout, err
    assert err == ""  # no framework warnings or log lines
    html = out.read_text()
    assert html.count("data:image/png;base64,") >= 4  # 2 images × 2 targets at least
    assert "<b>one</b>" not in html and "&lt;b&gt;one&lt;/b&gt;" in html
    # sections named after the input files, the model named by its file
    assert 'class="eli5-nn-section">a.png</h2>' in html and ">b.jpg</h2>" in html
    assert "cnn.ts" in html and "RecursiveScriptModule" not in html


def test_the_input_size_comes_from_the_model(files, tmp_path, capfd):
    """.pt2 input specs and traced TorchScript example inputs state 32×32: no --size."""
    for model, method in (("cnn.pt2", "Grad-CAM"), ("traced.ts", "Integrated Gradients")):
        out = tmp_path / f"{model}.html"
        code, stdout, err = _run(capfd, "explain", files[model], files["a.png"], "--out", out)
        assert code == 0, err
        first = stdout.splitlines()[0]
        assert method in first and "default" in first  # the method, on the first line
        assert err == ""  # no torch FutureWarning, no log lines


def test_export_archive_grad_cam_overlay_png(files, tmp_path, capfd):
    out = tmp_path / "o.png"
    code, _, err = _run(capfd, "explain", files["cnn.pt2"], files["a.png"], "--mean", 0.5,
                        "--std", 0.25, "--out", out)
    assert code == 0, err
    with Image.open(out) as im:
        assert im.width > 32 and np.asarray(im.convert("L")).std() > 0


def test_text_with_a_vocabulary(files, tmp_path, capfd):
    out = tmp_path / "t.html"
    code, stdout, err = _run(capfd, "explain", files["text.pt2"], files["review.txt"], "--vocab",
                             files["vocab.txt"], "--out", out)  # length 6 from the archive
    assert code == 0, err
    assert "Occlusion" in stdout.splitlines()[0]
    html = out.read_text()
    assert "w1" in html and "&lt;unk&gt;" in html


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.ts", "a.png"], "does not exist"),
        (["pickled.pt", "a.png"], "pickled model"),
        (["cnn.ts", "missing.png"], "does not exist"),
        (["cnn.ts", "not_an_image.png", "--size", "32", "32"], "not an image"),
        (["cnn.ts", "a.png", "--size", "32", "32", "--method", "grad-cam"], "--method"),
        (["cnn.pt2", "a.png", "--size", "7", "7"], "--size"),
        (["cnn.pt2", "a.png", "--channels", "1"], "--channels"),
        (["cnn.ts", "a.png", "--channels", "1"], "--channels"),  # the model does not run
        (["cnn.ts", "a.png", "--size", "32", "32", "--method", "nope"], "unknown method"),
        (["cnn.ts", "a.png", "--size", "32", "32", "--method", "gradient", "--targets", "9"],
         "out of range"),
        (["cnn.ts", "a.png", "--out", "x.gif"], "must end in .html or .png"),
        (["cnn.pt2", "review.txt", "--vocab", "vocab.txt"], "--vocab"),
    ],
)
def test_user_errors_are_one_line_with_the_fix(files, tmp_path, capfd, args, message):
    args = [str(files.get(a, a)) for a in args]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "r.html")]
    code, _, err = _run(capfd, "explain", *args)
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("eli5-nn explain: error: ") and message in err
    assert "Traceback" not in err


def test_help_is_plain_text(capsys):
    for argv in (["--help"], ["explain", "--help"], ["demo", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        text = capsys.readouterr().out
        assert "usage: eli5-nn" in text
        assert not re.search(r"``|:func:|:class:|\.\. ", text), text
