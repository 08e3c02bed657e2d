"""The shared parsers: targets, probabilities, baselines, argument checks, the patch grid.

No framework: these modules sit below the adapters.
"""

from __future__ import annotations

import numpy as np
import pytest

from eli5_nn import arguments, patches, targets
from eli5_nn.errors import Eli5NNTypeError, ExplanationError

METHODS = ["grad-cam", "grad-cam++", "gradient", "integrated-gradients", "smoothgrad"]


@pytest.mark.parametrize(
    ("given", "key"),
    [("Grad-CAM", "grad-cam"), ("grad_cam", "grad-cam"), ("GradCAM++", "grad-cam++"),
     ("Integrated Gradients", "integrated-gradients"), ("smoothgrad", "smoothgrad")],
)
def test_method_names_ignore_case_and_separators(given, key):
    assert arguments.method_key(given, METHODS) == key


def test_unknown_method_suggests_and_lists():
    with pytest.raises(ExplanationError, match=r"'gradcm' \(did you mean 'grad-cam'\?\).*"
                                               "'smoothgrad'"):
        arguments.method_key("gradcm", METHODS)
    with pytest.raises(Eli5NNTypeError):
        arguments.method_key(3, METHODS)


def test_unknown_keywords_name_the_function_and_the_valid_ones():
    with pytest.raises(TypeError, match=r"explain_prediction\(\) got unexpected keyword "
                                        r"argument 'stpes' \(did you mean 'steps'\?\)\. "
                                        "Valid arguments are: method, steps"):
        arguments.check_keywords(["method", "stpes"], ["method", "steps"])
    arguments.check_keywords(["steps"], ["method", "steps"])


def test_number_checks():
    assert arguments.check_positive_int("steps", None) is None
    assert arguments.check_positive_int("steps", np.int64(3)) == 3
    for bad in (0, -1, 2.0, True, "3"):
        with pytest.raises(ValueError, match="steps must be a positive integer"):
            arguments.check_positive_int("steps", bad)
    assert arguments.check_number("noise", 0, minimum=0) == 0.0
    for bad in (-0.1, float("nan"), float("inf"), True, "x"):
        with pytest.raises(ValueError, match="noise must be a finite number >= 0"):
            arguments.check_number("noise", bad, minimum=0)
    with pytest.raises(TypeError, match="relu"):
        arguments.check_optional_bool("relu", 1)


def test_targets_flat_nested_and_named():
    names = ["cat", "dog", "eel"]
    assert targets.normalise_targets(None, None, 2, False) is None
    assert targets.normalise_targets(1, None, 2, False) == [[1], [1]]
    assert targets.normalise_targets(["eel", 0], names, 1, True) == [[2, 0]]
    assert targets.normalise_targets([[0], [1, 2]], None, 2, False) == [[0], [1, 2]]
    assert targets.normalise_targets(["dog"], {0: "cat", 1: "dog"}, 1, True) == [[1]]
    assert targets.normalise_targets([[1], None], None, 2, False) == [[1], None]
    assert targets.normalise_targets([None], None, 1, True) == [None]
    with pytest.raises(ValueError, match="one list of targets per doc"):
        targets.normalise_targets([[0], [1]], None, 3, False)
    with pytest.raises(ValueError, match=r"did you mean 'dog'"):
        targets.normalise_targets(["dgo"], names, 1, True)
    with pytest.raises(TypeError):
        targets.normalise_targets([True], None, 1, True)


def test_resolver_and_class_index():
    scores = np.array([[0.1, 3.0, 2.0], [5.0, 0.0, 1.0]])
    assert targets.target_resolver(None, None)(scores, [0, 1]) == [[1], [0]]
    assert targets.target_resolver(None, 2)(scores, [0, 1]) == [[1, 2], [0, 2]]
    assert targets.target_resolver([[2], [0]], None)(scores[1:], [1]) == [[0]]
    assert targets.target_resolver([None, [2]], None)(scores, [0, 1]) == [[1], [2]]
    assert targets.target_resolver([None, [2]], 2)(scores, [0, 1]) == [[1, 2], [2]]
    with pytest.raises(ValueError, match="target 5 is out of range.*3 outputs"):
        targets.target_resolver([[5]], None)(scores[:1], [0])
    with pytest.raises(ValueError, match="top_targets=4"):
        targets.target_resolver(None, 4)(scores, [0, 1])
    assert targets.class_index("dog", ["cat", "dog"], 2) == 1
    with pytest.raises(ValueError, match="out of range"):
        targets.class_index(2, None, 2)
    assert targets.target_name(1, ["cat", "dog"]) == "dog"
    assert targets.target_name(1, {0: "cat"}) == 1


def test_proba_by_output_kind():
    logits = np.array([[1.0, 2.0, 3.0]])
    soft = np.exp(logits) / np.exp(logits).sum()
    np.testing.assert_allclose(targets.proba(logits), soft)
    np.testing.assert_allclose(targets.proba(logits, "logits"), soft)
    dist = np.array([[0.2, 0.8]])
    np.testing.assert_allclose(targets.proba(dist), dist)
    np.testing.assert_allclose(targets.proba(dist, "probabilities"), dist)
    np.testing.assert_allclose(targets.proba(logits, "multilabel"), 1 / (1 + np.exp(-logits)))
    assert targets.proba(logits, "regression") is None
    assert targets.proba(np.array([[2.0]]), "logits") is None
    # detection keeps a single column in [0, 1], else its sigmoid
    np.testing.assert_allclose(targets.proba(np.array([[0.3]])), [[0.3]])
    np.testing.assert_allclose(targets.proba(np.array([[2.0]])), 1 / (1 + np.exp(-2.0)))
    with pytest.raises(ValueError, match="did you mean 'logits'"):
        targets.proba(logits, "logit")


def test_baselines():
    x = np.arange(12, dtype=np.float64).reshape(1, 3, 2, 2)
    assert targets.parse_baseline(None).kind == "constant"
    np.testing.assert_array_equal(
        targets.baseline_array(targets.parse_baseline(2), x), np.full(x.shape, 2.0)
    )
    mean = targets.baseline_array(targets.parse_baseline("mean", allow_mean=True), x, 1)
    np.testing.assert_allclose(mean[0, :, 0, 0], [1.5, 5.5, 9.5])
    with pytest.raises(ValueError, match="'mean'"):
        targets.parse_baseline("median", allow_mean=True)
    with pytest.raises(ValueError, match="finite"):
        targets.parse_baseline(float("nan"))
    one = targets.baseline_array(targets.parse_baseline(np.ones((3, 2, 2))), x)
    assert one.shape == x.shape
    with pytest.raises(ValueError, match="baseline has shape"):
        targets.baseline_array(targets.parse_baseline(np.ones((3, 2))), x)
    assert targets.baseline_batch_shape((4, 3), (4, 3)) == "per-doc"
    assert targets.baseline_batch_shape((3,), (4, 3)) == "one"
    assert targets.baseline_batch_shape((1, 3), (4, 3)) == "row"


def test_patch_grid():
    assert patches.patch_size(None, (32, 30)) == (1, 1)
    assert patches.patch_size(None, (32, 30), grid=8) == (4, 4)
    assert patches.patch_size([2, 3], (4, 6)) == (2, 3)
    ids = patches.block_ids((3, 5), (2, 2))
    np.testing.assert_array_equal(ids, [[0, 0, 1, 1, 2], [0, 0, 1, 1, 2], [3, 3, 4, 4, 5]])
    assert patches.grid_shape((3, 5), (2, 2)) == (2, 3)
    for bad in (0, (2,), (1, True), "2"):
        with pytest.raises(ValueError, match="patch_size must be a positive int"):
            patches.patch_size(bad, (4, 6))
