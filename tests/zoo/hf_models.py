"""Hugging Face ``transformers`` classifiers from tiny configs: random weights, no downloads.

Each builder returns ``(model, inputs)``: the model in eval mode and a dict of
inputs for one doc (``pixel_values`` for images, ``input_ids`` /
``attention_mask`` for text), on the test device.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

transformers = __import__("pytest").importorskip("transformers")

#: image side and patch size of the vision transformers (a 4×4 patch grid for ViT/DeiT);
#: the CNNs (stride 32) get CNN_IMAGE for a 2×2 map at their last stage
IMAGE, PATCH, N_LABELS, CNN_IMAGE = 32, 8, 5, 64
VOCAB, LENGTH = 99, 9

_VIT = dict(
    image_size=IMAGE, patch_size=PATCH, num_channels=3, hidden_size=32, num_hidden_layers=2,
    num_attention_heads=2, intermediate_size=37, num_labels=N_LABELS,
)
_TEXT = dict(
    vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
    intermediate_size=37, max_position_embeddings=64, num_labels=3,
)


def _image(size: int = IMAGE) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return {"pixel_values": torch.rand(1, 3, size, size, generator=g) * 2 - 1}


def _text(pad_id: int, bos: int | None = None, eos: int | None = None) -> dict[str, Any]:
    g = torch.Generator().manual_seed(2)
    ids = torch.randint(5, VOCAB, (1, LENGTH), generator=g)
    if bos is not None:
        ids[0, 0] = bos
    if eos is not None:
        ids[0, -1] = eos
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def vit() -> Any:
    return transformers.ViTForImageClassification(transformers.ViTConfig(**_VIT))


def deit() -> Any:
    return transformers.DeiTForImageClassification(transformers.DeiTConfig(**_VIT))


def swin() -> Any:
    cfg = transformers.SwinConfig(
        image_size=IMAGE, patch_size=2, num_channels=3, embed_dim=16, depths=[1, 1, 1],
        num_heads=[1, 2, 2], window_size=4, num_labels=N_LABELS,
    )
    return transformers.SwinForImageClassification(cfg)


def convnext() -> Any:
    cfg = transformers.ConvNextConfig(
        num_channels=3, hidden_sizes=[8, 16, 24, 32], depths=[1, 1, 1, 1], num_labels=N_LABELS,
        image_size=CNN_IMAGE,
    )
    return transformers.ConvNextForImageClassification(cfg)


def resnet() -> Any:
    cfg = transformers.ResNetConfig(
        num_channels=3, embedding_size=8, hidden_sizes=[8, 16, 24, 32], depths=[1, 1, 1, 1],
        layer_type="basic", num_labels=N_LABELS,
    )
    return transformers.ResNetForImageClassification(cfg)


def bert() -> Any:
    return transformers.BertForSequenceClassification(transformers.BertConfig(**_TEXT))


def roberta() -> Any:
    cfg = transformers.RobertaConfig(**_TEXT, pad_token_id=1, bos_token_id=0, eos_token_id=2)
    return transformers.RobertaForSequenceClassification(cfg)


def distilbert() -> Any:
    cfg = transformers.DistilBertConfig(
        vocab_size=VOCAB, dim=32, n_layers=2, n_heads=2, hidden_dim=37,
        max_position_embeddings=64, num_labels=3,
    )
    return transformers.DistilBertForSequenceClassification(cfg)


#: name -> (builder, inputs)
BUILDERS: dict[str, tuple[Callable[[], Any], Callable[[], dict[str, Any]]]] = {
    "vit": (vit, _image),
    "deit": (deit, _image),
    "swin": (swin, _image),
    "convnext": (convnext, lambda: _image(CNN_IMAGE)),
    "resnet": (resnet, lambda: _image(CNN_IMAGE)),
    "bert": (bert, lambda: _text(0, 2, 3)),
    "roberta": (roberta, lambda: _text(1, 0, 2)),
    "distilbert": (distilbert, lambda: _text(0, 2, 3)),
}


def build(name: str, device: str = "cpu", seed: int = 0) -> tuple[Any, dict[str, Any]]:
    """``(model, inputs)`` of the named architecture, in eval mode, on ``device``."""
    make, inputs = BUILDERS[name]
    torch.manual_seed(seed)
    model = make().eval().to(device)
    return model, {k: v.to(device) for k, v in inputs().items()}
