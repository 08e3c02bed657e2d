"""The public entry points: :func:`explain_prediction_nn` and :func:`explain_predictions`.

Both run the one pipeline (:mod:`eli5_nn.pipeline`); this module holds their
documentation and the optional faithfulness scores.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping
from typing import Any

from eli5.base import Explanation

from .errors import ExplanationError
from .methods.params import arguments_doc
from .pipeline import explain_batch

#: scorers that modules above the pipeline register (eli5_nn.metrics: ``"faithfulness"``)
_SCORERS: dict[str, Callable[..., Any]] = {}


def register_scorer(name: str, fn: Callable[..., Any]) -> None:
    """Let ``explain_prediction(..., faithfulness=True)`` call ``fn`` (registered by
    :mod:`eli5_nn.metrics` on import, so this module does not import it)."""
    _SCORERS[name] = fn


def explain_prediction_nn(model: Any, doc: Any, **kwargs: Any) -> Explanation:
    """Explain one prediction of a neural-network classifier.

    This is what ``eli5.explain_prediction(model, doc, ...)`` runs for
    ``torch.nn.Module`` models once ``eli5_nn`` is imported.

    Parameters
    ----------
    model : torch.nn.Module or keras.Model
        A classifier returning class scores (logits or probabilities) of shape
        (batch, n_classes).
    doc : numpy.ndarray or tensor, or a tuple / dict of them
        One input with a leading batch axis of 1, e.g. (1, C, H, W) for an
        image, or token ids (1, T) for a text model. A model with extra inputs
        (lengths, a mask) takes a tuple (token ids first) or a dict (token ids
        under ``input_ids``/``token_ids``/``ids``/``tokens``/``x``, else the
        first key); attribution goes to the token ids. A Hugging Face
        tokenizer's ``BatchEncoding`` is such a dict (``input_ids``,
        ``attention_mask``, ``token_type_ids``...; keys models do not take,
        like ``offset_mapping``, are dropped).
    method : str
        Case and separators do not matter (``"Grad-CAM"``, ``"grad_cam"``).
        ``"grad-cam"`` (default), ``"grad-cam++"``, ``"gradient"``,
        ``"gradient-x-input"``, ``"smoothgrad"``, ``"integrated-gradients"``,
        ``"fullgrad"`` (images); for text also ``"occlusion"`` and
        ``"attention"`` (not ``"fullgrad"``); ``"cd"`` (contextual
        decomposition, PyTorch models only): the CD score of each token, or of
        each block of a grid over the image (``patch_size``). Text gradient methods work in
        embedding space: ``gradient``/``smoothgrad`` give the gradient's norm
        per token, ``gradient-x-input``/``integrated-gradients`` the signed sum
        over the embedding dimensions (IG from the padding embedding: the
        padding token's embedding at every position as the output of the
        embedding layer, what the model adds later — positions, segments,
        the attention mask — as for the doc; the weights sum to the score
        minus the score of that baseline). ``"attention-rollout"``
        (vision and text transformers): attention rolled out through every
        layer (Abnar & Zuidema 2020), the class token's row.
    targets : list of int (or class names), optional
        Classes to explain, in order; default the top class. For several docs,
        one list per doc (``None`` in it: that doc's top class).
    top_targets : int, optional
        Explain the ``top_targets`` highest-scoring classes.
    target_names : list or dict, optional
        Class names; ``TargetExplanation.target`` then holds the name.
    layout : str, dict or eli5_nn.Layout, optional
        How the axes of the tapped tensor read: the CAM layer's output for CAM
        methods, the input otherwise (for text: the embedding output). An axis
        string (``"NCHW"``, ``"NHWC"``, ``"NTC"``...) or
        ``{"axes": "NTC", "prefix_tokens": 1, "grid": (14, 14)}`` for a token
        sequence covering an image. Default: as the adapter states it from the
        model; give it where the model is unusual. It is kept on each target
        as ``layout``.
    output : str, optional
        What the model's outputs are: ``"logits"`` (``proba`` is their
        softmax), ``"probabilities"`` (as given: a final softmax, or per-label
        sigmoids), ``"multilabel"`` (logits given a sigmoid per label) or
        ``"regression"`` (``proba`` is None). Default: as the model states it
        (a final Softmax/Sigmoid, a Hugging Face config's ``problem_type``);
        else one output is a regression, and several are probabilities where
        every row is a distribution, else logits. The description says which.
    image : PIL.Image.Image or list of them, optional
        Picture to draw on (one for every doc, or one per doc); default made
        from ``doc``. A PIL image may also be given as ``doc``: it is converted
        to RGB or grayscale values in [0, 1] as the model takes them (the
        description says how) and drawn on.
    relu : bool, optional
        Keep only positive evidence (default for CAM methods); for gradient
        methods ``relu=True`` shows the positive part of the channel sum.
    counterfactual : bool
        Explain what speaks against the target (negated score).
{method_arguments}
    batch_size : int, optional
        Inputs per forward/backward pass; default chosen to fit a memory budget
        per pass (384 MiB on CPU, 2 GiB on accelerators).
    tokens : list of str, optional
        Text: one string per position of ``doc`` (padding included); default
        the ids as strings.
    tokenizer : transformers tokenizer, optional
        Text: the Hugging Face tokenizer that made ``doc``; the tokens are then
        spelled as it spells them (word pieces as such: ``"##s"``,
        ``"Ġthe"``), and its special tokens (``[CLS]``, ``[SEP]``, ``<s>``,
        ``</s>``, padding) are left out of the heatmap and spans, like padding.
    pad_value, pad_token
        Text: the padding id, or the token that marks padding; default the
        embedding's own padding id (``padding_idx``, Keras ``mask_zero``).
        Padding is left out of heatmaps and spans.
    document : str, optional
        Text: the original document; spans then point into it (the tokens must
        appear in it in order). Default: the tokens joined by spaces.
    progress : bool, optional
        Show a progress bar (default: when the call takes many passes).
    faithfulness : bool
        Also score each target's map by deletion and insertion
        (:func:`eli5_nn.metrics.faithfulness`): ``target.faithfulness`` then
        holds ``{"deletion_auc": ..., "insertion_auc": ...}``.

    Returns
    -------
    eli5.base.Explanation
        Per target a ``heatmap`` in [0, 1] ((H, W) for images, one value per
        real token for text), the raw signed ``attribution``, ``score`` and
        ``proba``; ``image`` for images; ``weighted_spans`` (one signed span
        per token occurrence) and the top tokens as ``feature_weights`` for
        text.
    """
    faithful = kwargs.pop("faithfulness", False)
    explanations = explain_batch(model, doc, single=True, extra=("faithfulness",), **kwargs)
    if faithful:
        _attach_faithfulness(model, doc, explanations, kwargs, single=True)
    return explanations[0]


def explain_predictions(model: Any, docs: Any, **kwargs: Any) -> list[Explanation]:
    """Explain the predictions of ``model`` on a batch of N docs, in batched passes.

    Takes the arguments of :func:`explain_prediction_nn`; ``targets`` may also
    hold one list per doc, ``target_names`` and ``baseline`` may be shared or
    per doc, and ``progress`` (bool, default: shown when the work takes many
    passes) controls the tqdm progress bar. Returns N explanations, each equal
    to explaining that doc alone.
    """
    faithful = kwargs.pop("faithfulness", False)
    explanations = explain_batch(model, docs, single=False, extra=("faithfulness",), **kwargs)
    if faithful:
        _attach_faithfulness(model, docs, explanations, kwargs, single=False)
    return explanations


def _doc_at(docs: Any, i: int) -> Any:
    """Doc ``i`` of a batch (each part of a tuple or dict batch), batch axis kept."""
    if isinstance(docs, tuple):
        return tuple(v[i:i + 1] for v in docs)
    if isinstance(docs, Mapping):
        return {k: v[i:i + 1] for k, v in docs.items()}
    return docs[i:i + 1]


def _attach_faithfulness(
    model: Any, docs: Any, explanations: list[Explanation], kwargs: dict[str, Any],
    single: bool,
) -> None:
    """Deletion/insertion AUCs of every target, on ``target.faithfulness``."""
    faithfulness = _SCORERS.get("faithfulness")
    if faithfulness is None:
        raise ExplanationError(
            "faithfulness=True needs eli5_nn.metrics (import eli5_nn, which loads it)"
        )
    options = {k: kwargs[k] for k in ("target_names", "pad_value") if kwargs.get(k) is not None}
    for i, expl in enumerate(explanations):
        doc = docs if single else _doc_at(docs, i)
        for target, scores in zip(
            expl.targets or [], faithfulness(model, doc, expl, **options), strict=True
        ):
            target.faithfulness = scores


explain_prediction_nn.__doc__ = (explain_prediction_nn.__doc__ or "").replace(
    "{method_arguments}", textwrap.indent(arguments_doc(), "    ")
)
