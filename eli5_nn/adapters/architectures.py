"""What eli5-nn knows about real architectures, read by duck typing.

Neither timm nor Hugging Face ``transformers`` is imported: their models are
recognised by the attributes they carry.

- **Vision transformers** (timm ``VisionTransformer`` / DeiT, Hugging Face ViT,
  DeiT, BEiT, Swin): the patch grid and the prefix tokens (class,
  distillation, register tokens) of a token sequence, :func:`token_grid`.
- **Class-token heads**: whether the head reads one token
  (:func:`reads_class_token`) and the layer whose output enters the last
  block's attention (:func:`attention_input_layer`), where the CAM literature
  looks for such heads: at the last block's output the patch tokens get no
  gradient.
- **Hugging Face attention**: the attention implementation switched to
  ``"eager"`` for one call and restored (:func:`eager_attention`), since
  ``sdpa`` and flash attention return no weights; the outermost attention
  modules (:func:`attention_modules`).
- **Hugging Face outputs, inputs and tokenizers**: the output kind a config
  states (:func:`output_kind`), a ``BatchEncoding`` as the model's keyword
  inputs (:func:`model_inputs`), tokens and special-token flags from a
  tokenizer (:func:`tokenizer_tokens`).

PyTorch is imported only inside the functions that run a forward pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from ..layout import square_grid

#: Hugging Face ``model_type`` values whose classification heads read the first token
_CLASS_TOKEN_TYPES = frozenset({
    "vit", "deit", "vit_msn", "vit_mae", "bert", "roberta", "xlm-roberta", "camembert",
    "distilbert", "albert", "electra", "mpnet", "deberta", "deberta-v2", "ernie", "roformer",
    "data2vec-text", "xlm-roberta-xl", "modernbert", "megatron-bert", "nezha",
})
#: Hugging Face ``model_type`` values whose heads pool over all positions
_POOLED_TYPES = frozenset({
    "swin", "swinv2", "convnext", "convnextv2", "resnet", "regnet", "efficientnet",
    "mobilenet_v1", "mobilenet_v2", "mobilevit", "levit", "poolformer", "focalnet", "dinat",
    "nat", "van", "cvt", "pvt", "pvt_v2", "segformer", "bit", "dinov2",
})
#: timm ``global_pool`` values that pool over tokens rather than read one
_TIMM_POOLS = frozenset({"avg", "max", "avgmax", "map", "catavgmax"})
#: keys of a tokenizer's ``BatchEncoding`` that are not model inputs
_NOT_MODEL_INPUTS = frozenset({
    "offset_mapping", "special_tokens_mask", "overflow_to_sample_mapping", "length",
    "num_truncated_tokens", "word_ids",
})
#: names under which attention modules take their input, by preference
_INPUT_KEYS = ("hidden_states", "x", "query", "input", "hidden_state")


# -- Hugging Face configs ------------------------------------------------------------------
def hf_config(model: Any) -> Any | None:
    """The Hugging Face config of ``model`` (an object with ``model_type``), or None."""
    config = getattr(model, "config", None)
    return config if isinstance(getattr(config, "model_type", None), str) else None


def output_kind(model: Any) -> str | None:
    """``"multilabel"``, ``"regression"`` or ``"logits"`` as a Hugging Face config
    states it (``problem_type``; without one, one label means regression, as
    ``transformers`` reads it); None when the model states nothing."""
    config = hf_config(model)
    if config is None or not hasattr(config, "num_labels"):
        return None
    kinds = {
        "multi_label_classification": "multilabel",
        "regression": "regression",
        "single_label_classification": "logits",
    }
    problem = getattr(config, "problem_type", None)
    if problem in kinds:
        return kinds[problem]
    return "regression" if int(config.num_labels) == 1 else "logits"


# -- vision transformers: prefix tokens and the patch grid ---------------------------------
def _pair(value: Any) -> tuple[int, int] | None:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value), int(value)
    if isinstance(value, Sequence) and len(value) == 2:
        return int(value[0]), int(value[1])
    return None


def _prefix_tokens(model: Any) -> int | None:
    """How many non-patch tokens lead the sequence, as the model states it: timm's
    ``num_prefix_tokens``, else the class / distillation / register token
    parameters of its embedding (Hugging Face); None when it states nothing."""
    n = getattr(model, "num_prefix_tokens", None)
    if isinstance(n, int) and not isinstance(n, bool):
        return n
    modules = getattr(model, "modules", None)
    if not callable(modules):
        return None
    names = ("cls_token", "dist_token", "distillation_token", "reg_token", "register_tokens")
    for m in modules():
        found = [getattr(m, a) for a in names if getattr(m, a, None) is not None]
        shapes = [tuple(t.shape) for t in found if hasattr(t, "shape")]
        if shapes:
            return sum(s[-2] if len(s) >= 2 else 1 for s in shapes)
    return None


def _timm_grids(model: Any, input_hw: tuple[int, int] | None) -> list[tuple[int, int]]:
    embed = getattr(model, "patch_embed", None)
    grid = _pair(getattr(embed, "grid_size", None))
    patch = _pair(getattr(embed, "patch_size", None))
    if input_hw is not None and patch is not None:
        return [(input_hw[0] // patch[0], input_hw[1] // patch[1])]
    return [grid] if grid is not None else []


def _hf_grids(config: Any, input_hw: tuple[int, int] | None) -> list[tuple[int, int]]:
    size = input_hw or _pair(getattr(config, "image_size", None))
    patch = _pair(getattr(config, "patch_size", None))
    if size is None or patch is None:
        return []
    base = (size[0] // patch[0], size[1] // patch[1])
    stages = len(getattr(config, "depths", None) or [1])  # Swin halves the grid per stage
    return [(base[0] >> i, base[1] >> i) for i in range(stages) if base[0] >> i and base[1] >> i]


def token_grid(
    model: Any, n_tokens: int, input_hw: tuple[int, int] | None = None
) -> tuple[int, tuple[int, int]] | None:
    """``(prefix_tokens, (rows, cols))`` of a vision transformer's token sequence.

    Read from what the model states: timm's ``patch_embed.grid_size`` and
    ``num_prefix_tokens``; a Hugging Face config's ``image_size`` /
    ``patch_size`` (Swin: halved per stage) and the class, distillation and
    register tokens of its embedding. ``input_hw`` (the input image's height
    and width) replaces the configured image size where given. Where the model
    names its prefix tokens but no grid fits, a square grid of the remaining
    tokens is used.

    Parameters
    ----------
    model : object
        The model (``torch.nn.Module`` or anything with these attributes).
    n_tokens : int
        Length of the token axis of the tapped tensor.
    input_hw : tuple of int, optional
        Height and width of the input image.

    Returns
    -------
    tuple or None
        None when the model states no grid (text models, unknown modules): the
        caller then falls back to :func:`eli5_nn.layout.square_grid` or keeps
        the tokens a sequence.
    """
    config = hf_config(model)
    grids = _timm_grids(model, input_hw)
    if config is not None:
        grids += _hf_grids(config, input_hw)
    if not grids:
        return None
    prefix = _prefix_tokens(model)
    if prefix is None and config is not None:
        prefix = 0  # Hugging Face models hold their class tokens as parameters
    for grid in grids:
        extra = n_tokens - grid[0] * grid[1]
        if extra == (prefix or 0) or (prefix is None and 0 <= extra <= 8):
            return extra, grid
    if prefix is not None:
        square = square_grid(n_tokens, prefix)
        if square is not None:
            return prefix, square
    return None


# -- class-token heads ------------------------------------------------------------------------
def reads_class_token(model: Any) -> bool | None:
    """Whether the model's head reads one token (a class token) rather than
    pooling over positions: timm's ``global_pool == "token"``; Hugging Face
    ViT, DeiT and BERT-family classifiers (BEiT where ``use_mean_pooling`` is
    off). None when the model is not known."""
    pool = getattr(model, "global_pool", None)
    if isinstance(pool, str) and hasattr(model, "patch_embed"):
        if pool == "token":
            return True
        if pool in _TIMM_POOLS or pool == "":
            return False
    config = hf_config(model)
    if config is None:
        return None
    kind = config.model_type
    if kind in ("beit", "data2vec-vision"):
        return not bool(getattr(config, "use_mean_pooling", True))
    if kind in _CLASS_TOKEN_TYPES:
        return True
    if kind in _POOLED_TYPES:
        return False
    return None


def _is_attention(module: Any) -> bool:
    return "attention" in type(module).__name__.lower()


def attention_modules(model: Any) -> list[tuple[str, Any]]:
    """``(name, module)`` of the outermost attention modules, in model order: modules
    whose class name holds "Attention" and that sit inside no other such module
    (Hugging Face ``BertAttention`` but not its ``BertSelfAttention``), so that
    each attention layer is read once."""
    found: list[tuple[str, Any]] = []
    for name, m in model.named_modules():
        if not name or not _is_attention(m):
            continue
        if any(name.startswith(outer + ".") for outer, _ in found):
            continue
        found.append((name, m))
    return found


def _first_tensor(value: Any, torch: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (tuple, list)) and value and isinstance(value[0], torch.Tensor):
        return value[0]
    return None


def _attention_input(args: tuple[Any, ...], kwargs: Mapping[str, Any], torch: Any) -> Any:
    for a in args:
        if isinstance(a, torch.Tensor):
            return a
    for key in _INPUT_KEYS:
        if isinstance(kwargs.get(key), torch.Tensor):
            return kwargs[key]
    return next((v for v in kwargs.values() if isinstance(v, torch.Tensor)), None)


def attention_input_layer(model: Any, run: Callable[[], object]) -> str | None:
    """The name (as in ``named_modules()``) of the module whose output enters the
    last attention module called during ``run()`` (one forward pass the caller
    makes, e.g. under ``torch.no_grad()``).

    Pre-norm blocks give their norm (timm ``blocks.11.norm1``, Hugging Face ViT
    ``layernorm_before``); post-norm blocks (BERT) the previous block. Where
    several modules return that same tensor, the outermost one (the one that
    returned it last) is named. None when no module output enters it (the
    model has no attention module, or its input is made by plain functions).
    """
    import weakref

    import torch

    attention = {id(m) for _, m in attention_modules(model)}
    if not attention:
        return None
    produced: dict[int, tuple[Any, str]] = {}
    last: list[str | None] = [None]

    def pre_hook(_m: Any, args: Any, kwargs: Any) -> None:
        t = _attention_input(args, kwargs, torch)
        entry = produced.get(id(t)) if t is not None else None
        last[0] = entry[1] if entry is not None and entry[0]() is t else None

    def make_hook(name: str) -> Any:
        def hook(_m: Any, _i: Any, out: Any) -> None:
            t = _first_tensor(out, torch)
            if t is not None:
                produced[id(t)] = (weakref.ref(t), name)

        return hook

    handles = []
    try:
        for name, m in model.named_modules():
            if not name:
                continue
            if id(m) in attention:
                handles.append(m.register_forward_pre_hook(pre_hook, with_kwargs=True))
            handles.append(m.register_forward_hook(make_hook(name)))
        run()
    finally:
        for h in handles:
            h.remove()
    return last[0]


def class_token_layer(model: Any, run: Callable[[], object]) -> str | None:
    """:func:`attention_input_layer` where :func:`reads_class_token` is True, else None."""
    return attention_input_layer(model, run) if reads_class_token(model) else None


# -- Hugging Face attention implementation -----------------------------------------------------
def _configs(model: Any) -> list[Any]:
    """Every distinct Hugging Face config the model's modules hold."""
    seen: dict[int, Any] = {}
    modules = model.modules() if callable(getattr(model, "modules", None)) else [model]
    for m in modules:
        config = getattr(m, "config", None)
        if config is not None and hasattr(config, "_attn_implementation"):
            seen.setdefault(id(config), config)
    return list(seen.values())


def _attn_attribute(config: Any) -> str:
    """The attribute that holds the implementation without setting sub-configs
    (``transformers`` 4.4x and 5 keep it in ``_attn_implementation_internal``)."""
    return (
        "_attn_implementation_internal"
        if hasattr(config, "_attn_implementation_internal") else "_attn_implementation"
    )


@contextmanager
def eager_attention(model: Any) -> Iterator[bool]:
    """For the ``with`` block, every Hugging Face config in ``model`` asks for the
    ``"eager"`` attention implementation (the one that returns attention
    weights; ``sdpa`` and flash attention return None). Restored on exit, also
    on error. Yields whether anything was switched; a no-op for other models."""
    changed: list[tuple[Any, str, Any]] = []
    try:
        for config in _configs(model):
            attr_name = _attn_attribute(config)
            old = getattr(config, attr_name)
            if old not in (None, "eager") and isinstance(old, str):
                changed.append((config, attr_name, old))
                setattr(config, attr_name, "eager")
        yield bool(changed)
    finally:
        for config, attr_name, old in reversed(changed):
            setattr(config, attr_name, old)


# -- Hugging Face inputs and tokenizers --------------------------------------------------------
def model_inputs(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The model's keyword inputs from a tokenizer's ``BatchEncoding`` (or any
    mapping): its entries, less those a tokenizer adds that models do not take
    (``offset_mapping``, ``special_tokens_mask``, ``length``...)."""
    return {str(k): v for k, v in doc.items() if k not in _NOT_MODEL_INPUTS}


def tokenizer_tokens(tokenizer: Any, ids: Any) -> tuple[list[str], np.ndarray]:
    """The tokens of one row of token ids as a Hugging Face tokenizer spells them
    (word pieces as such: ``"##ing"``, ``"Ġthe"``) and a boolean mask of the
    special tokens (``[CLS]``, ``<s>``, padding...), which are never highlighted."""
    row = [int(i) for i in np.asarray(ids).reshape(-1)]
    tokens = [str(t) for t in tokenizer.convert_ids_to_tokens(row)]
    special = set(int(i) for i in getattr(tokenizer, "all_special_ids", ()) or ())
    return tokens, np.array([i in special for i in row], dtype=bool)


__all__ = [
    "attention_input_layer", "attention_modules", "class_token_layer", "eager_attention",
    "hf_config", "model_inputs", "output_kind", "reads_class_token", "token_grid",
    "tokenizer_tokens",
]
