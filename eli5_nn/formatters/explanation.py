"""An eli5 ``Explanation`` that notebooks display with eli5-nn's HTML."""

from __future__ import annotations

from eli5.base import Explanation


class NNExplanation(Explanation):
    """:class:`eli5.base.Explanation` whose notebook display (``_repr_html_``)
    is :func:`eli5_nn.format_as_html`: images embedded, every target shown.

    It adds no field, so every eli5 formatter (``format_as_text``,
    ``format_as_dict``, ``format_as_html``, ``format_as_image``) treats it as
    an ``Explanation``.
    """

    __slots__ = ()

    def _repr_html_(self) -> str:
        """HTML for Jupyter: :func:`eli5_nn.format_as_html` of this explanation."""
        from .html import format_as_html

        return format_as_html(self)
