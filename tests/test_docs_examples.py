"""Every Python code block of README.rst and docs/**/*.rst runs, so the examples cannot rot.

The blocks of one file run in order in one namespace (a later block may use what an earlier
one made), with small stand-ins bound to the names the blocks use: ``model`` (a CNN over
8×8 grey images, 10 classes), ``x``, ``xs``, ``class_names``, ``text_model``, ``ids``,
``tokens``, ``mask``, ``masks`` ... (:func:`torch_names`). ``.. runs-with: <setting>`` above a
block binds other stand-ins for it (:data:`SETTINGS`); Hugging Face models come from tiny
configs, and ``from_pretrained`` is patched to build them (nothing is downloaded).
``.. not-run: <reason>`` marks a block that cannot run here; the count of such blocks is
fixed below, so a new one is a conscious decision. Keras blocks run in
``tests/keras/test_docs_examples.py``, once per backend. How blocks are found:
:mod:`tests.rst_blocks`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import eli5
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

import eli5_nn
from tests.rst_blocks import (
    DOC_FILES,
    ROOT,
    Block,
    code_blocks,
    python_blocks,
    python_in_literal_blocks,
)

#: blocks marked ``.. not-run:`` (with their reasons) and Keras blocks, across all files
NOT_RUN = 2
KERAS_BLOCKS = 1

VOCAB = ["<pad>", "a", "gripping", "well", "acted", "film", "great", "awful", "plot", "the"]


class TextCNN(nn.Module):
    """ids (N, T) → Embedding → Conv1d → ReLU → max over time → Linear (2 classes)."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(len(VOCAB), 8, padding_idx=0)
        self.conv = nn.Conv1d(8, 6, 3, padding=1)
        self.fc = nn.Linear(6, 2)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.conv(self.embedding(ids).transpose(1, 2)))
        return self.fc(torch.amax(h, dim=2))


def image_cnn(channels: int = 1, stride: int = 1) -> nn.Module:
    """conv → ReLU → conv → ReLU → global average pool → linear, 10 classes."""
    return nn.Sequential(
        nn.Conv2d(channels, 4, 3 if stride == 1 else stride, stride, int(stride == 1)),
        nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.Linear(6, 10),
    )


@pytest.fixture(scope="module")
def torch_names() -> dict[str, Any]:
    """The default stand-ins, built once for the module."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    model, text_model = image_cnn().eval(), TextCNN().eval()
    x = torch.rand(1, 1, 8, 8, generator=g)
    mask = torch.zeros_like(x)
    mask[..., :4, :4] = 1
    masks = torch.zeros(3, 1, 8, 8)
    for m, (r, c) in enumerate([(0, 0), (4, 0), (0, 4)]):
        masks[m, :, r:r + 4, c:c + 4] = 1
    ids = torch.tensor([[9, 1, 6, 8, 7, 5, 0, 0]])
    return {
        "eli5": eli5, "eli5_nn": eli5_nn,
        "model": model, "torch_cnn": model, "x": x, "mask": mask, "masks": masks,
        "xs": torch.rand(3, 1, 8, 8, generator=g), "y": torch.tensor([3]), "lam": 0.1,
        "class_names": [f"digit {i}" for i in range(10)],
        "img": Image.fromarray((x[0, 0].numpy() * 255).astype(np.uint8)),
        "text_model": text_model, "torch_text_model": text_model, "ids": ids,
        "tokens": [VOCAB[int(i)] for i in ids[0]],
    }


def images_224_names() -> dict[str, Any]:
    """A CNN over 3×224×224 images and a test set of three (the datasets page)."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(2)
    x_test = torch.rand(3, 3, 224, 224, generator=g).numpy()
    return {"model": image_cnn(3, stride=8).eval(), "x_test": x_test, "y_test": np.array([0, 3, 7])}


def vit_names() -> dict[str, Any]:
    """A timm-style ViT over 224×224 images (12 blocks, 14×14 patch grid), kept tiny."""
    from tests.zoo.timm_like import VisionTransformer

    torch.manual_seed(0)
    model = VisionTransformer(img_size=224, patch_size=16, embed_dim=16, depth=12, num_heads=2)
    return {"model": model.eval(), "x": torch.rand(1, 3, 224, 224)}


def _tiny_tokenizer() -> Any:
    transformers = pytest.importorskip("transformers")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *VOCAB[1:], ","]
    return transformers.BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)})


def _tiny_text_classifier() -> Any:
    transformers = pytest.importorskip("transformers")
    cfg = transformers.DistilBertConfig(vocab_size=16, dim=16, n_layers=2, n_heads=2,
                                        hidden_dim=24, max_position_embeddings=32, num_labels=2)
    torch.manual_seed(0)
    return transformers.DistilBertForSequenceClassification(cfg).eval()


def _tiny_vit() -> Any:
    transformers = pytest.importorskip("transformers")
    cfg = transformers.ViTConfig(image_size=224, patch_size=16, hidden_size=16,
                                 num_hidden_layers=2, num_attention_heads=2,
                                 intermediate_size=24, num_labels=10)
    torch.manual_seed(0)
    return transformers.ViTForImageClassification(cfg).eval()


def _tiny_image_processor() -> Any:
    transformers = pytest.importorskip("transformers")
    processor = getattr(transformers, "ViTImageProcessorPil", transformers.ViTImageProcessor)
    return processor(size={"height": 224, "width": 224})  # the PIL one needs no torchvision


def hf_text_names() -> dict[str, Any]:
    return {"model": _tiny_text_classifier(), "tokenizer": _tiny_tokenizer()}


def hf_vit_names() -> dict[str, Any]:
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 50, 3), np.uint8))
    return {"img": img}


#: what ``from_pretrained`` builds instead of downloading, per transformers class name
PRETRAINED: dict[str, Callable[[], Any]] = {
    "AutoTokenizer": _tiny_tokenizer,
    "AutoModelForSequenceClassification": _tiny_text_classifier,
    "AutoImageProcessor": _tiny_image_processor,
    "ViTForImageClassification": _tiny_vit,
    "AutoModelForImageClassification": _tiny_vit,
}
SETTINGS: dict[str, Callable[[], dict[str, Any]]] = {
    "images-224": images_224_names, "vit": vit_names, "hf-text": hf_text_names,
    "hf-vit": hf_vit_names,
}


@contextlib.contextmanager
def no_downloads(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``from_pretrained`` of the classes the docs use builds a tiny model instead."""
    transformers = pytest.importorskip("transformers")
    for name, make in PRETRAINED.items():
        monkeypatch.setattr(getattr(transformers, name), "from_pretrained",
                            staticmethod(lambda *a, _make=make, **k: _make()))
    yield


def python_files() -> list[Path]:
    return [p for p in DOC_FILES if python_blocks(p)]


def run_block(block: Block, names: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Run one block in ``names`` (its stand-ins already bound)."""
    uses_transformers = "transformers" in block.code or "tokenizer" in block.code
    with no_downloads(monkeypatch) if uses_transformers else contextlib.nullcontext():
        try:
            exec(block.compiled(), names)  # noqa: S102  (the docs' own examples)
        except Exception as e:
            raise AssertionError(f"the example at {block.name} fails: {e!r}") from e


@pytest.mark.parametrize("path", python_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_python_blocks_run(path: Path, torch_names: dict[str, Any], tmp_path: Path,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # blocks that save files write here
    names, bound, ran = dict(torch_names), "torch", 0
    for block, setting in python_blocks(path):
        if block.not_run or setting == "keras":
            continue
        if setting != bound:
            bound = setting
            names.update(torch_names if setting == "torch" else SETTINGS[setting]())
        run_block(block, names, monkeypatch)
        ran += 1
    if ran == 0:
        pytest.skip("every Python block of this file is marked not-run or runs with Keras")


def test_blocks_not_run_are_counted_and_give_reasons() -> None:
    settings = {b: s for p in DOC_FILES for b, s in python_blocks(p)}
    blocks = list(settings)
    not_run = [b for b in blocks if b.not_run]
    keras = [b for b in blocks if settings[b] == "keras" and not b.not_run]
    for b in not_run:
        print(f"not run: {b.name}: {b.not_run}")
    for b in keras:
        print(f"runs in tests/keras/test_docs_examples.py: {b.name}")
    print(f"{len(blocks) - len(not_run) - len(keras)} Python blocks run here, "
          f"{len(keras)} in the Keras suite, {len(not_run)} not run")
    assert len(not_run) == NOT_RUN, "a block newly marked not-run: update NOT_RUN on purpose"
    assert len(keras) == KERAS_BLOCKS
    known = {"torch", "keras", *SETTINGS}
    unknown = {b.name: b.runs_with for b in blocks if b.runs_with not in {None, *known}}
    assert all(b.line > 0 and b.code.strip() for p in DOC_FILES for b in code_blocks(p))
    assert not unknown, f"unknown '.. runs-with:' settings {unknown}; known: {sorted(known)}"


def test_python_is_marked_as_python() -> None:
    bad = {str(p.relative_to(ROOT)): lines for p in DOC_FILES
           if (lines := python_in_literal_blocks(p))}
    assert not bad, f"Python in '::' literal blocks (mark it '.. code-block:: python'): {bad}"
