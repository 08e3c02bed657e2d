"""Importing eli5-nn imports no framework, and keeps eli5 from importing Keras.

Each check runs in a fresh Python process: what matters is which modules a
new process imports.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

TORCH_EXPLANATION = """
import eli5_nn, eli5          # the README's imports
import sys, torch
from tests import models
model = models.plain_cnn(n_classes=5).eval()
expl = eli5.explain_prediction(model, torch.rand(1, 3, 32, 32), method="integrated-gradients")
assert isinstance(expl, eli5_nn.NNExplanation) and expl.targets[0].heatmap.shape == (32, 32)
expls = eli5_nn.explain_predictions(model, torch.rand(2, 3, 32, 32))
print("loaded:", sorted({"tensorflow", "jax", "keras"} & set(sys.modules)))
"""

KERAS_AFTER = """
import eli5_nn, eli5, sys
import keras, numpy as np
inp = keras.Input((8, 8, 1))
h = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inp)
model = keras.Model(inp, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(h)))
x = np.random.default_rng(0).random((1, 8, 8, 1)).astype("float32")

def ours():
    expl = eli5.explain_prediction(model, x, method="gradient")
    return isinstance(expl, eli5_nn.NNExplanation) and expl.targets[0].heatmap.shape == (8, 8)

assert ours(), "a Keras model imported after eli5_nn must reach eli5-nn's handler"
{extra}
print("ok")
"""

# eli5's own Keras module loaded on demand: it registers its Grad-CAM again,
# eli5-nn's handler stays on top; eli5's functions stay reachable
LOAD_ELI5_KERAS = """
from eli5.keras.explain_prediction import explain_prediction_keras
assert ours(), "eli5-nn's handler must stay registered after eli5.keras loads"
assert callable(eli5.keras.gradcam) or hasattr(eli5.keras.gradcam, "gradcam")
"""


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "OMP_NUM_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "3",
               "PYTHONPATH": str(ROOT), **env}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False, cwd=ROOT, env=environ, timeout=600)


def test_explaining_a_torch_model_imports_neither_tensorflow_nor_jax():
    out = _python(TORCH_EXPLANATION)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "loaded: []" in out.stdout, out.stdout


def test_a_keras_model_imported_after_eli5_nn_reaches_the_keras_handler():
    # on the torch backend the Keras model is also a torch.nn.Module
    out = _python(KERAS_AFTER.replace("{extra}", "assert isinstance(model, __import__('torch')"
                                      ".nn.Module)\n" + LOAD_ELI5_KERAS),
                  KERAS_BACKEND="torch")
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-3000:]


def test_eli5_imported_first_still_gives_eli5_nn_the_keras_models():
    code = "import eli5\n" + KERAS_AFTER.replace("{extra}", "")
    out = _python(code, KERAS_BACKEND="jax")
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-3000:]


def test_show_prediction_of_a_text_model_shows_the_class_score_and_legend():
    import eli5
    import torch

    from tests.text.models import TextCNN

    torch.manual_seed(0)
    model = TextCNN().eval()
    ids = torch.tensor([[3, 4, 5, 6, 0, 0]])
    shown = eli5.show_prediction(model, ids, tokens=["a", "fine", "<film>", "here", "", ""],
                                 pad_value=0, target_names=["neg", "pos"], targets=[1],
                                 method="gradient-x-input")
    html = shown.data
    assert "pos, score " in html and "p=" in html  # the class, its score and probability
    assert "token weight (green: for the target, red: against)" in html  # the legend
    assert "&lt;film&gt;" in html and "<film>" not in html
