"""The Keras model zoo: ``keras.applications`` with random weights (``weights=None``),
small inputs, once per backend (KERAS_BACKEND=tensorflow|jax|torch).

For each architecture of :data:`tests.zoo.table.KERAS_ZOO`: the default call works and
leaves the model as found, the automatic layer is the table's (for ConvNeXtTiny the
residual sum entering global pooling, an operation Keras names itself), and Integrated
Gradients is complete. The models are built with ``classifier_activation=None``: random
softmax outputs are nearly uniform, so completeness would be tested on noise.

JAX compiles every operation of a model's first eager call, which takes minutes for
these applications on a shared CPU; there only ConvNeXtTiny runs, without IG, unless
``ELI5_NN_ZOO_ALL=1``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

import eli5
import keras
import numpy as np
import pytest

import eli5_nn  # noqa: F401  (registers the handlers)
from tests.zoo.table import KERAS_ZOO, ZooCase

from .conftest import BACKEND

SIZE, N_CLASSES = 64, 5
#: IG steps: Gauss-Legendre is complete to 0.1 % here with 8; each chunk shape costs a trace
STEPS = 16
#: input range each application expects (EfficientNet and ConvNeXt rescale inside)
RANGES = {"MobileNetV2": (-1, 1), "ResNet50": (-1, 1), "EfficientNetB0": (0, 255),
          "ConvNeXtTiny": (0, 255)}
CASES = {c.name: c for c in KERAS_ZOO}
ON_JAX = ("ConvNeXtTiny",)
ALL = os.environ.get("ELI5_NN_ZOO_ALL") == "1"
NAMES = [n for n in sorted(CASES) if BACKEND != "jax" or n in ON_JAX or ALL]
_BUILT: dict[str, keras.Model] = {}


def application(name: str) -> keras.Model:
    """The named application, built once per process (random weights, seeded)."""
    if name not in _BUILT:
        keras.utils.set_random_seed(0)
        make: Callable[..., keras.Model] = getattr(keras.applications, name)
        _BUILT[name] = make(weights=None, input_shape=(SIZE, SIZE, 3), classes=N_CLASSES,
                            classifier_activation=None)
    return _BUILT[name]


def doc(name: str) -> np.ndarray:
    lo, hi = RANGES[name]
    rng = np.random.default_rng(1)
    return rng.uniform(lo, hi, (1, SIZE, SIZE, 3)).astype("float32")


def expected_layer(case: ZooCase, model: keras.Model) -> str:
    """The table's layer; ``input:NAME`` is the operation whose output enters NAME."""
    if case.layer.startswith("input:"):
        tensor = model.get_layer(case.layer[len("input:"):]).input
        return str(tensor._keras_history[0].name)
    return case.layer


def state(model: keras.Model) -> tuple[Any, ...]:
    weights = tuple(float(np.sum(np.abs(keras.ops.convert_to_numpy(w)))) for w in model.weights)
    return weights, model.trainable, tuple(layer.trainable for layer in model.layers)


@pytest.mark.parametrize("name", NAMES)
def test_default_call_and_automatic_layer(name: str) -> None:
    model, x = application(name), doc(name)
    before = state(model)
    expl = eli5.explain_prediction(model, x)
    assert state(model) == before, "the call changed the model"
    t = expl.targets[0]
    scores = keras.ops.convert_to_numpy(model(x))
    assert t.target == int(np.argmax(scores[0]))
    assert np.all(np.isfinite(t.heatmap)) and t.heatmap.shape == (SIZE, SIZE)
    found = re.search(r"layer '([^']+)'", expl.description)
    assert found and found.group(1) == expected_layer(CASES[name], model), expl.description
    assert t.layout is not None and t.layout.axes == "HWC"


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.skipif(BACKEND == "jax" and not ALL,
                    reason="JAX compiles ConvNeXtTiny's gradient for a minute; IG on JAX is "
                           "covered by the conformance suite (ELI5_NN_ZOO_ALL=1 runs it here)")
def test_integrated_gradients_is_complete(name: str) -> None:
    model, x = application(name), doc(name)
    expl = eli5.explain_prediction(model, x, method="integrated-gradients", steps=STEPS)
    t = expl.targets[0]
    f = keras.ops.convert_to_numpy(model(x))[0, t.target]
    f0 = keras.ops.convert_to_numpy(model(np.zeros_like(x)))[0, t.target]
    total, delta = float(np.sum(t.attribution)), float(f - f0)
    assert abs(total - delta) <= max(1e-3, 0.02 * abs(delta)), (total, delta)


def test_sigmoid_and_softmax_outputs_give_their_kind() -> None:
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 3))
    h = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, activation="relu")(inp))
    x = np.random.default_rng(0).random((1, 8, 8, 3)).astype("float32")
    for activation in ("sigmoid", "softmax"):
        model = keras.Model(inp, keras.layers.Dense(3, activation=activation)(h))
        expl = eli5.explain_prediction(model, x, targets=[0, 1, 2], method="gradient")
        out = keras.ops.convert_to_numpy(model(x))[0]
        np.testing.assert_allclose([t.proba for t in expl.targets], out, rtol=1e-5)
    model = keras.Model(inp, keras.layers.Dense(1)(h))
    assert eli5.explain_prediction(model, x, method="gradient").targets[0].proba is None


@pytest.mark.parametrize("name", NAMES)
def test_the_graph_gives_the_map_entering_global_pooling(name: str) -> None:
    from eli5_nn.adapters import keras_head

    model = application(name)
    found = keras_head.head_map(model)
    assert found is not None and found.name == expected_layer(CASES[name], model)
    assert found.reduction == "GlobalAveragePooling2D"
    assert found.is_layer == (not CASES[name].layer.startswith("input:"))


def test_the_graph_walk_on_small_models() -> None:
    from eli5_nn.adapters import keras_head

    inp = keras.Input((8, 8, 3))
    base = keras.Model(inp, keras.layers.ReLU(name="r")(keras.layers.Conv2D(4, 3)(inp)))
    nested = keras.Sequential([keras.Input((8, 8, 3)), base,
                               keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
    assert keras_head.automatic_layer(nested)[0] == "r"  # inside the nested model
    small = keras.Sequential([
        keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, padding="same"),
        keras.layers.ReLU(name="relu"), keras.layers.AveragePooling2D(4),
        keras.layers.Flatten(), keras.layers.Dense(3),
    ])
    assert keras_head.automatic_layer(small)[0] == "relu"  # the 8×8 map, not the pooled 2×2
    mlp = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4), keras.layers.Dense(2)])
    assert keras_head.automatic_layer(mlp) is None


@pytest.mark.parametrize("name", NAMES)
def test_auto_layer_through_the_adapter(name: str) -> None:
    from eli5_nn.adapters import auto_layer, get_adapter

    model = application(name)
    adapter = get_adapter(model)
    found = auto_layer.automatic_layer(adapter, adapter.as_batch(doc(name)))
    # a layer, or an operation of the graph (ConvNeXt's residual sum): both are tapped
    assert found is not None and found[0].name == expected_layer(CASES[name], model)
