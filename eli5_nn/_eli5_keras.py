"""Keep ``import eli5`` from importing Keras, and with it TensorFlow or JAX.

eli5 0.16 runs ``from .keras import explain_prediction_keras`` in its
``__init__`` whenever Keras is installed; Keras then imports its backend
(TensorFlow by default: about 9 s, and log lines on the terminal). eli5-nn
explains Keras models itself, so it does not need eli5's Keras module at start.

Before eli5 is imported, :func:`install` puts a stand-in for the package
``eli5.keras`` in ``sys.modules``:

- while eli5 itself is being imported, the stand-in has no names, so eli5's
  ``from .keras import ...`` raises ``ImportError``, which eli5 catches (as it
  does when Keras is not installed);
- afterwards, the first access to one of its names (``eli5.keras.gradcam``,
  ``from eli5.keras import explain_prediction_keras``) runs eli5's real
  ``eli5/keras/__init__.py`` into it, and its submodules import as usual.

eli5's Keras module registers its own Grad-CAM for ``keras.Model`` when it
loads; the callbacks given to :func:`after_eli5_keras` run then, so that
eli5-nn's handler is registered again on top of it. Nothing here imports eli5.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

NAME = "eli5.keras"
_CALLBACKS: list[Callable[[], None]] = []


class _StandIn(types.ModuleType):
    """``eli5.keras`` until one of its names is used after eli5 is imported."""

    _loading = False

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or type(self)._loading or _eli5_initialising():
            raise AttributeError(f"module {NAME!r} has no attribute {name!r} (not loaded yet)")
        spec = self.__spec__
        assert spec is not None and spec.loader is not None
        type(self)._loading = True
        try:
            spec.loader.exec_module(self)  # eli5's own eli5/keras/__init__.py
        finally:
            type(self)._loading = False
        return self.__dict__[name] if name in self.__dict__ else super().__getattribute__(name)


def _eli5_initialising() -> bool:
    eli5 = sys.modules.get("eli5")
    return eli5 is None or bool(getattr(getattr(eli5, "__spec__", None), "_initializing", False))


class _RunCallbacks(importlib.abc.Loader):
    """The real loader of ``eli5.keras.explain_prediction``, then the callbacks."""

    def __init__(self, inner: importlib.abc.Loader) -> None:
        self.inner = inner

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return self.inner.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        self.inner.exec_module(module)
        for callback in _CALLBACKS:
            callback()


class _Finder(importlib.abc.MetaPathFinder):
    """Finds ``eli5.keras.explain_prediction`` as usual, wrapping its loader."""

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: types.ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != f"{NAME}.explain_prediction":
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _RunCallbacks(spec.loader)
        return spec


def install() -> bool:
    """Put the stand-in in place if eli5 is not imported yet; whether it did."""
    if "eli5" in sys.modules or NAME in sys.modules:
        return False
    top = importlib.util.find_spec("eli5")  # a top-level spec: eli5 is not imported
    if top is None or not top.submodule_search_locations:
        return False
    folder = Path(list(top.submodule_search_locations)[0]) / "keras"
    spec = importlib.util.spec_from_file_location(
        NAME, folder / "__init__.py", submodule_search_locations=[str(folder)])
    if spec is None:
        return False
    module = _StandIn(NAME)
    module.__spec__ = spec
    module.__file__ = spec.origin
    module.__path__ = [str(folder)]
    module.__package__ = NAME
    sys.modules[NAME] = module
    sys.meta_path.insert(0, _Finder())
    return True


def attach(eli5: types.ModuleType) -> None:
    """Make the stand-in ``eli5.keras`` as eli5's attribute, as an import would."""
    module = sys.modules.get(NAME)
    if isinstance(module, _StandIn) and "keras" not in vars(eli5):
        eli5.keras = module  # type: ignore[attr-defined]


def after_eli5_keras(callback: Callable[[], None]) -> None:
    """Run ``callback`` whenever eli5's Keras Grad-CAM gets registered later."""
    _CALLBACKS.append(callback)
