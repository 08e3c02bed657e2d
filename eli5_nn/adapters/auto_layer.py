"""The automatic CAM layer, for the pipeline: one entry point over every adapter.

DESIGN.md §1 (``layer``): the map that enters the head's first parameter-free
reduction, or for class-token heads the input of the last block's attention.
PyTorch models are traced once (:mod:`eli5_nn.adapters.torch_head`), Keras
functional models read from their graph (:mod:`eli5_nn.adapters.keras_head`);
answers are cached per model and input signature. ``None`` means "no answer":
the caller keeps its fallback rule (the last layer with a spatial or token map).
"""

from __future__ import annotations

from typing import Any

from .base import LayerRef, ModelInput
from .common import model_cache


def _signature(x: Any) -> tuple[Any, ...]:
    if isinstance(x, ModelInput):
        return x.signature()
    return (tuple(x.shape[1:]), str(x.dtype))


def _torch_answer(model: Any, x: Any) -> tuple[str, str] | None:
    import torch

    from .torch_head import automatic_layer

    if isinstance(model, torch.jit.ScriptModule):  # no hooks: the adapter says what to use
        return None
    row = x[:1]

    def run() -> Any:
        if isinstance(row, ModelInput):
            if row.keys is None:
                return model(*row.values)
            return model(**dict(zip(row.keys, row.values, strict=True)))
        return model(row)

    with torch.no_grad():
        return automatic_layer(model, run)


def _keras_answer(model: Any) -> tuple[str, str] | None:
    from .keras_head import head_map

    found = head_map(model)
    # a layer or an operation of the graph (the adapter lists and taps both)
    return None if found is None else (found.name, found.why)


def automatic_layer(adapter: Any, x: Any) -> tuple[LayerRef, str] | None:
    """``(layer, why)`` of the automatic CAM layer of ``adapter``'s model on input
    ``x`` (a tensor or :class:`~eli5_nn.adapters.base.ModelInput`), or None where
    the model's head shows no reduced map (or the adapter is neither PyTorch nor
    Keras, or the answer is not a layer the adapter can tap)."""
    model = getattr(adapter, "model", None)
    framework = getattr(adapter, "framework", None)
    if model is None or framework not in ("torch", "keras"):
        return None
    cache = model_cache(model)
    structure = adapter.structure_key() if framework == "torch" else tuple(map(id, model.layers))
    key = ("automatic-layer", structure, _signature(x))
    if key not in cache:  # the layer itself is kept: the key holds the model's structure
        found = _torch_answer(model, x) if framework == "torch" else _keras_answer(model)
        try:
            cache[key] = None if found is None else (adapter.find_layer(found[0]), found[1])
        except ValueError:  # a name the adapter does not list
            cache[key] = None
    answer: tuple[LayerRef, str] | None = cache[key]
    return answer
