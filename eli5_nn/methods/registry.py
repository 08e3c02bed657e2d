"""The method registry: one registered function per method.

:func:`register` names the method arguments a method takes, from
:data:`~eli5_nn.methods.params.ARGUMENTS` (where each is declared once).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..arguments import method_key
from ..errors import ExplanationError
from .context import MethodContext, MethodResult
from .params import ARGUMENTS

MethodFn = Callable[[MethodContext], MethodResult]


@dataclass(frozen=True)
class MethodSpec:
    """A registered method.

    ``space`` is ``"layer"`` for CAM methods (attribution over a layer's map),
    ``"input"`` for gradient methods (attribution over the input) and
    ``"token"`` for methods that give one value per token.
    ``reduce`` says how the modality turns an input-space attribution into an
    unsigned map: ``"max-abs"`` or ``"sum-abs"`` over channels.
    ``params`` are the names of the :data:`ARGUMENTS` the method reads.
    ``text`` says how a text model's attribution becomes one signed weight per
    token: ``"norm"`` (L2 norm over the embedding dimensions: sensitivity),
    ``"sum"`` (sum over them), ``"token"`` (already one value per token),
    ``"layer"`` (a CAM over a temporal map); ``""`` = not for text.
    ``image`` is whether the method applies to image (dense float) input.
    ``requires`` names what the model must have beyond scores and gradients
    (``"attention"``: attention layers whose weights can be read); ``""``: nothing.
    """

    key: str
    name: str
    fn: MethodFn
    space: str
    reduce: str = "sum-abs"
    params: frozenset[str] = frozenset()
    needs_gradient_input: bool = True
    text: str = ""
    image: bool = True
    requires: str = ""

    def check_args(self, given: dict[str, Any]) -> dict[str, Any]:
        """The given arguments this method takes, checked; the others are dropped."""
        return {k: ARGUMENTS[k].check(k, v) for k, v in given.items() if k in self.params}


METHODS: dict[str, MethodSpec] = {}


def register(
    key: str,
    name: str,
    *,
    space: str,
    reduce: str = "sum-abs",
    params: tuple[str, ...] = (),
    text: str = "",
    image: bool = True,
    requires: str = "",
) -> Callable[[MethodFn], MethodFn]:
    """Register ``fn`` as method ``key`` (human name ``name``) taking the
    :data:`ARGUMENTS` named in ``params``."""
    unknown = set(params) - set(ARGUMENTS)
    if unknown:
        raise ExplanationError(f"method {key!r} declares unknown arguments {sorted(unknown)}")

    def deco(fn: MethodFn) -> MethodFn:
        METHODS[key] = MethodSpec(
            key=key, name=name, fn=fn, space=space, reduce=reduce,
            params=frozenset(params), needs_gradient_input=space == "input",
            text=text, image=image, requires=requires,
        )
        return fn

    return deco


def get_method(key: object) -> MethodSpec:
    """The method registered as ``key``, read case- and separator-insensitively
    (``"Grad-CAM"``, ``"grad_cam"``); an unknown name gets a "did you mean" and
    the list of valid names."""
    return METHODS[method_key(key, METHODS)]
