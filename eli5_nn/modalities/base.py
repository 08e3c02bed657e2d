"""What every modality does: prepare the method's input, turn one attribution row
into maps, build one explanation per doc.

A modality (:class:`~eli5_nn.modalities.dense.DenseInput` for images and other
dense input, :class:`~eli5_nn.modalities.tokens.TokenInput` for token ids) is
made once per call from the model input. The pipeline asks it for the
method's input (:meth:`Modality.prepare`), runs the method, then for every
(doc, target) row asks it for the row's maps and fields and for every doc for
the explanation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ..errors import ExplanationError
from ..layout import Layout
from ..results import Lazy, NNExplanation, NNTargetExplanation

if TYPE_CHECKING:
    from ..adapters.base import LayerRef, Tensor
    from .tokens import EmbeddingSpace


class MethodTraits(Protocol):
    """What a modality reads of a registered method (:class:`eli5_nn.methods.MethodSpec`)."""

    @property
    def key(self) -> str: ...
    @property
    def space(self) -> str: ...
    @property
    def reduce(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def image(self) -> bool: ...
    @property
    def needs_gradient_input(self) -> bool: ...
    @property
    def params(self) -> frozenset[str]: ...


@dataclass
class Prepared:
    """The method's input, as a modality prepared it.

    ``x`` is what the method attributes to (the input, or for text the
    embedding output), ``layout`` how its rows read, ``space`` the text
    models' embedding space, ``baseline`` a baseline already in the method's
    input space, ``notes`` what the description should say about the preparation.
    """

    x: Tensor
    layout: Layout | None
    space: EmbeddingSpace | None = None
    baseline: Tensor | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class RowMaps:
    """One attribution row as maps: ``signed`` on the modality's display axes
    (image cells, token positions), ``heatmap`` its unsigned display map scaled
    to [0, 1]. Either may be a :class:`~eli5_nn.results.Lazy` (built when read)."""

    signed: np.ndarray | Lazy
    heatmap: np.ndarray | Lazy


class Modality(Protocol):
    """A kind of input; see the module docstring.

    A modality may also have ``results``: an object with this protocol's
    :meth:`maps` and :meth:`target` that holds no model, adapter or model input
    (the text modality's :class:`~eli5_nn.modalities.tokens.TokenResults`). The
    pipeline then builds a call's targets when they are first read.
    """

    n_docs: int
    #: what the model takes (for the layer layouts and the automatic CAM layer)
    model_input: Tensor

    def prepare(self, spec: MethodTraits, params: dict[str, Any], layout: Layout | None
                ) -> Prepared:
        """The method's input; ``layout`` is the user's ``layout=`` for it, if given."""

    def attribution_layout(self, spec: MethodTraits, prepared: Prepared,
                           layer_layout: Layout | None) -> Layout:
        """How the rows of the method's attribution read."""

    def maps(self, spec: MethodTraits, rows: np.ndarray, layout: Layout, docs: np.ndarray,
             relu: bool | None, display: np.ndarray | None) -> list[RowMaps]:
        """The maps of every attribution row (``rows[i]`` of doc ``docs[i]``, read
        with ``layout``); ``display`` holds the method's own display map of each row,
        if it has them. One call for all rows, so that a modality can build them in
        vectorised form."""

    def target(self, d: int, maps: RowMaps, base: NNTargetExplanation) -> NNTargetExplanation:
        """``base`` (target, scores, heatmap, attribution set) with the modality's fields."""

    def explanation(self, d: int, targets: list[NNTargetExplanation] | Lazy,
                    description: str | Lazy, estimator: str, method: str) -> NNExplanation:
        """The explanation of doc ``d`` (its ``description`` may be lazy: add to it
        with :func:`~eli5_nn.results.joined`)."""

    def accepts(self, spec: MethodTraits) -> bool:
        """Whether the method applies to this kind of input."""

    def refuse(self, spec: MethodTraits, valid: list[str]) -> ExplanationError:
        """The error for a method that does not apply (``valid``: those that do)."""

    def display_size(self) -> tuple[int, ...]:
        """The size of the displayed maps (the input's spatial axes; ``()`` for text)."""


def check_single(single: bool, n_docs: int, shape: tuple[int, ...]) -> None:
    """``explain_prediction`` takes one doc."""
    if n_docs == 0:
        raise ExplanationError("the input batch is empty")
    if single and n_docs != 1:
        raise ExplanationError(
            f"explain_prediction explains one doc: doc must have a leading batch axis of "
            f"size 1, got shape {shape}. Add the axis with x[None] (or x.unsqueeze(0)); for "
            "several docs use eli5_nn.explain_predictions."
        )


def attribution_layout(spec: MethodTraits, prepared: Prepared, layer_layout: Layout | None
                       ) -> Layout:
    """The layout of an attribution over a CAM layer's map or over the prepared input."""
    layout = layer_layout if spec.space == "layer" else prepared.layout
    if layout is None:
        raise ExplanationError(f"method {spec.key!r}: the layout of its attribution is unknown")
    return layout


def layer_maps(layout: Layout, row: np.ndarray, relu: bool | None) -> tuple[np.ndarray, np.ndarray]:
    """The signed CAM of one layer-attribution row (channels summed by its layout)
    and its unsigned display map (positive part unless ``relu=False``: absolute value)."""
    cam = layout.channel_sum(row)
    use_relu = True if relu is None else relu
    return cam, (np.clip(cam, 0, None) if use_relu else np.abs(cam))


def layer_note(ref: LayerRef, shape: tuple[int, ...], layout: Layout) -> str:
    """How the description names the CAM layer."""
    size = "×".join(str(s) for s in shape)
    extra = ""
    if layout.prefix_tokens or layout.grid is not None:
        grid = "×".join(map(str, layout.grid)) if layout.grid else "none"
        extra = f", {layout.prefix_tokens} prefix token(s), grid {grid}"
    return f"at layer {ref.name!r} ({ref.kind}, map {size}, layout {layout.with_batch()}{extra})"
