"""The conformance table: one row per (method, model family, arguments).

Every registered method (:data:`eli5_nn.METHODS`) has rows here, and every row
runs the invariants of :mod:`tests.conformance.suite` once per adapter: PyTorch
(``tests/conformance/test_torch.py``), Keras on each backend
(``tests/keras/test_conformance.py``, once per ``KERAS_BACKEND``) and the
numpy fake adapter (``tests/conformance/test_numpy.py``). A method without a
row fails ``test_every_method_has_a_row``; a row that cannot run on an adapter
says why there (``skip``), and a method that does not apply says which error
the user gets (``error`` / ``errors_on``).

Model families (each adapter builds its own, tiny):

``image``
    a CNN on (N, 3, H, W) / (N, H, W, 3): convolutions, ReLU, global average
    pooling, a dense head (BatchNorm and residual blocks where the framework
    has them).
``mlp``
    dense layers on image-shaped input (no spatial map: no CAM).
``text-cnn``
    token ids → embedding → 1-D convolution → pooling over time → dense.
``text-rnn``
    token ids → embedding → LSTM → mean over time → dense.
``text-attention``
    token ids → embedding → attention whose weights can be read → dense.

This module imports no framework.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

FRAMEWORKS = ("torch", "keras", "numpy")
FAMILIES = ("image", "mlp", "text-cnn", "text-rnn", "text-attention")
TEXT_FAMILIES = ("text-cnn", "text-rnn", "text-attention")

#: how many targets/docs/threads the invariants use (small: the suite runs 4 times)
N_DOCS = 3

Error = tuple[type[Exception], str]


@dataclass(frozen=True)
class Case:
    """One row: ``method`` on a model of ``family`` with ``kwargs``.

    ``error``: the call must raise this (type, message pattern) on every
    adapter: the method does not apply to the family, and the row checks that
    the user is told so. ``errors_on``: the same, for some adapters only.
    ``skip``: adapter → why the row does not run there.
    ``completeness``: ``"ig"`` (the attribution sums to f(x) - f(baseline))
    or ``"score"`` (it sums to the score). ``flips``: ``counterfactual=True``
    negates the attribution. ``seeded``: ``random_state`` fixes the result
    and another seed changes it.
    """

    method: str
    family: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    error: Error | None = None
    errors_on: Mapping[str, Error] = field(default_factory=dict)
    skip: Mapping[str, str] = field(default_factory=dict)
    completeness: str | None = None
    flips: bool = True
    seeded: bool = False

    @property
    def id(self) -> str:
        return f"{self.method}[{self.family}]"

    def expected_error(self, framework: str) -> Error | None:
        """The error the call raises on ``framework``, or None when it explains."""
        return self.errors_on.get(framework, self.error)


# the arguments every row of a method uses: few steps and samples, and passes of a fixed
# size (JAX compiles each new shape once: fewer shapes, a faster suite)
FAST: dict[str, dict[str, Any]] = {
    "smoothgrad": {"samples": 8, "noise": 0.2, "random_state": 0, "batch_size": 8},
    "integrated-gradients": {"steps": 8, "batch_size": 8},
}
#: IG needs more nodes for its completeness check on ReLU nets
COMPLETE_STEPS = 128

NOT_TEXT = (ValueError, "does not apply to text models")
NOT_IMAGE = (ValueError, "applies to text models")
NO_MAP = (ValueError, "spatial or temporal map")
NO_ATTENTION = (ValueError, "no attention layer")
CD_TORCH_ONLY = (ValueError, "PyTorch")
NO_RNN_IN_NUMPY = "the numpy adapter has no recurrent layer"


def _rows(method: str, families: tuple[str, ...], **options: Any) -> list[Case]:
    kwargs = FAST.get(method, {})
    out = []
    for family in families:
        skip = {"numpy": NO_RNN_IN_NUMPY} if family == "text-rnn" else {}
        out.append(Case(method, family, kwargs, skip=skip, **options))
    return out


GRADIENT_FAMILIES = ("image", "mlp", "text-cnn", "text-rnn")

CASES: list[Case] = [
    # class activation maps: a layer with a map; an MLP has none
    *_rows("grad-cam", ("image", "text-cnn", "text-rnn")),
    Case("grad-cam", "mlp", error=NO_MAP),
    # Grad-CAM++ weights positive gradients (ReLU(G)): negating the target is not a sign flip
    *_rows("grad-cam++", ("image", "text-cnn", "text-rnn"), flips=False),
    Case("grad-cam++", "mlp", error=NO_MAP),
    # the input-gradient family: every model
    *_rows("gradient", GRADIENT_FAMILIES),
    *_rows("gradient-x-input", GRADIENT_FAMILIES),
    *_rows("smoothgrad", GRADIENT_FAMILIES, seeded=True),
    *_rows("integrated-gradients", GRADIENT_FAMILIES, completeness="ig"),
    # FullGrad: images and vectors; the decomposition sums to the logit on ReLU nets
    *_rows("fullgrad", ("image", "mlp"), completeness="score"),
    Case("fullgrad", "text-cnn", error=NOT_TEXT),
    # text-only methods
    *_rows("occlusion", ("text-cnn", "text-rnn")),
    Case("occlusion", "image", error=NOT_IMAGE),
    # attention weights do not depend on the target: nothing to flip
    *_rows("attention", ("text-attention",), flips=False),
    Case("attention", "text-cnn", error=NO_ATTENTION),
    # attention rollout: the same for every target, like attention
    Case("attention-rollout", "text-attention", flips=False),
    Case("attention-rollout", "text-cnn", error=NO_ATTENTION),
    Case("attention-rollout", "image", error=NO_ATTENTION),
    # contextual decomposition: PyTorch (and the numpy adapter's linear rules) only
    *(Case("cd", family, {"patch_size": 4} if family == "image" else {},
           errors_on={"keras": CD_TORCH_ONLY},
           skip={"numpy": NO_RNN_IN_NUMPY} if family == "text-rnn" else {})
      for family in ("image", "text-cnn", "text-rnn")),
]


def rows_of(method: str) -> list[Case]:
    return [c for c in CASES if c.method == method]
