"""Agglomerative contextual decomposition (ACD; Singh et al., ICLR 2019).

Units are the real tokens of a text, or the blocks of a grid over an image.
Each unit is scored by CD alone. At every step the candidates (units not yet
selected) are scored — a candidate next to a component by what joining it
adds to that component's CD score, any other by its own score — and those at
or above the ``percentile`` of the candidates' absolute scores join the
selection; the selection's connected groups (contiguous phrases; blocks with
8-connectivity) are that level's components, with their CD scores. The last
level holds everything, as one component.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from ..modalities.image import image_from_input
from ..patches import DEFAULT_GRID, patch_size
from ..results.hierarchy import Component, Hierarchy, Level
from .cd import _model_device, contextual_decomposition


def _components(selected: np.ndarray, adjacent: Callable[[int], list[int]]) -> list[list[int]]:
    seen = np.zeros(len(selected), dtype=bool)
    comps = []
    for u in np.flatnonzero(selected):
        if seen[u]:
            continue
        stack, comp = [int(u)], []
        seen[u] = True
        while stack:
            v = stack.pop()
            comp.append(v)
            for w in adjacent(v):
                if selected[w] and not seen[w]:
                    seen[w] = True
                    stack.append(w)
        comps.append(sorted(comp))
    return comps


def agglomerate(score: Callable[[np.ndarray], np.ndarray], n_units: int,
                adjacent: Callable[[int], list[int]], percentile: float
                ) -> tuple[np.ndarray, list[Level]]:
    """The ACD levels over ``n_units`` units.

    ``score(masks)`` returns the CD score of each row of a (M, n_units)
    boolean mask array; ``adjacent(u)`` lists the neighbours of unit ``u``.
    Returns the units' own scores and the levels.
    """
    unit_scores = score(np.eye(n_units, dtype=bool))
    selected = np.zeros(n_units, dtype=bool)
    levels: list[Level] = []
    comps: list[list[int]] = []
    comp_scores = np.zeros(0)
    while not selected.all():
        gains = unit_scores.copy()
        joins, owners = [], []
        for ci, comp in enumerate(comps):
            for u in sorted({w for v in comp for w in adjacent(v) if not selected[w]}):
                m = np.zeros(n_units, dtype=bool)
                m[comp] = True
                m[u] = True
                joins.append(m)
                owners.append((u, ci))
        if joins:
            best: dict[int, float] = {}
            for (u, ci), s in zip(owners, score(np.stack(joins)), strict=True):
                g = float(s - comp_scores[ci])
                if u not in best or abs(g) > abs(best[u]):
                    best[u] = g
            for u, g in best.items():
                gains[u] = g
        cand = ~selected
        vals = np.abs(gains[cand])
        thresh = np.percentile(vals, percentile)
        picks = cand & (np.abs(gains) >= thresh)
        if not picks.any():
            picks[np.flatnonzero(cand)[np.argmax(vals)]] = True
        selected |= picks
        comps = _components(selected, adjacent)
        masks = np.zeros((len(comps), n_units), dtype=bool)
        for ci, comp in enumerate(comps):
            masks[ci, comp] = True
        comp_scores = score(masks)
        levels.append(Level([Component(tuple(c), float(s))
                             for c, s in zip(comps, comp_scores, strict=True)]))
    return unit_scores, levels


def _scorer(model: nn.Module, x: torch.Tensor, target: int, to_mask: Callable[[np.ndarray],
            torch.Tensor], batch_size: int, extra: tuple[Any, ...]
            ) -> Callable[[np.ndarray], np.ndarray]:
    def score(masks: np.ndarray) -> np.ndarray:
        out = []
        with torch.no_grad():
            for i in range(0, len(masks), batch_size):
                rel, _ = contextual_decomposition(model, x, to_mask(masks[i:i + batch_size]),
                                                  extra_inputs=extra)
                out.append(rel[:, target].double().cpu().numpy())
        return np.concatenate(out)

    return score


def hierarchy(
    model: nn.Module,
    doc: Any,
    *,
    tokens: Sequence[str] | None = None,
    patch: Any = None,
    target: int | None = None,
    pad_value: int | None = None,
    percentile: float = 90.0,
    batch_size: int = 64,
    target_names: Sequence[Any] | None = None,
) -> Hierarchy:
    """Build the ACD hierarchy of one prediction.

    Parameters
    ----------
    model : torch.nn.Module
        A classifier returning class scores; see
        :func:`~eli5_nn.decomposition.contextual_decomposition` for what it
        may contain. It is explained in the mode it is in (call ``.eval()``).
    doc : tensor or array
        One input with a batch axis of 1: token ids (1, T), or an image
        (1, C, H, W).
    tokens : list of str, optional
        Text: one token per position (default: the ids as strings).
    patch : int or (int, int), optional
        Images: the block size of the grid (default: an 8×8 grid).
    target : int, optional
        The class to explain; default the top class.
    pad_value : int, optional
        Text: the padding id; padding positions are left out of the units.
    percentile : float
        At each step the candidates scoring at or above this percentile of
        the candidates' absolute scores are selected (at least one).
    batch_size : int
        Masks decomposed per pass.
    target_names : list, optional
        Class names; the hierarchy's ``target`` then holds the name.

    Returns
    -------
    eli5_nn.formatters.hierarchy.Hierarchy
        Levels of components with their CD scores; ``eli5_nn.format_as_html``
        renders it.
    """
    _check_options(model, percentile, batch_size)
    p = _predict(model, doc, target, target_names, percentile, batch_size)
    text = tokens is not None or not p.x.is_floating_point()
    if text:
        if patch is not None:
            raise ValueError("patch= applies to images; this input is token ids")
        return _text_hierarchy(p, tokens, pad_value)
    return _image_hierarchy(p, patch)


class _Prediction(NamedTuple):
    """The checked input and the prediction to explain, with the ACD options."""

    model: nn.Module
    x: torch.Tensor
    target: int
    name: Any
    score: float
    percentile: float
    batch_size: int

    def score_levels(self, to_mask: Callable[[np.ndarray], torch.Tensor], n_units: int,
                     adjacent: Callable[[int], list[int]]) -> tuple[np.ndarray, list[Level]]:
        score = _scorer(self.model, self.x, self.target, to_mask, self.batch_size, ())
        return agglomerate(score, n_units, adjacent, self.percentile)


def _check_options(model: nn.Module, percentile: float, batch_size: int) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"ACD needs a torch.nn.Module, got {type(model).__name__}")
    if not 0 <= percentile < 100:
        raise ValueError(f"percentile must be in [0, 100), got {percentile!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")


def _predict(model: nn.Module, doc: Any, target: int | None,
             target_names: Sequence[Any] | None, percentile: float, batch_size: int
             ) -> _Prediction:
    """``doc`` as a tensor on the model's device, and the class to explain."""
    x = torch.as_tensor(np.asarray(doc)) if not isinstance(doc, torch.Tensor) else doc
    if x.dim() < 2 or x.shape[0] != 1:
        raise ValueError(
            f"doc must be one input with a leading batch axis of 1, got {tuple(x.shape)}"
        )
    x = x.to(_model_device(model, x))
    with torch.no_grad():
        out = model(x)
    n_classes = out.shape[1]
    t = int(out[0].argmax()) if target is None else target
    if not isinstance(t, int) or not 0 <= t < n_classes:
        raise ValueError(f"target must be a class index in 0..{n_classes - 1}, got {target!r}")
    name = target_names[t] if target_names is not None else t
    return _Prediction(model, x, t, name, float(out[0, t]), percentile, batch_size)


def _text_hierarchy(p: _Prediction, tokens: Sequence[str] | None, pad_value: int | None
                    ) -> Hierarchy:
    """Units: the positions that are not padding; neighbours: the positions beside."""
    if p.x.dim() != 2:
        raise ValueError(f"token ids must have shape (1, T), got {tuple(p.x.shape)}")
    ids = p.x[0].cpu().numpy()
    toks = [str(i) for i in ids] if tokens is None else [str(s) for s in tokens]
    if len(toks) != len(ids):
        raise ValueError(f"tokens has {len(toks)} items but doc has {len(ids)} positions")
    positions = np.flatnonzero(ids != pad_value) if pad_value is not None \
        else np.arange(len(ids))
    if len(positions) == 0:
        raise ValueError("the document has no tokens besides padding")
    n_units = len(positions)

    def to_mask(m: np.ndarray) -> torch.Tensor:
        full = np.zeros((len(m), len(ids)), dtype=np.float32)
        full[:, positions] = m
        return torch.as_tensor(full)

    def adjacent(u: int) -> list[int]:
        return [v for v in (u - 1, u + 1) if 0 <= v < n_units]

    unit_scores, levels = p.score_levels(to_mask, n_units, adjacent)
    return Hierarchy(kind="text", target=p.name, score=p.score,
                     unit_scores=unit_scores, levels=levels,
                     tokens=[toks[i] for i in positions], positions=positions,
                     estimator=type(p.model).__name__)


def _image_hierarchy(p: _Prediction, patch: Any) -> Hierarchy:
    """Units: the blocks of a grid over the image; neighbours: 8-connected blocks."""
    if p.x.dim() != 4:
        raise ValueError(f"images must have shape (1, C, H, W), got {tuple(p.x.shape)}")
    _, ch, hh, ww = p.x.shape
    ph, pw = patch_size(patch, (hh, ww), grid=DEFAULT_GRID, name="patch")
    rows, cols = -(-hh // ph), -(-ww // pw)

    def to_mask(m: np.ndarray) -> torch.Tensor:
        blocks = m.reshape(len(m), rows, cols).astype(np.float32)
        full = np.kron(blocks, np.ones((ph, pw), dtype=np.float32))[:, :hh, :ww]
        return torch.as_tensor(np.repeat(full[:, None], ch, axis=1))

    def adjacent(u: int) -> list[int]:
        r, c = divmod(u, cols)
        return [rr * cols + cc for rr in (r - 1, r, r + 1) for cc in (c - 1, c, c + 1)
                if (rr, cc) != (r, c) and 0 <= rr < rows and 0 <= cc < cols]

    unit_scores, levels = p.score_levels(to_mask, rows * cols, adjacent)
    pic, _ = image_from_input(p.x[0].detach().cpu().numpy(), 0)
    return Hierarchy(kind="image", target=p.name, score=p.score,
                     unit_scores=unit_scores, levels=levels, grid=(rows, cols),
                     patch=(ph, pw), image=pic, estimator=type(p.model).__name__)
