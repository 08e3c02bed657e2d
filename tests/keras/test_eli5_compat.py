"""eli5 0.16's Keras calls keep working and agree with eli5's own Grad-CAM."""

from __future__ import annotations

import eli5
import keras
import numpy as np
import pytest
from PIL import Image

from eli5_nn.modalities.image import normalise, resize_map

from .conftest import BACKEND


def test_eli5_style_calls(cnn: keras.Model, x: np.ndarray) -> None:
    img = Image.fromarray((x[0] * 255).astype("uint8"))
    ref = eli5.explain_prediction(cnn, x, targets=[2], layer="relu2", image=img)
    assert ref.method == "Grad-CAM"
    assert ref.targets[0].target == 2
    assert ref.image.size == img.size
    hm = ref.targets[0].heatmap
    assert hm.shape == x.shape[1:3] and hm.min() >= 0 and hm.max() <= 1
    for layer in (cnn.layers.index(cnn.get_layer("relu2")), cnn.get_layer("relu2")):
        other = eli5.explain_prediction(cnn, x, targets=[2], layer=layer, image=img)
        np.testing.assert_allclose(other.targets[0].heatmap, hm)
    eli5.format_as_image(ref)


@pytest.mark.skipif(BACKEND != "tensorflow",
                    reason="eli5 0.16's explain_prediction_keras runs only on TensorFlow")
@pytest.mark.parametrize("layer", ["conv2", "relu2", "relu1"])
def test_heatmap_agrees_with_eli5_keras(cnn: keras.Model, x: np.ndarray, layer: str) -> None:
    from eli5.keras.explain_prediction import explain_prediction_keras

    theirs = explain_prediction_keras(cnn, x, targets=[1], layer=layer)
    ours = eli5.explain_prediction(cnn, x, targets=[1], layer=layer)
    assert ours.targets[0].target == theirs.targets[0].target
    assert ours.targets[0].score == pytest.approx(theirs.targets[0].score, rel=1e-5)
    # eli5's heatmap is at the layer's resolution, ours at the input's
    expected = normalise(resize_map(theirs.targets[0].heatmap, x.shape[1:3]))
    np.testing.assert_allclose(ours.targets[0].heatmap, expected, atol=1e-4)
