"""``eli5-nn explain`` on Keras ``.keras`` files (safe mode), images and text."""

from __future__ import annotations

import keras
import numpy as np
from PIL import Image

from eli5_nn.cli import main

from .conftest import keras_cnn


def test_keras_image_and_text_files(tmp_path, capsys):
    keras_cnn("functional").save(tmp_path / "cnn.keras")
    Image.fromarray((np.random.default_rng(0).random((30, 20, 3)) * 255).astype("uint8")).save(
        tmp_path / "a.png")
    out = tmp_path / "r.html"
    assert main(["explain", str(tmp_path / "cnn.keras"), str(tmp_path / "a.png"),
                 "--out", str(out)]) == 0
    assert out.read_text().count("data:image/png;base64,") >= 2

    inp = keras.Input((6,), dtype="int64")
    h = keras.layers.Embedding(20, 4)(inp)
    h = keras.layers.GlobalAveragePooling1D()(keras.layers.Conv1D(3, 2)(h))
    keras.Model(inp, keras.layers.Dense(2)(h)).save(tmp_path / "text.keras")
    words = ["<pad>", "<unk>"] + [f"w{i}" for i in range(18)]
    (tmp_path / "vocab.txt").write_text("\n".join(words))
    (tmp_path / "r.txt").write_text("w3 w4 <i>w5</i>")
    out = tmp_path / "t.html"
    assert main(["explain", str(tmp_path / "text.keras"), str(tmp_path / "r.txt"), "--vocab",
                 str(tmp_path / "vocab.txt"), "--method", "integrated-gradients",
                 "--out", str(out)]) == 0
    assert "w4" in out.read_text()

    (tmp_path / "broken.keras").write_text("not a zip")
    code = main(["explain", str(tmp_path / "broken.keras"), str(tmp_path / "a.png")])
    err = capsys.readouterr().err
    assert code == 2 and "could not load the Keras model" in err and "Traceback" not in err
