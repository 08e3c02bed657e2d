"""The conformance suite on the numpy fake adapter (no framework involved)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import numpy as np

from eli5_nn.errors import ExplanationError
from tests.conformance.cases import TEXT_FAMILIES
from tests.conformance.suite import ConformanceSuite, Harness, generate, token_docs
from tests.fake_adapter import FakeAdapter, conv_model, mlp_model, text_model

pytest_generate_tests = generate

SHAPE = (3, 6, 6)


class NumpyHarness(Harness):
    framework = "numpy"
    families: ClassVar[dict[str, Any]] = {
        "image": lambda: FakeAdapter(conv_model(channels=SHAPE[0], classes=3)),
        "mlp": lambda: FakeAdapter(mlp_model(SHAPE, classes=3)),
        "text-cnn": lambda: FakeAdapter(text_model(relu=True)),
        "text-attention": lambda: FakeAdapter(text_model(relu=True, self_attention=2)),
    }

    def docs(self, family: str, n: int = 3) -> np.ndarray:
        if family in TEXT_FAMILIES:
            return token_docs(n, 20, 7, seed=3)
        rng = np.random.default_rng(3)
        return rng.normal(size=(n, *SHAPE))

    def disturb(self, model: FakeAdapter) -> None:
        model.model.training = True

    @contextmanager
    def broken(self, model: FakeAdapter) -> Iterator[None]:
        last = model.model.layers[-1]

        def boom(x: np.ndarray) -> np.ndarray:
            raise ExplanationError("the model could not run: kaboom")

        last.forward = boom  # type: ignore[method-assign]
        try:
            yield
        finally:
            del last.forward

    def snapshot(self, model: FakeAdapter) -> Any:
        return (model.model.training,
                [{k: v.copy() for k, v in layer.params().items()} for layer in model.model.layers],
                [sorted(vars(layer)) for layer in model.model.layers])

    def assert_same(self, before: Any, after: Any) -> None:
        assert before[0] == after[0]
        assert before[2] == after[2]
        for a, b in zip(before[1], after[1], strict=True):
            assert a.keys() == b.keys()
            for k in a:
                np.testing.assert_array_equal(a[k], b[k])


class TestNumpyConformance(ConformanceSuite):
    harness = NumpyHarness()
