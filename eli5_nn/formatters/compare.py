"""``eli5_nn.compare``: several methods on the same input, side by side."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eli5.base import Explanation
from PIL import Image

from .maps import check_scale

#: methods compare() runs when none are named
DEFAULT_METHODS = ("grad-cam", "gradient", "integrated-gradients")


class Comparison:
    """Explanations of one input by several methods, shown side by side.

    ``explanations[i]`` is the explanation by ``names[i]``. Notebooks display
    it as HTML; :meth:`format_as_image` and :meth:`format_as_html` draw it
    with one column per method and one row per target. ``scale`` is the
    default colour scale (see :func:`eli5_nn.format_as_image`); ``label``
    names the input in row headers (default: the target).
    """

    def __init__(self, explanations: Sequence[Explanation], names: Sequence[str],
                 scale: str | float = "explanation", label: str = "") -> None:
        if not explanations or len(explanations) != len(names):
            raise ValueError("a Comparison needs one name per explanation, and at least one")
        self.explanations = list(explanations)
        self.names = [str(n) for n in names]
        self.scale = check_scale(scale)
        self.label = str(label)

    def __len__(self) -> int:
        return len(self.explanations)

    def __getitem__(self, i: int) -> Explanation:
        return self.explanations[i]

    def __repr__(self) -> str:
        return f"Comparison({', '.join(self.names)})"

    def format_as_image(self, **kwargs: Any) -> Image.Image:
        """Draw the comparison (PIL image); takes the keyword arguments of
        :func:`eli5_nn.format_as_image` (``scale`` defaults to the comparison's;
        the input is shown unless ``show_original=False``)."""
        from .image import draw_grid
        from .views import Options, comparison_grid

        kwargs.setdefault("scale", self.scale)
        kwargs.setdefault("show_original", True)
        draw = {k: kwargs.pop(k) for k in ("labels", "legend", "min_size") if k in kwargs}
        grid = comparison_grid([self.explanations], self.names, Options(**kwargs),
                               [self.label])
        return draw_grid(grid, **draw)

    def format_as_html(self, **kwargs: Any) -> str:
        """The comparison as HTML; takes the keyword arguments of
        :func:`eli5_nn.format_as_html`."""
        from .html import format_as_html

        return format_as_html(self, **kwargs)

    def _repr_html_(self) -> str:
        return self.format_as_html()


def _method_kwargs(key: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` without the method-specific arguments that ``key`` does not take."""
    from ..methods import METHODS, get_method

    specific = {p for spec in METHODS.values() for p in spec.params}
    spec = get_method(key)
    return {k: v for k, v in kwargs.items() if k not in specific or k in spec.params}


def compare(model: Any, doc: Any, methods: Sequence[str] = DEFAULT_METHODS,
            scale: str | float = "explanation", **kwargs: Any) -> Comparison:
    """Explain one prediction with several methods and show them side by side.

    Parameters
    ----------
    model, doc
        As for :func:`eli5_nn.explain_prediction_nn`.
    methods : list of str
        Method names (see ``eli5_nn.METHODS``); default Grad-CAM, gradient and
        Integrated Gradients.
    scale : {"explanation", "target", "shared"} or float
        Colour scale of the view. The default gives each method one scale over
        its targets, all drawn with the same colour bar relative to each
        method's peak (methods measure in different units); ``"shared"`` puts
        every map on one scale in raw units, meaningful for methods with the
        same units (e.g. gradient and SmoothGrad).
    **kwargs
        Arguments of :func:`eli5_nn.explain_prediction_nn` (``targets``,
        ``steps``, ``layer``...); a method-specific one goes only to the
        methods that take it.

    Returns
    -------
    Comparison
        Displays as HTML in notebooks; see :meth:`Comparison.format_as_image`.
    """
    from ..explain import explain_prediction_nn
    from ..methods import get_method

    if isinstance(methods, str) or not methods:
        raise ValueError("methods must be a non-empty list of method names, e.g. "
                         "['grad-cam', 'integrated-gradients']")
    keys = [get_method(m).key for m in methods]
    expls = [explain_prediction_nn(model, doc, method=k, **_method_kwargs(k, kwargs))
             for k in keys]
    return Comparison(expls, [str(e.method or k) for e, k in zip(expls, keys, strict=True)],
                      scale=scale)
