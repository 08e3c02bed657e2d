"""What the Keras adapter reads from a model's layers: the layer listing, layouts,
bias sites for FullGrad, copies for the randomisation check."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops as K

from ..errors import ExplanationError
from .base import BiasSite, LayerRef, randomized
from .keras_calls import PreActivation

CONV_TYPES = tuple(
    getattr(keras.layers, name)
    for name in (
        "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose",
        "Conv3DTranspose", "DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D",
        "SeparableConv2D",
    )
    if hasattr(keras.layers, name)
)
#: layers whose outputs put features last whatever the image data format
CHANNELS_LAST = tuple(
    getattr(keras.layers, name)
    for name in ("Dense", "EinsumDense", "LayerNormalization", "MultiHeadAttention",
                 "Embedding", "RNN", "LSTM", "GRU", "SimpleRNN", "Bidirectional",
                 "UnitNormalization", "GroupQueryAttention")
    if hasattr(keras.layers, name)
)


def flatten(top: list[Any]) -> list[Any]:
    """Top-level layers in ``model.layers`` order, then nested ones depth-first."""
    seen = {id(layer) for layer in top}
    out = list(top)
    stack = list(reversed(top))
    nested: list[Any] = []
    while stack:
        layer = stack.pop()
        for sub in getattr(layer, "layers", None) or []:
            if id(sub) not in seen:
                seen.add(id(sub))
                nested.append(sub)
                stack.append(sub)
    return out + nested


def graph_operations(model: Any, layers: Sequence[Any]) -> list[Any]:
    """The operations of the functional graphs of ``model`` and of its nested models
    that are not layers (``a + b``, ``keras.ops.mean``...), in graph order. Their
    ``call`` is swapped like a layer's, so their outputs can be read and replaced:
    the map entering a head is often such an operation (ConvNeXt's residual sum)."""
    known = {id(layer) for layer in layers}
    out = []
    for graph in [model, *layers]:
        for op in getattr(graph, "operations", None) or []:
            if id(op) not in known and not isinstance(op, keras.layers.Layer):
                known.add(id(op))
                out.append(op)
    return out


def image_format(layers: Sequence[Any]) -> str:
    """The model's image data format: the first layer that states one, else Keras's
    configured ``image_data_format``."""
    for layer in layers:
        fmt = getattr(layer, "data_format", None)
        if fmt in ("channels_first", "channels_last"):
            return str(fmt)
    return str(keras.config.image_data_format())


def channel_index(layer: Any, rank: int, fmt: str) -> int:
    """The channel axis of a row (batch axis dropped, ``rank`` axes) of ``layer``'s
    output: its ``data_format`` where it states one, a BatchNormalization's axis,
    last for dense, normalisation, attention, embedding and recurrent layers,
    else as the model's image data format ``fmt``."""
    own = getattr(layer, "data_format", None)
    if own in ("channels_first", "channels_last"):
        fmt = own
    elif isinstance(layer, keras.layers.BatchNormalization):
        axis = layer.axis
        axis = int(axis[0] if isinstance(axis, (list, tuple)) else axis)
        return axis % (rank + 1) - 1
    elif isinstance(layer, CHANNELS_LAST):
        return rank - 1
    return 0 if fmt == "channels_first" else rank - 1


def embedding_layers(refs: Sequence[LayerRef]) -> list[tuple[LayerRef, int, int | None]]:
    """``keras.layers.Embedding`` layers with vocabulary size and padding id (0 with
    ``mask_zero``)."""
    return [
        (ref, int(ref.handle.input_dim), 0 if getattr(ref.handle, "mask_zero", False) else None)
        for ref in refs
        if isinstance(ref.handle, keras.layers.Embedding)
    ]


def bias_sites(refs: Sequence[LayerRef], called: dict[int, Any] | None) -> list[BiasSite]:
    """Dense/Conv/BatchNorm layers with a bias; with ``called`` (layer ids of the
    forward pass) only those the forward pass reaches."""
    sites = []
    for ref in refs:
        layer = ref.handle
        if called is not None and id(layer) not in called:
            continue
        if isinstance(layer, (keras.layers.Dense, *CONV_TYPES)):
            bias = getattr(layer, "bias", None)
            if bias is None:
                continue
            act = getattr(layer, "activation", None)
            if act is not None and act is not keras.activations.linear:
                ref = LayerRef(
                    name=f"{ref.name} (pre-activation)", index=ref.index,
                    handle=PreActivation(layer), kind=ref.kind,
                )
            sites.append(BiasSite(ref, K.stop_gradient(K.convert_to_tensor(bias))))
        elif isinstance(layer, keras.layers.BatchNormalization):
            var = K.convert_to_tensor(layer.moving_variance)
            mean = K.convert_to_tensor(layer.moving_mean)
            scale = K.rsqrt(var + layer.epsilon)
            if layer.scale:
                scale = scale * K.convert_to_tensor(layer.gamma)
            eff = -mean * scale
            if layer.center:
                eff = eff + K.convert_to_tensor(layer.beta)
            sites.append(BiasSite(ref, K.stop_gradient(eff)))
    return sites


def clone(model: Any, build: Any) -> Any:
    """``keras.models.clone_model`` with the model's weights copied in; ``build(clone)``
    builds a clone whose weights are not created yet (a subclassed model)."""
    try:
        copy = keras.models.clone_model(model)
        if len(copy.weights) != len(model.weights):
            build(copy)
        weights = model.get_weights()
        if [tuple(v.shape) for v in copy.weights] != [w.shape for w in weights]:
            raise ExplanationError("the clone's weights differ from the model's")
        copy.set_weights(weights)
    except Exception as exc:  # noqa: BLE001 - Keras raises many kinds here
        name = getattr(model, "name", None) or type(model).__name__
        raise ExplanationError(
            f"could not copy {name} ({type(exc).__name__}: {exc}). The randomisation check "
            "works on a copy: Sequential and functional models can always be copied, "
            "subclassed ones need get_config()/from_config()."
        ) from exc
    return copy


def randomize(copy: Any, layer: LayerRef, seed: int) -> None:
    """Overwrite the trainable weights of ``copy``'s layer at ``layer``'s position."""
    layers = flatten(list(copy.layers))
    if layer.index >= len(layers) or layers[layer.index].name != layer.name:
        raise ExplanationError(f"the copy has no layer {layer.name!r} at {layer.index}")
    for i, v in enumerate(layers[layer.index].trainable_weights):
        values = np.asarray(K.convert_to_numpy(v.value))
        v.assign(randomized(values, seed * 1009 + i))


__all__ = ["CHANNELS_LAST", "CONV_TYPES", "bias_sites", "channel_index", "clone",
           "embedding_layers", "flatten", "image_format", "randomize"]
