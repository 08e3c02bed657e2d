"""The model-parameter randomisation test (Adebayo et al. 2018, "Sanity Checks for
Saliency Maps")."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ..adapters import get_adapter
from ..adapters.base import ModelInput
from ..errors import Eli5NNTypeError, ExplanationError
from ..explain import explain_prediction_nn
from ..results import RandomizationCheck
from ..targets import class_index
from .features import checked_shape


def randomization_check(
    model: Any,
    doc: Any,
    method: str = "gradient",
    *,
    target: Any = None,
    cascading: bool = True,
    random_state: int = 0,
    **kwargs: Any,
) -> RandomizationCheck:
    """The model-parameter randomisation test (Adebayo et al. 2018).

    An explanation that reflects the model must change when the model's
    learned parameters are destroyed. On a copy of the model, the layers with
    trainable parameters are randomised from the top (nearest the output)
    down; after each step the copy is explained again (same method, target
    and arguments) and the Spearman rank correlation between the original and
    the new heatmap is recorded. The user's model is never changed.

    Randomising a layer replaces each of its trainable parameter tensors by
    Gaussian values with that tensor's own mean and standard deviation, so
    activations keep their scale (BatchNorm running statistics are kept).

    Parameters
    ----------
    model : torch.nn.Module or keras.Model
        The classifier.
    doc : numpy.ndarray or framework tensor
        One input with a leading batch axis of 1.
    method : str
        Attribution method, as in ``explain_prediction`` (default ``"gradient"``).
    target : int or class name, optional
        Class to explain with every model; default the trained model's top class.
    cascading : bool
        ``True`` (default): randomise cumulatively, top down. ``False``:
        randomise one layer at a time on a fresh copy (the "independent" test).
    random_state : int
        Seed of the random parameters (layer ``i`` uses seed ``random_state + i``).
    **kwargs
        Passed to ``explain_prediction`` (``layer``, ``steps``, ``tokens``...),
        except ``targets`` / ``top_targets``.

    Returns
    -------
    RandomizationCheck
        The layers in the order they were randomised, the rank correlation
        after each step and the heatmaps. A map where all values are equal has
        no ranking: its correlation is reported as 0 with a warning.
    """
    for name in ("targets", "top_targets"):
        if name in kwargs:
            raise Eli5NNTypeError(
                f"randomization_check explains one class: pass target= instead of {name}="
            )
    adapter = get_adapter(model)
    with adapter.session():
        x = adapter.as_batch(doc)
        checked_shape(adapter, x.ids if isinstance(x, ModelInput) else x, "randomization_check")
        scores = adapter.forward(x)
        if target is None:
            cls = int(np.argmax(scores[0]))
        else:
            cls = class_index(target, kwargs.get("target_names"), scores.shape[1])
        layers = adapter.parameter_layers(x)
    if not layers:
        raise ExplanationError(
            f"{adapter.model_name()} has no layer with trainable parameters to randomise"
        )

    def heatmap(m: Any) -> np.ndarray:
        expl = explain_prediction_nn(m, doc, method=method, targets=[cls], **kwargs)
        return np.asarray(expl.targets[0].heatmap, dtype=np.float64)

    original = heatmap(model)
    copy = adapter.copy_model()
    maps, corrs = [], []
    for i, ref in enumerate(layers):
        if not cascading and i:
            copy = adapter.copy_model()
        adapter.randomize_layer(copy, ref, random_state + i)
        maps.append(heatmap(copy))
        corrs.append(spearman(original, maps[-1], ref.name))
    return RandomizationCheck(
        method=method, target=cls, cascading=cascading, layers=[r.name for r in layers],
        correlations=np.asarray(corrs), original=original, heatmaps=maps,
    )


def spearman(a: np.ndarray, b: np.ndarray, where: str) -> float:
    """Spearman rank correlation of two maps (0, with a warning, when one is constant)."""
    ra, rb = ranks(a), ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        warnings.warn(
            f"a heatmap is constant after randomising {where!r}: no ranking to compare; "
            "its rank correlation is reported as 0",
            stacklevel=3,
        )
        return 0.0
    return float(np.corrcoef(ra, rb)[0, 1])


def ranks(a: np.ndarray) -> np.ndarray:
    """Ranks of the values of ``a`` (flattened), ties given their average rank."""
    _, inverse, counts = np.unique(np.ravel(a), return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return ((ends - counts + ends - 1) / 2.0)[inverse.ravel()]


__all__ = ["randomization_check"]
