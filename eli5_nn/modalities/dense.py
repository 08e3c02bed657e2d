"""Dense float input (images, sequences of vectors, feature vectors): maps over its
spatial axes, a picture of the input, regions as feature weights.

The axes are read from the input's layout (stated by the adapter or given as
``layout=``), never guessed from the shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from eli5.base import FeatureWeight, FeatureWeights

from ..adapters.base import Adapter, Tensor
from ..errors import Eli5NNTypeError, ExplanationError
from ..layout import Layout
from ..results import Lazy, NNExplanation, NNTargetExplanation, Once, joined, realise
from . import image as image_mod
from .base import (
    MethodTraits,
    Prepared,
    RowMaps,
    attribution_layout,
    check_single,
    layer_maps,
)

TOP_REGIONS = 5


def feature_weights(signed: np.ndarray, input_size: tuple[int, ...]) -> FeatureWeights | None:
    """The regions of a signed map with the largest sums, as eli5 feature weights."""
    regions = image_mod.region_sums(signed, input_size)
    if not regions:
        return None
    pos = sorted((r for r in regions if r[1] > 0), key=lambda r: -r[1])
    neg = sorted((r for r in regions if r[1] < 0), key=lambda r: r[1])
    return FeatureWeights(
        pos=[FeatureWeight(n, w) for n, w in pos[:TOP_REGIONS]],
        neg=[FeatureWeight(n, w) for n, w in neg[:TOP_REGIONS]],
        pos_remaining=max(0, len(pos) - TOP_REGIONS),
        neg_remaining=max(0, len(neg) - TOP_REGIONS),
    )


def _user_images(image: Any, n_docs: int) -> list[image_mod.EmbeddedImage] | None:
    """``image=``: one picture for every doc, or one per doc."""
    if image is None:
        return None
    if isinstance(image, (list, tuple)):
        if len(image) != n_docs:
            raise ExplanationError(
                f"image= holds {len(image)} pictures for {n_docs} docs; pass one per doc"
            )
        return [image_mod.as_image(im) for im in image]
    return [image_mod.as_image(image)] * n_docs


class DenseInput:
    """A float batch (N, ...) of an image model or any model of dense input."""

    def __init__(self, adapter: Adapter, x: Tensor, single: bool, *, image: Any = None,
                 notes: Sequence[str] = ()) -> None:
        shape = adapter.ops.shape(x)
        what = "explain_prediction" if single else "explain_predictions"
        if len(shape) < 2:
            raise ExplanationError(
                f"{what} expects input with a leading batch axis and at least one feature "
                f"axis; got shape {shape}. Add the batch axis, e.g. x[None] / x.unsqueeze(0)."
            )
        check_single(single, shape[0], shape)
        self.adapter, self.model_input = adapter, x
        self.n_docs, self.shape = shape[0], shape
        self.images = _user_images(image, self.n_docs)
        self.notes = list(notes)
        self.layout: Layout | None = None
        self._x_np: np.ndarray | None = None

    @staticmethod
    def accepts(spec: MethodTraits) -> bool:
        """Whether ``spec`` applies to dense input."""
        return spec.image

    @staticmethod
    def refuse(spec: MethodTraits, valid: list[str]) -> ExplanationError:
        """The error for a text-only method."""
        return ExplanationError(
            f"method {spec.key!r} applies to text models; for images and other dense input "
            f"use one of {sorted(valid)}"
        )

    def prepare(self, spec: MethodTraits, params: dict[str, Any], layout: Layout | None
                ) -> Prepared:
        """The input itself, checked (dtype, finite values) and with its layout."""
        adapter, x = self.adapter, self.model_input
        if not adapter.is_floating(x):
            if spec.needs_gradient_input:
                raise Eli5NNTypeError(
                    f"method {spec.key!r} differentiates with respect to the input, but the "
                    "input has an integer/bool dtype. Pass floating-point input (e.g. "
                    "x.float() / 255 with the model's preprocessing)."
                )
        elif not adapter.ops.all_finite(x):
            raise ExplanationError(
                "the input contains NaN or infinite values; explanations of such input are "
                "meaningless. Clean or impute the input first."
            )
        self.layout = layout if layout is not None else adapter.input_layout(x)
        self.layout.check(self.shape[1:], "the input")
        if self.images is not None and not self._is_picture():
            raise ExplanationError(
                f"image= applies to image inputs (N, C, H, W) or (N, H, W, C); got shape "
                f"{self.shape} with layout {self.layout.with_batch()!r}"
            )
        return Prepared(x=x, layout=self.layout, notes=list(self.notes))

    # -- axes -----------------------------------------------------------------------------
    def _is_picture(self) -> bool:
        assert self.layout is not None
        return self.layout.channel_axis is not None and len(self.layout.map_axes) == 2

    def _channel_axis(self) -> int | None:
        """The channel axis of an input row; ``None`` for a vector (its features are the map)."""
        assert self.layout is not None
        return self.layout.channel_axis if self.layout.map_axes else None

    def display_size(self) -> tuple[int, ...]:
        """The shape of the displayed maps: the input's spatial (or feature) axes."""
        ch = self._channel_axis()
        return tuple(s for i, s in enumerate(self.shape[1:]) if i != ch)

    # -- results --------------------------------------------------------------------------
    @staticmethod
    def attribution_layout(spec: MethodTraits, prepared: Prepared,
                           layer_layout: Layout | None) -> Layout:
        """The CAM layer's layout, or the input's."""
        return attribution_layout(spec, prepared, layer_layout)

    def maps(self, spec: MethodTraits, rows: np.ndarray, layout: Layout, docs: np.ndarray,
             relu: bool | None, display: np.ndarray | None) -> list[RowMaps]:
        """A layer CAM (or a method's map over tokens, on their grid) resized to the
        input's map, or an input attribution reduced over channels (the method's
        own display map where it has one)."""
        return [self._row_maps(spec, row, layout, relu, None if display is None else display[i])
                for i, row in enumerate(rows)]

    def _row_maps(self, spec: MethodTraits, row: np.ndarray, layout: Layout,
                  relu: bool | None, display: np.ndarray | None) -> RowMaps:
        """What can fail (the layout check, a map that cannot be resized) is checked
        now; the display map (resized, channels reduced) is built when first read."""
        size = self.display_size()
        if spec.space != "input":
            # the map's shape is checked now; its channel sum is taken when first read
            layout.check(row.shape, "the attribution")
            shape = layout.map_shape(row.shape)
            both = Once(lambda: layer_maps(layout, row, relu))  # (signed, shown), once
            if len(shape) == len(size):
                image_mod.check_resizable(shape, size)
                heat = Lazy(lambda: image_mod.normalise(image_mod.resize_map(both()[1], size)))
            else:
                heat = Lazy(lambda: image_mod.normalise(both()[1]))
            return RowMaps(Lazy(lambda: both()[0]), heat)
        ch = self._channel_axis()
        if display is not None and relu is None:
            shown_row = display
            heat = Lazy(lambda: image_mod.normalise(shown_row))
        else:
            heat = Lazy(lambda: image_mod.normalise(
                image_mod.reduce_channels(row, ch, spec.reduce, relu)))
        if ch is None:
            return RowMaps(row, heat)
        return RowMaps(Lazy(lambda: row.sum(axis=ch)), heat)

    def target(self, d: int, maps: RowMaps, base: NNTargetExplanation) -> NNTargetExplanation:
        """The regions with the largest signed sums as ``feature_weights`` (computed
        when first read)."""
        signed, size = maps.signed, self.display_size()
        base.feature_weights = Lazy(lambda: feature_weights(realise(signed), size))
        return base

    def _picture(self, d: int) -> tuple[Any, str | Lazy]:
        """The picture of doc ``d`` and the description's note about its values (both
        when first read)."""
        if self.images is not None:
            return self.images[d], ""
        if not self._is_picture():
            return None, ""
        if self._x_np is None:
            self._x_np = self.adapter.ops.to_numpy(self.model_input)
        assert self.layout is not None and self.layout.channel_axis is not None
        row, ch = self._x_np[d], self.layout.channel_axis

        def note() -> str:
            said = image_mod.rescale_note(float(row.min()), float(row.max()))
            return f" Note: {said}." if said else ""

        return Lazy(lambda: image_mod.image_from_input(row, ch)[0]), Lazy(note)

    def explanation(self, d: int, targets: list[NNTargetExplanation] | Lazy,
                    description: str | Lazy, estimator: str, method: str) -> NNExplanation:
        """The explanation of doc ``d``, with the picture of the input."""
        pic, note = self._picture(d)
        return NNExplanation(
            estimator=estimator, method=method, targets=targets, image=pic,
            description=joined(description, note),
        )
