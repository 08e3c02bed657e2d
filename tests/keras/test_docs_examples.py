"""The docs' Keras blocks (``.. runs-with: keras``) run on this process's backend.

The PyTorch process runs every other Python block (``tests/test_docs_examples.py``);
this one binds ``keras_model`` (a functional CNN with a layer named ``conv2``), ``x``
(channels-last), ``img`` and ``i``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import eli5
import numpy as np
import pytest
from PIL import Image

import eli5_nn
from tests.rst_blocks import DOC_FILES, ROOT, python_blocks

from .conftest import SIZE, keras_cnn

KERAS_FILES = [p for p in DOC_FILES
               if any(s == "keras" and not b.not_run for b, s in python_blocks(p))]


@pytest.mark.parametrize("path", KERAS_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_keras_blocks_run(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    x = np.random.default_rng(0).random((1, SIZE, SIZE, 3)).astype("float32")
    names: dict[str, Any] = {
        "eli5": eli5, "eli5_nn": eli5_nn, "keras_model": keras_cnn(), "model": keras_cnn(),
        "x": x, "i": 3, "img": Image.fromarray((x[0] * 255).astype(np.uint8)),
    }
    for block, setting in python_blocks(path):
        if setting == "keras" and not block.not_run:
            try:
                exec(block.compiled(), names)  # noqa: S102  (the docs' own examples)
            except Exception as e:
                raise AssertionError(f"the example at {block.name} fails: {e!r}") from e
