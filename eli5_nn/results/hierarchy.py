"""ACD hierarchies (Singh et al., ICLR 2019) as data.

Built by :func:`eli5_nn.decomposition.hierarchy`; drawn by
:func:`eli5_nn.formatters.hierarchy.format_hierarchy_html` (reached from
``_repr_html_`` through the ``"hierarchy_html"`` display hook).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ExplanationError
from .display import registered

if TYPE_CHECKING:
    from PIL import Image


@dataclass
class Component:
    """A connected group of units (token positions, or patches of the grid) and
    its CD score: the part of the target's score it explains on its own."""

    units: tuple[int, ...]
    score: float


@dataclass
class Level:
    """One step of the agglomeration: the components selected so far."""

    components: list[Component]


@dataclass
class Hierarchy:
    """An ACD hierarchy for one input and one target.

    ``kind`` is ``"text"`` or ``"image"``. ``unit_scores`` holds the CD score
    of every unit alone. Text: ``tokens`` are the units' tokens and
    ``positions`` their positions in the input. Images: ``grid`` is the
    (rows, cols) block grid, unit ``k`` the block at row ``k // cols``, column
    ``k % cols``, each ``patch`` (height, width) pixels; ``image`` the picture.
    ``levels`` run from the first selected units to one component holding
    everything.
    """

    kind: str
    target: Any
    score: float
    unit_scores: np.ndarray
    levels: list[Level]
    tokens: list[str] = field(default_factory=list)
    positions: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    grid: tuple[int, int] = (0, 0)
    patch: tuple[int, int] = (0, 0)
    image: Image.Image | None = None
    estimator: str = ""

    def phrases(self, level: int) -> list[tuple[str, float]]:
        """Text: each component of ``level`` as (phrase, CD score)."""
        if self.kind != "text":
            raise ExplanationError("phrases() applies to text hierarchies")
        return [(" ".join(self.tokens[u] for u in sorted(c.units)), c.score)
                for c in self.levels[level].components]

    def label_map(self, level: int) -> np.ndarray:
        """Images: (rows, cols) grid with the component number (1-based) of each
        block at ``level``, 0 where nothing is selected yet."""
        out = np.zeros(self.grid[0] * self.grid[1], dtype=np.int64)
        for k, c in enumerate(self.levels[level].components, start=1):
            out[list(c.units)] = k
        return out.reshape(self.grid)

    def _repr_html_(self) -> str | None:
        fn = registered("hierarchy_html")
        return None if fn is None else str(fn(self))


__all__ = ["Component", "Hierarchy", "Level"]
