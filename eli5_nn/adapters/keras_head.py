"""The automatic CAM layer of a functional or Sequential Keras model, from its graph.

DESIGN.md §1 (``layer``): the map that enters the head's first parameter-free
reduction (global or k×k pooling, flatten, a mean or max over positions). From
``model.outputs`` the functional graph is walked back: through the head's layers
(Dense, Dropout, LayerNormalization...) to its last reduction, then through the
reductions and reshapes before it; the operation that produced the tensor
where the chain starts is the answer. That may be an operation Keras named
itself rather than a layer (ConvNeXt adds each block's residual with ``x + y``:
``add_17``), so the answer also names the reduction layer the map enters.
Subclassed models have no graph: None (the caller keeps its fallback rule).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

_REDUCTIONS = (
    "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
    "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D", "AveragePooling1D",
    "AveragePooling2D", "AveragePooling3D", "MaxPooling1D", "MaxPooling2D", "MaxPooling3D",
    "Flatten", "Mean", "Max", "Amax", "Sum", "Min", "Amin", "Logsumexp",
)
_RESHAPES = ("Reshape", "Permute", "Transpose", "Squeeze", "ExpandDims")


@dataclass(frozen=True)
class HeadMap:
    """Where the head's reduction chain starts.

    ``name``: the operation (layer or op) that produced the map; ``is_layer``:
    whether it is a layer of the model; ``enters``: the name of the reduction
    layer it enters; ``reduction``: the class of the head's first reduction.
    """

    name: str
    is_layer: bool
    enters: str
    reduction: str

    @property
    def why(self) -> str:
        return f"the map entering the head's first parameter-free reduction ({self.reduction})"


def _history(t: Any) -> tuple[Any, Any] | None:
    """(operation, its node) that produced KerasTensor ``t``."""
    h = getattr(t, "_keras_history", None)
    if h is None:
        return None
    op, node_index = h[0], h[1]
    nodes = getattr(op, "_inbound_nodes", [])
    return (op, nodes[node_index]) if node_index < len(nodes) else None


def _main_input(node: Any) -> Any | None:
    inputs = list(getattr(node, "input_tensors", []) or [])
    return inputs[0] if inputs else None


def _kind(op: Any) -> str:
    name = type(op).__name__
    if name in _REDUCTIONS:
        return "reduce"
    if name in _RESHAPES:
        return "reshape"
    return "other"


def _inner(op: Any) -> Any:
    """For a nested functional model, the operation that produced its output."""
    outputs = getattr(op, "outputs", None)
    while outputs and getattr(op, "_inbound_nodes", None) is not None:
        found = _history(outputs[0])
        if found is None or found[0] is op:
            break
        op = found[0]
        outputs = getattr(op, "outputs", None) if hasattr(op, "layers") else None
    return op


def head_map(model: Any) -> HeadMap | None:
    """Where the head's first parameter-free reduction reads its map, or None."""
    outputs = getattr(model, "outputs", None)
    if not outputs:
        return None
    t, first, enters = outputs[0], "", ""
    for _ in range(10_000):
        found = _history(t)
        if found is None:
            return None
        op, node = found
        kind = _kind(op)
        if first and kind == "other":
            op = _inner(op)
            return HeadMap(op.name, hasattr(op, "trainable_weights"), enters, first)
        if kind == "reduce":
            first, enters = type(op).__name__, op.name
        prev = _main_input(node)
        if prev is None:
            return None
        t = prev
    return None


def automatic_layer(model: Any) -> tuple[str, str] | None:
    """``(name, why)`` of the automatic CAM layer of a Keras model, or None."""
    found = head_map(model)
    return None if found is None else (found.name, found.why)
