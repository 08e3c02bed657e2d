"""The method registry: one registered function per method."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .context import MethodContext, MethodResult

MethodFn = Callable[[MethodContext], MethodResult]


@dataclass(frozen=True)
class MethodSpec:
    """A registered method.

    ``space`` is ``"layer"`` for CAM methods (attribution over a layer's map)
    and ``"input"`` for gradient methods (attribution over the input).
    ``reduce`` says how the modality turns an input-space attribution into an
    unsigned map: ``"max-abs"`` or ``"sum-abs"`` over channels.
    ``params`` are the keyword arguments the method reads.
    ``text`` says how a text model's attribution becomes one signed weight per
    token: ``"norm"`` (L2 norm over the embedding dimensions: sensitivity),
    ``"sum"`` (sum over them), ``"token"`` (already one value per token),
    ``"layer"`` (a CAM over a temporal map); ``""`` = not for text.
    ``image`` is whether the method applies to image (dense float) input.
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
) -> Callable[[MethodFn], MethodFn]:
    """Register ``fn`` as method ``key`` (human name ``name``)."""

    def deco(fn: MethodFn) -> MethodFn:
        METHODS[key] = MethodSpec(
            key=key, name=name, fn=fn, space=space, reduce=reduce,
            params=frozenset(params), needs_gradient_input=space == "input",
            text=text, image=image,
        )
        return fn

    return deco


def get_method(key: object) -> MethodSpec:
    """The method registered as ``key``; ``ValueError`` listing the valid names."""
    if not isinstance(key, str) or key not in METHODS:
        valid = ", ".join(repr(k) for k in sorted(METHODS))
        raise ValueError(f"unknown method {key!r}; valid methods are: {valid}")
    return METHODS[key]
