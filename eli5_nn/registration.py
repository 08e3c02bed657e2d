"""All of eli5-nn's registrations with eli5's dispatchers, in one place.

``eli5.explain_prediction`` is a ``functools.singledispatch`` function. eli5-nn
registers its handler for two abstract classes, :class:`TorchModule` and
:class:`KerasModel`, whose ``__subclasshook__`` looks at ``torch.nn.Module``
and ``keras.Model`` only where torch or Keras is already imported. So
importing eli5-nn imports no framework, a Keras model reaches eli5-nn's
handler even when Keras is imported after eli5-nn, and a Keras model on the
torch backend (also a ``torch.nn.Module``) reaches the Keras handler: the
abstract class sits next to ``keras.Model`` in its method resolution order,
before ``torch.nn.Module``.

Where eli5 registered its own Grad-CAM for ``keras.Model`` (Keras imported
before eli5-nn, or eli5's Keras module loaded later), eli5-nn's handler is
registered for ``keras.Model`` itself, on top of it.
"""

from __future__ import annotations

import abc
import importlib.util
import sys
from typing import Any

import eli5

from ._eli5_keras import after_eli5_keras
from .explain import explain_prediction_nn
from .results import NNExplanation

_REGISTERED: list[str] = []


def _imported_class(module: str, path: tuple[str, ...]) -> type | None:
    """``module.path`` where ``module`` is already imported, else None."""
    obj: Any = sys.modules.get(module)
    for name in path:
        obj = getattr(obj, name, None)
    return obj if isinstance(obj, type) else None


class TorchModule(abc.ABC):  # noqa: B024 - a virtual base: only __subclasshook__
    """Every ``torch.nn.Module``, once torch is imported."""

    @classmethod
    def __subclasshook__(cls, other: type) -> bool:
        base = _imported_class("torch", ("nn", "Module"))
        return True if base is not None and issubclass(other, base) else NotImplemented


class KerasModel(abc.ABC):  # noqa: B024 - a virtual base: only __subclasshook__
    """Every ``keras.Model``, once Keras is imported."""

    @classmethod
    def __subclasshook__(cls, other: type) -> bool:
        base = _imported_class("keras", ("Model",))
        return True if base is not None and issubclass(other, base) else NotImplemented


def _explain(model: Any, doc: Any, **kwargs: Any) -> Any:
    return explain_prediction_nn(model, doc, **kwargs)


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _register_over_eli5_keras() -> None:
    """Register for ``keras.Model`` itself where eli5's Keras Grad-CAM is registered."""
    model = _imported_class("keras", ("Model",))
    if model is not None and eli5.explain_prediction.dispatch(model) is not _explain:
        eli5.explain_prediction.register(model)(_explain)


def register_all() -> list[str]:
    """Register the handlers; returns the model types of the installed frameworks.

    Safe to call twice. Imports no framework.
    """
    if not _REGISTERED:
        eli5.explain_prediction.register(TorchModule)(_explain)
        eli5.explain_prediction.register(KerasModel)(_explain)
        after_eli5_keras(_register_over_eli5_keras)
        _show_every_target()
        if _installed("torch"):
            _REGISTERED.append("torch.nn.Module")
        if _installed("keras"):
            _REGISTERED.append("keras.Model")
    _register_over_eli5_keras()
    return list(_REGISTERED)


def _show_every_target() -> None:
    """Let ``eli5.show_prediction`` show eli5-nn explanations in full.

    ``show_prediction`` draws image explanations with eli5's own
    ``format_as_image``, which handles one target only, and text explanations
    with eli5's ``format_as_html`` and ``show=fields.WEIGHTS``, which leaves out
    the class, its score and any legend. Its module-level names are replaced by
    functions that send eli5-nn explanations to eli5-nn's formatters (every
    target as a panel; the highlighted text under its class, score and legend)
    and everything else to eli5's functions, unchanged.
    """
    try:
        import eli5.ipython as eli5_ipython
    except ImportError:  # pragma: no cover - IPython is not installed
        return
    original = eli5_ipython.format_as_image
    if isinstance(original, ImportError) or getattr(original, "_eli5_nn", False):
        return
    original_html = eli5_ipython.format_as_html

    def format_as_image(expl: Any, **kwargs: Any) -> Any:
        from .formatters import format_as_image as draw_every_target

        if isinstance(expl, NNExplanation) and len(expl.targets or []) > 1:
            return draw_every_target(expl, **kwargs)
        return original(expl, **kwargs)

    def format_as_html(expl: Any, **kwargs: Any) -> str:
        from .formatters import format_as_html as ours

        if isinstance(expl, NNExplanation):
            keep = ("include_styles", "preserve_density")
            return ours(expl, **{k: v for k, v in kwargs.items() if k in keep})
        return str(original_html(expl, **kwargs))

    for new, old in ((format_as_image, original), (format_as_html, original_html)):
        new.__doc__ = old.__doc__
        setattr(new, "_eli5_nn", True)  # noqa: B010
    eli5_ipython.format_as_image = format_as_image
    eli5_ipython.format_as_html = format_as_html
