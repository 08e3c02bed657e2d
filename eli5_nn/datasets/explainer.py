"""Explaining a batch of dataset items: checks, the pipeline, one row per (item, target).

:class:`DatasetExplainer` is what every engine runs: :func:`eli5_nn.explain_dataset`
calls it chunk by chunk on one machine, and Ray actors call it on theirs. Users can
also hand it to ``ray.data.Dataset.map_batches`` themselves.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..adapters import get_adapter
from ..errors import Eli5NNError, ExplanationError
from ..explain import explain_predictions
from ..methods import get_method
from .sources import Items, IterableSource

logger = logging.getLogger(__name__)

ITEM_ERRORS = (Eli5NNError, ValueError, TypeError, RuntimeError, IndexError)


def resolve_model(model: Any) -> Any:
    """``model`` itself, or what it returns when it is a loader (a function or
    ``functools.partial`` without arguments that returns the model)."""
    try:
        get_adapter(model)
        return model
    except TypeError:
        if callable(model):
            loaded = model()
            get_adapter(loaded)
            return loaded
        raise


class DatasetExplainer:
    """Explains batches of items and returns one row per (item, explained target).

    Parameters
    ----------
    model : torch.nn.Module, keras.Model, or a callable returning one
        The classifier. A callable (e.g. ``functools.partial(keras.saving.load_model,
        "m.keras")``) is called once, when the explainer is made: on Ray, once per actor.
    method : str
        The explanation method, as for :func:`eli5_nn.explain_predictions`.
    full : bool
        Keep the full attribution tensor; default the attribution reduced as the
        heatmap is (channels summed for images, one value per token for text).
    faithfulness : bool
        Also store each target's deletion and insertion AUC.
    item_shape : tuple of int, optional
        The shape every item must have; default the shape of the first good item.
    **explain_args
        Passed on to :func:`eli5_nn.explain_predictions` (``targets``, ``layer``,
        ``steps``, ``random_state``, ``batch_size``...).

    Examples
    --------
    With Ray Data, on a dataset whose rows hold an ``"x"`` array (and optionally
    ``"id"`` and ``"label"``)::

        ds = ray.data.from_numpy(x).map(lambda r: {"x": r["data"]})
        out = ds.map_batches(DatasetExplainer, fn_constructor_args=(load_model,),
                             fn_constructor_kwargs={"method": "integrated-gradients"},
                             batch_size=32, concurrency=4, num_gpus=1)
        out.write_parquet("explained/")
    """

    def __init__(self, model: Any, method: str = "grad-cam", *, full: bool = False,
                 faithfulness: bool = False, item_shape: Sequence[int] | None = None,
                 **explain_args: Any) -> None:
        self.model = resolve_model(model)
        self.spec = get_method(method)
        self.full = full
        self.faithfulness = faithfulness
        self.item_shape = None if item_shape is None else tuple(int(s) for s in item_shape)
        explain_args.pop("progress", None)
        self.explain_args = dict(explain_args)

    # -- the engines' entry point ----------------------------------------------------------
    def explain_items(self, items: Items) -> tuple[dict[str, list[Any]], list[dict[str, Any]]]:
        """Columns of the explained rows and the error rows of ``items``."""
        errors: list[dict[str, Any]] = []
        good: list[int] = []
        for k in range(len(items)):
            reason = items.errors[k] or self.check(items.x[k])
            if reason:
                stage = "load" if items.errors[k] else "check"
                errors.append(_error(items.start + k, items.ids[k], stage, reason))
            else:
                good.append(k)
        columns: dict[str, list[Any]] = {}
        if good:
            self._explain_rows(items, good, columns, errors)
        errors.sort(key=lambda e: e["index"])
        return columns, errors

    def check(self, x: np.ndarray | None) -> str | None:
        """Why item ``x`` cannot be explained, or ``None``."""
        if x is None:
            return "no input"
        if self.item_shape is None:
            self.item_shape = tuple(x.shape)
        if tuple(x.shape) != self.item_shape:
            return f"wrong shape {tuple(x.shape)}; the items have shape {self.item_shape}"
        if np.issubdtype(x.dtype, np.floating) and not np.all(np.isfinite(x)):
            return f"the input holds {int(np.sum(~np.isfinite(x)))} NaN or infinite values"
        return None

    def _explain_rows(self, items: Items, good: list[int], columns: dict[str, list[Any]],
                      errors: list[dict[str, Any]]) -> None:
        x = np.stack([items.x[k] for k in good])  # type: ignore[misc]
        try:
            expls = self._explain(x)
        except ITEM_ERRORS as exc:
            if len(good) == 1:
                errors.append(_error(items.start + good[0], items.ids[good[0]], "explain",
                                     f"{type(exc).__name__}: {exc}"))
                return
            logger.info("a batch failed (%s); explaining its items one by one", exc)
            for k in good:  # find the items that fail; the others give the same rows
                self._explain_rows(items, [k], columns, errors)
            return
        predicted = self._predicted(x, expls)
        for j, (k, expl) in enumerate(zip(good, expls, strict=True)):
            for rank, t in enumerate(expl.targets or []):
                self._add_row(columns, t, items, k, rank, int(predicted[j]))

    def _explain(self, x: np.ndarray) -> list[Any]:
        return explain_predictions(self.model, x, method=self.spec.key, progress=False,
                                   faithfulness=self.faithfulness, **self.explain_args)

    def _predicted(self, x: np.ndarray, expls: list[Any]) -> np.ndarray:
        """The top class of each item: the first target when the top class was explained,
        else one forward pass."""
        if self.explain_args.get("targets") is None:
            return np.array([int(e.targets[0].target) for e in expls], dtype=np.int64)
        adapter = get_adapter(self.model)
        with adapter.session():
            scores = adapter.forward(adapter.as_batch(x))
        return np.asarray(scores).argmax(axis=1)

    def _add_row(self, columns: dict[str, list[Any]], t: Any, items: Items, k: int,
                 rank: int, predicted: int) -> None:
        attribution = np.asarray(t.attribution, dtype=np.float32)
        reduced = attribution if self.full else self.reduce(t)
        heatmap = self.heatmap(t, self.reduce(t) if self.full else reduced)
        row: dict[str, Any] = {
            "index": items.start + k, "id": items.ids[k], "label": items.labels[k],
            "predicted": predicted, "target": int(t.target), "target_rank": rank,
            "score": float(t.score), "proba": None if t.proba is None else float(t.proba),
            "attribution": reduced, "attribution_shape": list(reduced.shape),
            "heatmap": heatmap, "heatmap_shape": list(heatmap.shape),
        }
        if self.faithfulness:
            f = t.faithfulness or {}
            row["deletion_auc"] = f.get("deletion_auc")
            row["insertion_auc"] = f.get("insertion_auc")
        for key, value in row.items():
            columns.setdefault(key, []).append(value)

    # -- attribution reduced as the heatmap is ----------------------------------------------
    def reduce(self, t: Any) -> np.ndarray:
        """The signed attribution with channels summed (one value per pixel, per layer
        cell for CAM methods, per token for text)."""
        a = np.asarray(t.attribution, dtype=np.float32)
        layout = getattr(t, "layout", None)
        if layout is not None and hasattr(layout, "channel_sum"):
            return np.asarray(layout.channel_sum(a), dtype=np.float32)
        heat = np.asarray(t.heatmap)
        if a.ndim == heat.ndim:
            return a
        if a.ndim == 2 and heat.ndim == 1:  # text: tokens × embedding dims
            return a.sum(axis=-1)
        for axis in (0, -1):  # an input-space map: the channel axis leaves the heatmap
            if np.delete(np.array(a.shape), axis).tolist() == list(heat.shape):
                return a.sum(axis=axis)
        raise ExplanationError(
            f"the result states no layout for its attribution of shape {a.shape}, so its "
            "channel axis is unknown; pass full=True to keep the full tensor"
        )

    def heatmap(self, t: Any, reduced: np.ndarray) -> np.ndarray:
        """The display map in [0, 1]; for CAM methods on images at the layer's resolution
        (text maps stay one value per real token)."""
        heat = np.asarray(t.heatmap, dtype=np.float32)
        if self.spec.space != "layer" or heat.ndim < 2 or reduced.shape == heat.shape:
            return heat
        relu = self.explain_args.get("relu")
        m = np.abs(reduced) if relu is False else np.clip(reduced, 0.0, None)
        top = float(m.max()) if m.size else 0.0
        return (m / top if top > 0 else np.zeros_like(m)).astype(np.float32)

    # -- Ray Data: ds.map_batches(DatasetExplainer, ...) -------------------------------------
    def __call__(self, batch: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Explain a Ray Data batch (``"x"``, optional ``"id"``, ``"label"``, ``"index"``).

        Returns one row per (item, target) with the columns of the ``items`` table;
        items that cannot be explained come back as one row with ``target`` -1 and
        the reason in ``error`` (empty for explained rows).
        """
        start = int(np.asarray(batch["index"])[0]) if "index" in batch else 0
        items = IterableSource.unpack(dict(batch), start)
        if "index" in batch:
            items.ids = [str(i) for i in np.asarray(batch.get("id", batch["index"]))]
        columns, errors = self.explain_items(items)
        columns.setdefault("index", [])
        columns["error"] = [""] * len(columns["index"])
        for e in errors:
            for key in columns:
                columns[key].append(_failed_value(key, e))
        return {k: _column(v) for k, v in columns.items()}


def _failed_value(key: str, error: dict[str, Any]) -> Any:
    if key in ("index", "id"):
        return error[key]
    if key == "error":
        return f"{error['stage']}: {error['reason']}"
    if key in ("target", "predicted", "label", "target_rank"):
        return -1
    if key.endswith("_shape"):
        return []
    if key in ("attribution", "heatmap"):
        return np.zeros(0, dtype=np.float32)
    return np.nan


def _column(values: list[Any]) -> np.ndarray:
    if values and isinstance(values[0], np.ndarray):
        flat = [np.asarray(v, dtype=np.float32).ravel() for v in values]
        out = np.empty(len(flat), dtype=object)
        out[:] = flat
        return out
    if values and isinstance(values[0], list):
        out = np.empty(len(values), dtype=object)
        out[:] = [np.asarray(v, dtype=np.int32) for v in values]
        return out
    return np.asarray([np.nan if v is None else v for v in values])


def _error(index: int, id_: str, stage: str, reason: str) -> dict[str, Any]:
    return {"index": index, "id": id_, "stage": stage, "reason": reason}

