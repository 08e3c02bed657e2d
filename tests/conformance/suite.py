"""The invariants, written once; each adapter runs them on the rows of the table.

An entry point (``test_torch.py``, ``test_numpy.py``,
``tests/keras/test_conformance.py``) subclasses :class:`ConformanceSuite` with
its :class:`Harness` and sets ``pytest_generate_tests = generate`` so every
test gets the rows of :data:`~tests.conformance.cases.CASES` it applies to.

This module imports no framework.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import pytest

import eli5_nn
from eli5_nn.adapters import get_adapter

from .cases import CASES, COMPLETE_STEPS, FAMILIES, N_DOCS, TEXT_FAMILIES, Case, rows_of

#: the targets of each doc in batch tests (several for one doc, as they may differ)
PER_DOC_TARGETS = [[1], [0], [0, 1]]


def token_docs(n: int, vocab: int, length: int, seed: int) -> np.ndarray:
    """``n`` rows of token ids in 1..vocab-1; the second and third padded (id 0)
    from positions 5 and 3, so batches mix lengths."""
    ids = np.random.default_rng(seed).integers(1, vocab, size=(max(n, 3), length))
    ids[1, 5:] = 0
    ids[2, 3:] = 0
    return ids[:n]


class Harness:
    """What an adapter's entry point provides: its models, docs and model state.

    ``families`` maps a family of :data:`~tests.conformance.cases.FAMILIES` to a
    function building a fresh model; a family missing here is skipped with the
    row's reason.
    """

    framework: str = ""
    families: ClassVar[dict[str, Callable[[], Any]]] = {}

    def __init__(self) -> None:
        self._models: dict[str, Any] = {}

    def model(self, family: str) -> Any:
        """A shared model of ``family`` (tests that change a model use :meth:`fresh`)."""
        if family not in self._models:
            self._models[family] = self.fresh(family)
        return self._models[family]

    def fresh(self, family: str) -> Any:
        return self.families[family]()

    def docs(self, family: str, n: int = N_DOCS) -> Any:
        """``n`` docs with a leading batch axis (numpy or the framework's tensors)."""
        raise NotImplementedError

    def baseline(self, family: str, docs: Any) -> Any:
        """The docs IG starts from by default: zeros, or all padding for text."""
        return np.zeros_like(np.asarray(docs))

    def kwargs(self, family: str) -> dict[str, Any]:
        """Extra arguments of every call (the padding id of text models)."""
        return {"pad_value": 0} if family in TEXT_FAMILIES else {}

    def scores(self, model: Any, docs: Any) -> np.ndarray:
        adapter = get_adapter(model)
        with adapter.session():
            return adapter.forward(adapter.as_batch(docs))

    def assert_input_untouched(self, docs: Any, before: Any) -> None:
        """The caller's docs are as they were (values; for tensors, their flags)."""
        np.testing.assert_array_equal(np.asarray(docs), np.asarray(before))

    def disturb(self, model: Any) -> None:
        """Put ``model`` in a state a call must keep (train mode, frozen layers, .grad)."""

    def broken(self, model: Any) -> Any:
        """A context in which ``model``'s forward pass raises ``RuntimeError("kaboom")``
        (entered before the snapshot); None where the framework offers no way."""
        return None

    def snapshot(self, model: Any) -> Any:
        raise NotImplementedError

    def assert_same(self, before: Any, after: Any) -> None:
        raise NotImplementedError


# -- helpers ------------------------------------------------------------------------------------
def explain_one(harness: Harness, case: Case, model: Any, doc: Any, **kw: Any) -> Any:
    args = {**harness.kwargs(case.family), **case.kwargs, **kw}
    return eli5_nn.explain_prediction_nn(model, doc, method=case.method, **args)


def explain_many(harness: Harness, case: Case, model: Any, docs: Any, **kw: Any) -> list[Any]:
    args = {**harness.kwargs(case.family), **case.kwargs, **kw}
    return eli5_nn.explain_predictions(model, docs, method=case.method, **args)


def check_values(expl: Any, case: Case) -> None:
    """No NaN anywhere; heatmaps in [0, 1] of the input's map shape."""
    assert expl.targets, "no target explained"
    for t in expl.targets:
        assert np.all(np.isfinite(t.attribution)), "attribution holds NaN or inf"
        h = np.asarray(t.heatmap)
        assert np.all(np.isfinite(h)) and h.min() >= 0.0 and h.max() <= 1.0, (h.min(), h.max())
        assert h.ndim == (1 if case.family in TEXT_FAMILIES else 2), h.shape
        assert np.isfinite(t.score)


def assert_same_targets(a: list[Any], b: list[Any], rtol: float = 1e-4,
                        atol: float = 1e-6) -> None:
    """Two lists of target explanations hold the same values."""
    assert [t.target for t in a] == [t.target for t in b]
    for ta, tb in zip(a, b, strict=True):
        np.testing.assert_allclose(ta.attribution, tb.attribution, rtol=rtol, atol=atol)
        np.testing.assert_allclose(ta.heatmap, tb.heatmap, rtol=rtol, atol=1e-5)
        assert ta.score == pytest.approx(tb.score, rel=1e-5, abs=1e-6)


def _row(docs: Any, i: int) -> Any:
    return docs[i:i + 1]


def _wants(predicate: Callable[[Case], bool]) -> Callable[[Callable[..., Any]], Any]:
    """Give a test only the rows for which ``predicate`` holds (and that explain)."""
    def deco(fn: Callable[..., Any]) -> Any:
        fn.wants = predicate  # type: ignore[attr-defined]
        return fn

    return deco


def generate(metafunc: pytest.Metafunc) -> None:
    """``pytest_generate_tests`` of the entry points: the rows each test applies to."""
    if "case" not in metafunc.fixturenames:
        return
    harness: Harness = metafunc.cls.harness  # type: ignore[union-attr]
    fw = harness.framework
    raising = getattr(metafunc.function, "raising", False)
    # rows that cannot run here are listed, with their reason, under the first test only
    first = metafunc.function.__name__ == "test_several_targets_equal_each_alone"
    wants = getattr(metafunc.function, "wants", lambda case: True)
    one_per_method = getattr(metafunc.function, "one_per_method", False)
    params, methods = [], set()
    for case in CASES:
        if (case.expected_error(fw) is not None) != raising or not wants(case):
            continue
        reason = case.skip.get(fw)
        if reason is None and case.family not in harness.families:
            reason = f"no {case.family!r} model on {fw} (and the row gives no reason)"
        if reason and not first or one_per_method and case.method in methods:
            continue
        methods.add(case.method)
        marks = [pytest.mark.skip(reason=reason)] if reason else []
        params.append(pytest.param(case, id=case.id, marks=marks))
    metafunc.parametrize("case", params)


def _one_per_method(fn: Callable[..., Any]) -> Any:
    """Give a test the first row of each method only: it checks what the adapter
    does around a method's passes (locks, clean-up on error), not the family."""
    fn.one_per_method = True  # type: ignore[attr-defined]
    return fn


def _raises(fn: Callable[..., Any]) -> Any:
    fn.raising = True  # type: ignore[attr-defined]
    return fn


class ConformanceSuite:
    """The invariants; ``harness`` is set by each entry point."""

    harness: ClassVar[Harness]

    # -- the table itself ----------------------------------------------------------------------
    def test_every_method_has_a_row(self) -> None:
        fw = self.harness.framework
        for method in eli5_nn.METHODS:
            rows = rows_of(method)
            assert rows, f"method {method!r} has no row in tests/conformance/cases.py"
            for case in rows:
                assert case.family in FAMILIES, case
                available = case.family in self.harness.families
                assert available or case.skip.get(fw), (
                    f"row {case.id} cannot run on {fw} ({case.family!r} is not built there) "
                    "and gives no reason: add skip={...: 'why'}"
                )
        for case in CASES:
            assert case.method in eli5_nn.METHODS, f"row {case.id}: method not registered"

    # -- invariants of every row that explains --------------------------------------------------
    def test_several_targets_equal_each_alone(self, case: Case) -> None:
        model = self.harness.model(case.family)
        doc = _row(self.harness.docs(case.family), 0)
        both = explain_one(self.harness, case, model, doc, targets=[1, 0])
        check_values(both, case)
        assert [t.target for t in both.targets] == [1, 0]
        for t in both.targets:
            alone = explain_one(self.harness, case, model, doc, targets=[t.target])
            assert_same_targets([t], alone.targets)

    def test_batch_equals_one_by_one(self, case: Case) -> None:
        """N docs (one list of targets per doc) = N single calls; ``batch_size=1`` too."""
        model = self.harness.model(case.family)
        docs = self.harness.docs(case.family)
        targets = PER_DOC_TARGETS[:N_DOCS]
        many = explain_many(self.harness, case, model, docs, targets=targets)
        chunked = explain_many(self.harness, case, model, docs, targets=targets, batch_size=1)
        assert len(many) == len(chunked) == N_DOCS
        for i, (expl, small) in enumerate(zip(many, chunked, strict=True)):
            check_values(expl, case)
            one = explain_one(self.harness, case, model, _row(docs, i), targets=targets[i])
            assert_same_targets(expl.targets, one.targets)
            assert_same_targets(small.targets, one.targets)

    def test_model_left_as_found(self, case: Case) -> None:
        model = self.harness.fresh(case.family)
        self.harness.disturb(model)
        docs = self.harness.docs(case.family)
        docs_before = copy.deepcopy(docs)
        before = self.harness.snapshot(model)
        explain_many(self.harness, case, model, docs, targets=[1, 0])
        self.harness.assert_same(before, self.harness.snapshot(model))
        self.harness.assert_input_untouched(docs, docs_before)
        with pytest.raises(ValueError, match="out of range"):
            explain_one(self.harness, case, model, _row(docs, 0), targets=[99])
        self.harness.assert_same(before, self.harness.snapshot(model))

    @_one_per_method
    def test_model_left_as_found_when_the_forward_raises(self, case: Case) -> None:
        model = self.harness.fresh(case.family)
        self.harness.disturb(model)
        broken = self.harness.broken(model)
        if broken is None:
            pytest.skip(f"no way to break a {self.harness.framework} model's forward pass")
        with broken:
            before = self.harness.snapshot(model)
            with pytest.raises(ValueError, match="kaboom"):
                explain_one(self.harness, case, model, _row(self.harness.docs(case.family), 0))
            self.harness.assert_same(before, self.harness.snapshot(model))

    @_one_per_method
    def test_threads_give_sequential_results(self, case: Case) -> None:
        model = self.harness.model(case.family)
        docs = self.harness.docs(case.family)
        expected = [explain_one(self.harness, case, model, _row(docs, i)) for i in range(N_DOCS)]
        got: list[Any] = [None] * N_DOCS
        errors: list[BaseException] = []

        def work(i: int) -> None:
            try:
                got[i] = explain_one(self.harness, case, model, _row(docs, i))
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(N_DOCS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        for e, g in zip(expected, got, strict=True):
            assert_same_targets(e.targets, g.targets, rtol=1e-6, atol=1e-8)

    @_wants(lambda case: case.flips)
    def test_counterfactual_flips_the_sign(self, case: Case) -> None:
        model = self.harness.model(case.family)
        doc = _row(self.harness.docs(case.family), 1)
        plain = explain_one(self.harness, case, model, doc, targets=[0])
        against = explain_one(self.harness, case, model, doc, targets=[0], counterfactual=True)
        check_values(against, case)
        np.testing.assert_allclose(against.targets[0].attribution,
                                   -plain.targets[0].attribution, rtol=1e-4, atol=1e-6)

    @_wants(lambda case: case.family not in TEXT_FAMILIES)
    def test_constant_input_gives_a_finite_map(self, case: Case) -> None:
        model = self.harness.model(case.family)
        zeros = self.harness.baseline(case.family, _row(self.harness.docs(case.family), 0))
        expl = explain_one(self.harness, case, model, zeros)
        check_values(expl, case)
        if case.method in ("gradient-x-input", "integrated-gradients"):
            assert np.all(expl.targets[0].attribution == 0)  # x == baseline: nothing to give

    @_wants(lambda case: case.seeded)
    def test_random_state_fixes_the_result(self, case: Case) -> None:
        model = self.harness.model(case.family)
        doc = _row(self.harness.docs(case.family), 0)
        a = explain_one(self.harness, case, model, doc, random_state=7)
        b = explain_one(self.harness, case, model, doc, random_state=7)
        c = explain_one(self.harness, case, model, doc, random_state=8)
        np.testing.assert_array_equal(a.targets[0].attribution, b.targets[0].attribution)
        assert not np.allclose(a.targets[0].attribution, c.targets[0].attribution)

    @_wants(lambda case: case.completeness is not None)
    def test_completeness(self, case: Case) -> None:
        model = self.harness.model(case.family)
        docs = self.harness.docs(case.family)
        doc = _row(docs, 0)
        kw = {"steps": COMPLETE_STEPS} if case.completeness == "ig" else {}
        expl = explain_one(self.harness, case, model, doc, targets=[0, 1], **kw)
        base = self.harness.scores(model, self.harness.baseline(case.family, doc))[0]
        for t in expl.targets:
            expected = t.score - (float(base[t.target]) if case.completeness == "ig" else 0.0)
            # (IG: the quadrature error comes from the ReLU kinks along the path)
            assert float(np.sum(t.attribution)) == pytest.approx(expected, rel=1e-2, abs=2e-3)

    # -- rows that must raise ---------------------------------------------------------------
    @_raises
    def test_the_user_is_told_why(self, case: Case) -> None:
        error = case.expected_error(self.harness.framework)
        assert error is not None
        model = self.harness.fresh(case.family)
        self.harness.disturb(model)
        before = self.harness.snapshot(model)
        with pytest.raises(error[0], match=error[1]):
            explain_one(self.harness, case, model, _row(self.harness.docs(case.family), 0))
        self.harness.assert_same(before, self.harness.snapshot(model))

