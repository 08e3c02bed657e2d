"""eli5's explanation classes, extended with the raw attribution and its layout.

Fields that cost time to build and are often never read can be given as
:class:`Lazy` values, computed on first access: ``NNTargetExplanation.feature_weights``
(image region sums, top tokens), ``NNTargetExplanation.proba`` (the softmax of the
call's scores), ``NNTargetExplanation.weighted_spans`` (text spans),
``NNTargetExplanation.heatmap`` (the display map, resized to the input),
``NNExplanation.description`` (its notes on the outputs and the input's values),
``NNExplanation.image`` (the picture of the input) and ``NNExplanation.targets``
(the target explanations of a text call, built together when one is first read).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

import numpy as np
from eli5.base import Explanation, TargetExplanation
from eli5.base_utils import attrs

from ..layout import Layout
from .display import registered, set_html_formatter

T = TypeVar("T")


class Lazy:
    """A field value computed by ``fn()`` the first time the field is read, then stored.

    Pass it for ``NNTargetExplanation.feature_weights`` / ``proba`` /
    ``weighted_spans`` / ``heatmap`` or ``NNExplanation.description`` / ``image`` /
    ``targets``.
    Comparing, printing, pickling or formatting a result reads (so computes) it.
    """

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn

    def __repr__(self) -> str:
        return f"Lazy({self.fn!r})"


def realise(value: Any) -> Any:
    """``value``, computed first if it is :class:`Lazy`."""
    return value.fn() if isinstance(value, Lazy) else value


class Once(Generic[T]):
    """``fn()``, computed on the first call and then returned as stored: what several
    :class:`Lazy` fields share (one softmax for every row's ``proba``). Cheaper to
    make than ``functools.cache``, which matters for objects made on every call."""

    __slots__ = ("fn", "value")

    def __init__(self, fn: Callable[[], T]) -> None:
        self.fn: Callable[[], T] | None = fn

    def __call__(self) -> T:
        if self.fn is not None:
            self.value, self.fn = self.fn(), None
        return self.value


def joined(text: str | Lazy, more: str | Lazy) -> str | Lazy:
    """``text + more``, lazy when either part is."""
    if isinstance(text, Lazy) or isinstance(more, Lazy):
        return Lazy(lambda: realise(text) + realise(more))
    return text + more


#: the slot descriptors behind the lazy fields of :class:`NNTargetExplanation`
_SLOTS: dict[str, Any] = {}


def _lazy_field(cls: type, name: str, slot: Any) -> None:
    """Make field ``name`` of ``cls`` (stored in the slot descriptor ``slot``)
    evaluate a :class:`Lazy` value on first read."""

    def get(self: Any) -> Any:
        value = slot.__get__(self, type(self))
        if isinstance(value, Lazy):
            value = value.fn()
            slot.__set__(self, value)
        return value

    def put(self: Any, value: Any) -> None:
        slot.__set__(self, value)

    setattr(cls, name, property(get, put, doc=f"``{name}`` (computed on first read if lazy)"))


@attrs
class NNTargetExplanation(TargetExplanation):
    """:class:`eli5.base.TargetExplanation` plus ``attribution`` and its ``layout``.

    ``attribution`` holds the method's raw, signed values in the model's units,
    with the shape of the attributed tensor without the batch axis (the input
    for gradient methods, the layer map for CAM methods). ``layout``
    (:class:`eli5_nn.Layout`) says how the axes of ``attribution`` read:
    which is channels, which are spatial or token axes and how tokens form a
    grid; formatters and metrics read it instead of guessing (``None`` on
    results made before layouts existed). ``heatmap`` is the display map in
    [0, 1]. ``faithfulness``, when asked for, holds the explanation's scores
    from :func:`eli5_nn.metrics.faithfulness`
    (``{"deletion_auc": ..., "insertion_auc": ...}``), else ``None``.
    """

    def __init__(
        self,
        target: Any,
        feature_weights: Any = None,
        proba: float | Lazy | None = None,
        score: float | None = None,
        weighted_spans: Any = None,
        heatmap: np.ndarray | Lazy | None = None,
        attribution: np.ndarray | None = None,
        faithfulness: dict[str, float] | None = None,
        layout: Layout | None = None,
    ) -> None:
        # each field straight into its slot: results are built by the hundred per
        # call, and a lazy field's property setter would cost a Python call
        self.target = target
        _SLOTS["feature_weights"].__set__(self, feature_weights)
        _SLOTS["proba"].__set__(self, proba)
        self.score = score
        _SLOTS["weighted_spans"].__set__(self, weighted_spans)
        _SLOTS["heatmap"].__set__(self, heatmap)
        self.attribution = attribution
        self.faithfulness = faithfulness
        self.layout = layout


class NNExplanation(Explanation):
    """:class:`eli5.base.Explanation` whose notebook display (``_repr_html_``)
    is :func:`eli5_nn.format_as_html`: images embedded, every target shown.

    It adds no field, so every eli5 formatter (``format_as_text``,
    ``format_as_dict``, ``format_as_html``, ``format_as_image``) treats it as
    an ``Explanation``. The HTML formatter is reached through the hook that
    :mod:`eli5_nn.formatters` registers (:func:`set_html_formatter`).
    """

    __slots__ = ()

    def _repr_html_(self) -> str | None:
        """HTML for Jupyter: :func:`eli5_nn.format_as_html` of this explanation
        (``None``, so Jupyter shows the text form, when no formatter is registered)."""
        fn = registered("html")
        return None if fn is None else str(fn(self))


for _name in ("feature_weights", "proba", "weighted_spans", "heatmap"):
    _SLOTS[_name] = vars(NNTargetExplanation)[_name]
    _lazy_field(NNTargetExplanation, _name, _SLOTS[_name])
for _name in ("description", "image", "targets"):
    _lazy_field(NNExplanation, _name, vars(Explanation)[_name])


__all__ = ["Lazy", "NNExplanation", "NNTargetExplanation", "Once", "joined", "realise",
           "set_html_formatter"]
