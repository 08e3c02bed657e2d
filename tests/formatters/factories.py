"""Explanations built by hand, without any framework, for the formatter tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from eli5.base import DocWeightedSpans, Explanation, TargetExplanation, WeightedSpans
from PIL import Image

from eli5_nn.layout import Layout
from eli5_nn.modalities.image import EmbeddedImage, normalise
from eli5_nn.results import NNExplanation, NNTargetExplanation


def picture(size: int = 16, seed: int = 0) -> EmbeddedImage:
    """A muted RGB test picture (a grey ramp with a little noise), deterministic."""
    y, x = np.mgrid[0:size, 0:size] / max(1, size - 1)
    grey = 0.35 + 0.3 * (x + y) / 2
    arr = np.stack([grey, grey, grey * 0.95], axis=-1)
    arr = arr + 0.03 * np.random.default_rng(seed).standard_normal(arr.shape)
    data = np.clip(np.rint(arr * 255), 0, 255).astype(np.uint8)
    return EmbeddedImage.from_pil(Image.fromarray(data, mode="RGB"))


def blob(size: int, cy: float, cx: float, sigma: float) -> np.ndarray:
    """A Gaussian bump of height 1 centred at (cy, cx) (fractions of the size)."""
    y, x = np.mgrid[0:size, 0:size] / max(1, size - 1)
    return np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * sigma ** 2))


def image_explanation(
    size: int = 16,
    targets: Sequence[tuple[object, float]] = (("cat", 1.0), ("dog", 0.25)),
    channels: int = 3,
    channels_last: bool = False,
    method: str = "Gradient × Input",
    description: str = "made by hand for the formatter tests",
    estimator: str = "TestNet",
) -> NNExplanation:
    """An image explanation: per target a positive blob and a negative one, the
    signed map scaled by the given peak; attribution (C, H, W) or (H, W, C)."""
    expls = []
    for k, (name, peak) in enumerate(targets):
        pos = blob(size, 0.3 + 0.4 * (k % 2), 0.3, 0.15)
        neg = blob(size, 0.7 - 0.4 * (k % 2), 0.75, 0.12)
        signed = peak * (pos - 0.6 * neg)
        per_channel = np.repeat(signed[None] / channels, channels, axis=0)
        attribution = np.moveaxis(per_channel, 0, -1) if channels_last else per_channel
        expls.append(NNTargetExplanation(
            target=name, score=2.0 * peak, proba=peak / 2, heatmap=normalise(np.abs(signed)),
            attribution=attribution, layout=Layout("HWC" if channels_last else "CHW"),
        ))
    return NNExplanation(estimator=estimator, method=method, description=description,
                         targets=expls, image=picture(size))


def text_explanation(
    tokens: Sequence[str],
    weights: Sequence[float],
    target: object = "positive",
    method: str = "Integrated Gradients",
    description: str = "token attributions made by hand",
    score: float = 1.5,
    proba: float = 0.8,
) -> Explanation:
    """A text explanation as issue 4 shapes it: one span per token occurrence
    with a unique feature name, the heatmap over tokens and (tokens × dims)
    attribution."""
    document = " ".join(tokens)
    spans = []
    pos = 0
    for i, (tok, w) in enumerate(zip(tokens, weights, strict=True)):
        spans.append((f"[{i}] {tok}", [(pos, pos + len(tok))], float(w)))
        pos += len(tok) + 1
    w = np.asarray(weights, dtype=np.float64)
    attribution = np.repeat(w[:, None] / 4, 4, axis=1)
    t = NNTargetExplanation(
        target=target, score=score, proba=proba,
        weighted_spans=WeightedSpans([DocWeightedSpans(document, spans, preserve_density=False)]),
        heatmap=normalise(np.abs(w)), attribution=attribution, layout=Layout("TC"),
    )
    return NNExplanation(estimator="TextNet", method=method, description=description,
                         targets=[t])


def plain_target(name: object) -> TargetExplanation:
    """A target with only a score (no map, no spans)."""
    return TargetExplanation(target=name, score=0.5, proba=0.5)
