"""Contextual decomposition (CD) and hierarchical ACD interpretations, for PyTorch.

``contextual_decomposition(model, x, mask)`` splits a model's outputs into the
part due to a region of the input and the rest; ``hierarchy(model, doc, ...)``
builds the ACD hierarchy of phrases or image regions.
"""

from ..errors import DecompositionError
from ..results.hierarchy import Component, Hierarchy, Level
from .acd import hierarchy
from .cd import contextual_decomposition

__all__ = [
    "Component",
    "DecompositionError",
    "Hierarchy",
    "Level",
    "contextual_decomposition",
    "hierarchy",
]
