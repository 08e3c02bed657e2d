"""Display hooks: how result classes reach the formatters without importing them.

Results sit at the bottom of the package (rank 1) and must not import the
formatters (rank 4). The formatters register their functions here when they
are imported (``eli5_nn.formatters`` does so, and ``import eli5_nn`` imports
it); ``NNExplanation._repr_html_``, ``Comparison.format_as_image`` and the
like look them up by name.

Hook names: ``"html"`` (explanations and comparisons as an HTML fragment),
``"comparison_image"`` (a comparison drawn as a PIL image), ``"hierarchy_html"``
(an ACD hierarchy as HTML).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import Eli5NNError

_HOOKS: dict[str, Callable[..., Any]] = {}


def register(name: str, fn: Callable[..., Any]) -> None:
    """Make ``fn`` the formatter called for hook ``name``."""
    _HOOKS[name] = fn


def registered(name: str) -> Callable[..., Any] | None:
    """The formatter registered for ``name``, or ``None``."""
    return _HOOKS.get(name)


def call(name: str, obj: Any, **kwargs: Any) -> Any:
    """Run the formatter registered for ``name`` on ``obj``."""
    fn = _HOOKS.get(name)
    if fn is None:
        raise Eli5NNError(
            f"no formatter is registered for {name!r}: import eli5_nn.formatters (importing "
            "eli5_nn does) before displaying results"
        )
    return fn(obj, **kwargs)


def set_html_formatter(fn: Callable[..., str]) -> None:
    """Register the function behind ``_repr_html_`` of explanations and comparisons."""
    register("html", fn)


__all__ = ["call", "register", "registered", "set_html_formatter"]
