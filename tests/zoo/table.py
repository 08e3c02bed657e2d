"""The model zoo: every tested architecture, its automatic CAM layer and the methods that apply.

One table for the PyTorch zoo (tests/zoo/test_zoo.py), the Keras zoo
(tests/keras/test_zoo.py, once per backend) and docs/zoo.rst, which a test
keeps in step with it. Framework-free: importing it imports no framework.

``layer`` is the automatic layer's name as ``named_modules()`` (PyTorch) or
``model.layers`` (Keras) spell it; ``a|b`` lists the names the same module has
in other library versions (``transformers`` 4 keeps blocks in
``encoder.layer``, 5 in ``layers``). ``input:NAME`` stands for the operation
whose output enters layer ``NAME`` (an operation Keras names automatically).
"""

from __future__ import annotations

from dataclasses import dataclass

IMAGE_METHODS = (
    "grad-cam", "grad-cam++", "gradient", "gradient-x-input", "smoothgrad",
    "integrated-gradients", "fullgrad",
)
TEXT_METHODS = (
    "grad-cam", "grad-cam++", "gradient", "gradient-x-input", "smoothgrad",
    "integrated-gradients", "occlusion",
)
TRANSFORMER = ("attention-rollout",)
TEXT_TRANSFORMER = ("attention", "attention-rollout")

#: why a layer is chosen (the rule of DESIGN.md §1, ``layer``)
POOLED = "enters the head's global pooling"
CLASS_TOKEN = "input of the last block's attention (the head reads the class token)"


@dataclass(frozen=True)
class ZooCase:
    """One architecture of the zoo."""

    name: str
    source: str
    model: str
    modality: str
    layer: str
    why: str
    layout: str
    methods: tuple[str, ...]


TORCH_ZOO = (
    ZooCase("hf-vit", "transformers", "ViTForImageClassification", "image",
            "vit.layers.1.layernorm_before|vit.encoder.layer.1.layernorm_before", CLASS_TOKEN,
            "tokens × hidden, class token dropped, 4×4 patch grid",
            IMAGE_METHODS + TRANSFORMER),
    ZooCase("hf-deit", "transformers", "DeiTForImageClassification", "image",
            "deit.layers.1.layernorm_before|deit.encoder.layer.1.layernorm_before", CLASS_TOKEN,
            "tokens × hidden, class and distillation tokens dropped, 4×4 patch grid",
            IMAGE_METHODS + TRANSFORMER),
    ZooCase("hf-swin", "transformers", "SwinForImageClassification", "image",
            "swin.layernorm", POOLED, "tokens × hidden on the last stage's 4×4 grid",
            tuple(m for m in IMAGE_METHODS if m != "fullgrad")),
    ZooCase("hf-convnext", "transformers", "ConvNextForImageClassification", "image",
            "convnext.encoder.stages.3", "enters the head's mean over height and width",
            "channels × height × width", IMAGE_METHODS),
    ZooCase("hf-resnet", "transformers", "ResNetForImageClassification", "image",
            "resnet.encoder.stages.3", POOLED, "channels × height × width", IMAGE_METHODS),
    ZooCase("hf-bert", "transformers", "BertForSequenceClassification", "text",
            "bert.encoder.layer.0", CLASS_TOKEN + "; post-norm: the previous block's output",
            "tokens × hidden", TEXT_METHODS + TEXT_TRANSFORMER),
    ZooCase("hf-roberta", "transformers", "RobertaForSequenceClassification", "text",
            "roberta.encoder.layer.0", CLASS_TOKEN + "; post-norm: the previous block's output",
            "tokens × hidden", TEXT_METHODS + TEXT_TRANSFORMER),
    ZooCase("hf-distilbert", "transformers", "DistilBertForSequenceClassification", "text",
            "distilbert.transformer.layer.0",
            CLASS_TOKEN + "; post-norm: the previous block's output", "tokens × hidden",
            TEXT_METHODS + TEXT_TRANSFORMER),
    ZooCase("timm-vit", "timm (look-alike)", "VisionTransformer", "image", "blocks.1.norm1",
            CLASS_TOKEN, "tokens × hidden, class token dropped, grid from patch_embed.grid_size",
            IMAGE_METHODS),
    ZooCase("timm-deit", "timm (look-alike)", "VisionTransformerDistilled", "image",
            "blocks.1.norm1", CLASS_TOKEN,
            "tokens × hidden, num_prefix_tokens = 2 dropped, grid from patch_embed.grid_size",
            IMAGE_METHODS),
    ZooCase("small-cnn", "torch", "Conv → ReLU → AdaptiveAvgPool2d(2) → Flatten → Linear",
            "image", "1", "enters the head's first parameter-free reduction (2×2 pooling)",
            "channels × height × width (8×8)", IMAGE_METHODS),
)

KERAS_ZOO = (
    ZooCase("MobileNetV2", "keras.applications", "MobileNetV2", "image", "out_relu", POOLED,
            "height × width × channels", IMAGE_METHODS),
    ZooCase("ResNet50", "keras.applications", "ResNet50", "image", "conv5_block3_out", POOLED,
            "height × width × channels", IMAGE_METHODS),
    ZooCase("EfficientNetB0", "keras.applications", "EfficientNetB0", "image",
            "top_activation", POOLED, "height × width × channels", IMAGE_METHODS),
    ZooCase("ConvNeXtTiny", "keras.applications", "ConvNeXtTiny", "image",
            "input:convnext_tiny_head_gap",
            POOLED + " (the last block's residual sum, not its residual branch)",
            "height × width × channels", IMAGE_METHODS),
)

ZOO = TORCH_ZOO + KERAS_ZOO


def layer_names(case: ZooCase) -> tuple[str, ...]:
    """The names the expected layer may have (one per library version)."""
    return tuple(case.layer.split("|"))


def rst_table() -> str:
    """The zoo as the ``list-table`` rows of docs/zoo.rst (a test keeps them equal)."""
    lines = []
    for c in ZOO:
        layer = " or ".join(f"``{n}``" for n in layer_names(c))
        if c.layer.startswith("input:"):
            layer = f"the operation entering ``{c.layer[len('input:'):]}``"
        lines += [
            f"   * - {c.name}",
            f"     - {c.source}: {c.model}",
            f"     - {layer}",
            f"     - {c.why}",
            f"     - {c.layout}",
            f"     - {', '.join(c.methods)}",
        ]
    return "\n".join(lines)
