"""The Keras 3 adapter: one backend-neutral adapter, one gradient shim per backend.

Layer outputs are reached by wrapping the ``call`` of the layers a call needs,
for that call only (:mod:`.keras_calls`): the wrapper hands the output to the
backend shim's tap (``tape.watch`` on TensorFlow, ``A + 0`` as a ``jax.vjp``
primal on JAX, a fresh autograd leaf on torch) and only acts for the thread
that installed it. A layer whose output never passes through its ``__call__``
in the forward pass cannot be reached and is reported as such. Everything is
restored in ``finally`` blocks; what a model needs across calls (layer output
shapes per input signature) is cached weakly on the model.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

import keras
import numpy as np
from keras import ops as K

from ..layout import Layout
from . import common, keras_backends, keras_inputs, keras_layers
from .base import (
    ACCELERATOR_PASS_BUDGET,
    CPU_PASS_BUDGET,
    BiasSite,
    CotangentFn,
    ExplanationError,
    GradPass,
    LayerRef,
    ModelInput,
    Replacement,
    StopForward,
    Tensor,
    cuts_at_layer,
    pack_input,
)
from .keras_calls import (
    PreActivation,
    attention_calls,
    intercept,
    layer_of,
    substituted,
    unreachable,
)
from .keras_ops import KerasOps

__all__ = ["KerasAdapter", "KerasOps", "PreActivation"]

class KerasAdapter:
    """:class:`~eli5_nn.adapters.base.Adapter` for a ``keras.Model`` (Keras 3)."""

    framework = "keras"
    #: the most rows of one automatic pass without a graph (occlusion variants): Keras
    #: runs recurrent layers step by step with a fixed cost per call, so fewer, larger
    #: forward chunks win (BiLSTM occlusion 2x slower at 512 rows than at 4096)
    FORWARD_ROWS_CAP = 4096

    def __init__(self, model: Any) -> None:
        self.model = model
        self.backend = keras.backend.backend()
        self.shim = keras_backends.load(self.backend)
        self.ops = KerasOps()
        self._top = list(model.layers)
        layers = keras_layers.flatten(self._top)
        self.data_format = keras_layers.image_format(layers)
        # then the functional graphs' own operations (``a + b``...): nameable and tappable
        self._all = layers + keras_layers.graph_operations(model, layers)
        self._last_batch: Tensor | None = None
        self._recurrent = any(
            isinstance(layer, (keras.layers.RNN, keras.layers.Bidirectional))
            for layer in layers)
        self._forward_rows: int | None = None

    # -- identity, state ----------------------------------------------------------------------
    def model_name(self) -> str:
        return str(getattr(self.model, "name", None) or type(self.model).__name__)

    @contextmanager
    def session(self) -> Iterator[None]:
        with common.model_lock(self.model):
            yield

    # -- inputs -----------------------------------------------------------------------------
    def as_batch(self, doc: Any) -> Tensor:
        dtype = keras_inputs.input_dtype(self.model)
        if isinstance(doc, (tuple, dict)):
            # several inputs: each converted as it is; the model checks their shapes
            x = pack_input(doc, lambda v: keras_inputs.convert(keras_inputs.to_numpy(v), dtype))
        else:
            arr = keras_inputs.to_numpy(doc)
            keras_inputs.check_shape(arr, keras_inputs.expected_shape(self.model),
                                     self.model_name())
            x = keras_inputs.convert(arr, dtype)
        self._last_batch = x[:1]
        return x

    def is_floating(self, x: Tensor) -> bool:
        if isinstance(x, ModelInput):
            x = x.ids
        return "float" in keras.backend.standardize_dtype(x.dtype)

    # -- forward / backward ---------------------------------------------------------------
    def _scores(self, out: Any) -> Tensor:
        if isinstance(out, dict):
            out = out.get("logits", next(iter(out.values()), None))
        if isinstance(out, (list, tuple)):
            out = out[0] if out else None
        shape = self.ops.shape(out) if out is not None and K.is_tensor(out) else None
        return K.expand_dims(out, -1) if common.check_scores_shape(out, shape) else out

    def _call(self, x: Tensor) -> Any:
        if isinstance(x, ModelInput):
            inputs: Any = (
                list(x.values) if x.keys is None else dict(zip(x.keys, x.values, strict=True))
            )
        else:
            inputs = x
        try:
            return self.shim.call(self.model, inputs)
        except ExplanationError:
            raise
        except Exception as exc:
            known = isinstance(exc, (ValueError, TypeError, IndexError)) or type(
                exc).__name__ in ("InvalidArgumentError", "RuntimeError")
            if not known:
                raise
            shape = self.ops.shape(x.ids if isinstance(x, ModelInput) else x)
            raise ExplanationError(
                f"the model could not run on an input of shape {shape}: {exc}. "
                "Pass one input with a leading batch axis, shaped as model.input_shape."
            ) from exc

    def _replacing(self, replace: Replacement | None, value: Tensor, tapped: bool = False
                   ) -> Any:
        """A context in which ``replace``'s layer outputs ``value`` (``tapped``: its
        output is also intercepted, so its call must run)."""
        if replace is None:
            return ExitStack()
        ref = replace[0]

        def check(got: tuple[int, ...]) -> None:
            if got != self.ops.shape(value):
                raise ExplanationError(
                    f"layer {ref.name!r} outputs shape {got}; its replacement "
                    f"has shape {self.ops.shape(value)}"
                )

        layer = layer_of(ref)
        if isinstance(layer, keras.layers.Embedding) and not tapped:
            # the lookup whose output is replaced is not run at all (text methods
            # replace the embedding output on every pass)
            return substituted(layer, value, lambda ids: check(
                (*self.ops.shape(ids), int(layer.output_dim))))

        def on_output(_pos: int, _n: int, t: Tensor) -> Tensor:
            check(self.ops.shape(t))
            return value

        return intercept([(layer, False)], on_output)

    def forward(self, x: Tensor, replace: Replacement | None = None) -> np.ndarray:
        with self.shim.no_grad(), self._replacing(replace, replace[1] if replace else None):
            scores = self._scores(self._call(x))
        return self.ops.to_numpy(scores).astype(np.float64)

    def activations(
        self, x: Tensor, layers: Sequence[LayerRef], first_only: bool = False
    ) -> dict[LayerRef, list[Tensor]]:
        if first_only and layers and all(self._fed_by_input(ref, x) for ref in layers):
            # layers that read the model's input as it is (a text model's embedding
            # lookup) are run on their own, not through the model's graph
            with self.shim.no_grad():
                return {ref: [layer_of(ref)(x)] for ref in layers}
        out: dict[LayerRef, list[Tensor]] = {ref: [] for ref in layers}

        def on_output(pos: int, _n: int, t: Tensor) -> Tensor:
            if not (first_only and out[layers[pos]]):
                out[layers[pos]].append(t)
            if first_only and all(out.values()):
                raise StopForward
            return t

        with self.shim.no_grad(), intercept([(layer_of(r), False) for r in layers], on_output):
            try:
                self._call(x)
            except StopForward:
                pass
        return out

    def _fed_by_input(self, ref: LayerRef, x: Tensor) -> bool:
        """Whether ``ref``'s layer is called once, in this model's own graph, on the
        model's only input and nothing else, and ``x`` is such an input (its dtype):
        its output on ``x`` is then the layer called on ``x``."""
        if isinstance(x, ModelInput) or isinstance(ref.handle, PreActivation):
            return False
        layer: Any = ref.handle
        if not any(layer is top for top in self._top):
            return False
        try:
            inputs = self.model.inputs
            nodes = layer._inbound_nodes
        except (AttributeError, ValueError):
            return False
        if not inputs or len(inputs) != 1 or len(nodes) != 1:
            return False
        args, kwargs = nodes[0].arguments.args, nodes[0].arguments.kwargs
        got = keras.backend.standardize_dtype(x.dtype)
        want = keras.backend.standardize_dtype(inputs[0].dtype)
        # integer ids of another width (int32 where JAX runs without x64) look up alike
        same = got == want or ("int" in got and "int" in want)
        return (len(args) == 1 and args[0] is inputs[0] and not kwargs and same
                and len(self.ops.shape(x)) == len(inputs[0].shape))

    def attention_weights(self, x: Tensor) -> list[tuple[LayerRef, Tensor]]:
        """Keras ``Attention``/``AdditiveAttention``/``MultiHeadAttention`` are
        called with ``return_attention_scores=True``; another layer whose class
        name contains "Attention" and that returns a tuple gives its last element."""
        with self.shim.no_grad():
            return attention_calls(self.layers(), lambda: self._call(x))

    def embedding_layers(self) -> list[tuple[LayerRef, int, int | None]]:
        return keras_layers.embedding_layers(self.layers())

    def _slots(
        self, x: Tensor, layers: Sequence[LayerRef]
    ) -> tuple[list[tuple[Any, bool]], list[int], list[tuple[tuple[int, ...], str]]]:
        """The layers to wrap, the first slot of each, and every slot's shape and dtype."""
        record = self._record(x)
        n = self.ops.shape(x.ids if isinstance(x, ModelInput) else x)[0]
        watch: list[tuple[Any, bool]] = []
        offsets: list[int] = []
        slots: list[tuple[tuple[int, ...], str]] = []
        for ref in layers:
            layer = layer_of(ref)
            calls = record["calls"].get(id(layer), [])
            if not calls:
                raise ExplanationError(self._unreachable(ref))
            watch.append((layer, isinstance(ref.handle, PreActivation)))
            offsets.append(len(slots))
            slots += [((n, *shape), dtype) for shape, dtype in calls]
        return watch, offsets + [len(slots)], slots

    def _unreachable(self, ref: LayerRef) -> str:
        return unreachable(ref.name, self.model_name())

    def _head(self, ref: LayerRef) -> Any:
        """A functional model of the network after ``ref``'s layer (sharing its
        layers), where the shim asks for one (``HEAD_AFTER_CUT``: JAX, whose
        ``jax.vjp`` traces every operation of a pass, also those before a cut
        layer) and the graph allows it: one output, the layer called once in this
        model's own graph and everything after it depending on the model's input
        only through it. ``None`` otherwise. Built once per model and layer."""
        if not getattr(self.shim, "HEAD_AFTER_CUT", False):
            return None
        layer = layer_of(ref)
        cache = common.model_cache(self.model)
        key = ("head", id(layer))
        if key not in cache:
            head = None
            if not isinstance(ref.handle, PreActivation) and any(
                    layer is top for top in self._top):
                try:
                    outputs = self.model.outputs
                    if len(outputs) == 1:
                        head = keras.Model(layer.output, outputs[0])
                except (AttributeError, ValueError, TypeError):  # not a graph it can cut
                    head = None
            cache[key] = head
        return cache[key]

    def _head_input(self, run: Any, source: Tensor, n_slots: int) -> Tensor | None:
        """The layer's output that the head starts from: the pass up to the layer
        runs here once, without a graph, and stops there (``None`` where the layer
        has several slots or was not reached)."""
        found: list[Tensor] = []

        def stop(_slot: int, t: Tensor) -> Tensor:
            found.append(t)
            raise StopForward

        with self.shim.no_grad():
            try:
                run(source, stop)
            except StopForward:
                pass
        if len(found) != 1 or n_slots != 1:
            return None
        return found[0]

    def gradients(
        self,
        x: Tensor,
        cotangents: CotangentFn,
        *,
        wrt_input: bool,
        layers: Sequence[LayerRef] = (),
        cut_at_layer: bool = False,
        replace: Replacement | None = None,
    ) -> tuple[np.ndarray, list[GradPass]]:
        cut = cuts_at_layer(cut_at_layer, wrt_input, layers)
        watch, bounds, slots = self._slots(x, layers)
        seen = [0] * len(slots)
        tapped = replace is not None and any(
            layer is layer_of(replace[0]) for layer, _pre in watch)

        def run(xi: Tensor, tap: Any) -> Tensor:
            def on_output(pos: int, call_no: int, t: Tensor) -> Tensor:
                slot = bounds[pos] + call_no
                if slot >= bounds[pos + 1]:
                    raise ExplanationError(
                        f"layer {layers[pos].name!r} ran more often than when its output "
                        "shapes were recorded; choose another layer"
                    )
                seen[slot] = 1
                return tap(slot, t)

            with intercept(watch, on_output):
                if replace is None:
                    return self._scores(self._call(xi))
                # the replacement is what the shim differentiates with respect to
                with self._replacing(replace, xi, tapped):
                    return self._scores(self._call(x))

        source = x if replace is None else replace[1]
        head = self._head(layers[0]) if cut else None
        try:
            # with a head, the part before the layer runs once here, untraced, and the
            # head is differentiated with respect to its input (the layer's output)
            act = self._head_input(run, source, len(slots)) if head is not None else None
            if act is not None:
                scores_np, grads = self.shim.head_gradients(head, act, cotangents,
                                                            self._scores)
                rounds = [(None, [g]) for g in grads]
                acts = [act]
            else:
                scores_np, rounds, acts = self.shim.gradients(
                    run, source, cotangents, wrt_input=wrt_input, slots=slots, cut=cut,
                )
        except ValueError as exc:
            if isinstance(exc, ExplanationError):
                raise
            raise ExplanationError(str(exc)) from exc
        for pos, ref in enumerate(layers):
            if not seen[bounds[pos]]:
                raise ExplanationError(self._unreachable(ref))
        spans = {ref: slice(bounds[pos], bounds[pos + 1]) for pos, ref in enumerate(layers)}
        act_map = {ref: [K.stop_gradient(a) for a in acts[sl]] for ref, sl in spans.items()}
        return scores_np, [
            GradPass(input_grad=input_grad, activations=act_map,
                     layer_grads={ref: list(grads[sl]) for ref, sl in spans.items()})
            for input_grad, grads in rounds
        ]

    # -- layers -----------------------------------------------------------------------------
    def layers(self) -> list[LayerRef]:
        return [
            LayerRef(name=layer.name, index=i, handle=layer, kind=type(layer).__name__)
            for i, layer in enumerate(self._all)
        ]

    def find_layer(self, spec: Any) -> LayerRef:
        refs = self.layers()
        # an index counts in model.layers, as model.get_layer(index=i) and eli5 0.16
        return common.find_layer(
            refs, spec, is_layer=lambda s: isinstance(s, keras.Operation),
            model_name=self.model_name(), index_refs=refs[: len(self._top)],
            names_from="model.layers (and of nested models' layers)",
        )

    def _record(self, x: Tensor) -> dict[str, Any]:
        """Output shapes of every layer call on inputs like ``x`` (cached per signature)."""
        cache = common.model_cache(self.model)
        sig = (
            x.signature() if isinstance(x, ModelInput)
            else (self.ops.shape(x)[1:], keras.backend.standardize_dtype(x.dtype))
        )
        key = ("record", tuple(id(layer) for layer in self._all), sig)
        if key in cache:
            return dict(cache[key])
        order: list[tuple[int, tuple[int, ...]]] = []
        calls: dict[int, list[tuple[tuple[int, ...], str]]] = {}

        def on_output(pos: int, _n: int, t: Tensor) -> Tensor:
            shape = self.ops.shape(t)[1:]
            order.append((pos, shape))
            calls.setdefault(id(self._all[pos]), []).append(
                (shape, keras.backend.standardize_dtype(t.dtype))
            )
            return t

        with common.model_lock(self.model), self.shim.no_grad(), intercept(
            [(layer, False) for layer in self._all], on_output
        ):
            self._scores(self._call(x[:1]))
        # every layer output's elements per row, for bytes_per_row
        elements = sum(int(np.prod(shape)) for _pos, shape in order)
        record = {"order": order, "calls": calls, "elements": elements}
        cache[key] = record
        return dict(record)

    # -- layouts ------------------------------------------------------------------------------
    def _image_hw(self, x: Tensor) -> tuple[int, int] | None:
        if isinstance(x, ModelInput) or not self.is_floating(x):
            return None
        row = self.ops.shape(x)[1:]
        if len(row) != 3:
            return None
        return (row[1], row[2]) if self.data_format == "channels_first" else (row[0], row[1])

    def input_layout(self, x: Tensor) -> Layout:
        if isinstance(x, ModelInput) or not self.is_floating(x):
            return Layout("T")
        rank = len(self.ops.shape(x)) - 1
        axes = common.axes_for(rank, 0 if self.data_format == "channels_first" else rank - 1)
        if axes is None:
            raise common.layout_error("the input", self.model_name(), self.ops.shape(x)[1:])
        return Layout(axes)

    def _layout(self, layer: Any, row_shape: tuple[int, ...], x: Tensor) -> Layout | None:
        rank = len(row_shape)
        axes = common.axes_for(rank, keras_layers.channel_index(layer, rank, self.data_format))
        if axes is None:
            return None
        return common.image_layout(axes, self.model, row_shape, self._image_hw(x))

    def layer_layout(self, layer: LayerRef, x: Tensor) -> Layout:
        obj = layer_of(layer)
        calls = self._record(x)["calls"].get(id(obj))
        if not calls:
            raise ExplanationError(self._unreachable(layer))
        shape = calls[0][0]
        found = self._layout(obj, shape, x)
        if found is None:
            raise common.layout_error(f"the output of layer {layer.name!r}", self.model_name(),
                                      shape)
        return found

    def spatial_layers(self, x: Tensor) -> list[tuple[LayerRef, tuple[int, ...], Layout]]:
        refs = self.layers()
        out = []
        for pos, shape in self._record(x)["order"]:
            ref = refs[pos]
            if len(shape) >= 2 and not isinstance(ref.handle, keras.Model):
                found = self._layout(ref.handle, shape, x)
                if found is not None:
                    out.append((ref, shape, found))
        return out

    def decompose(self, x: Tensor, masks: np.ndarray) -> np.ndarray:
        raise ExplanationError(
            "method 'cd' (contextual decomposition) is implemented for PyTorch models only; "
            f"{self.model_name()} is a Keras model. Use e.g. 'integrated-gradients' or "
            "'occlusion' instead."
        )

    # -- what methods need besides -----------------------------------------------------------
    def bias_sites(self) -> list[BiasSite]:
        """Dense/Conv/BatchNorm layers with a bias; where the input is known, only
        those the forward pass reaches (a subclassed model may use a layer's
        weights directly: FullGrad then warns that completeness does not hold)."""
        called = None
        if self._last_batch is not None:
            called = self._record(self._last_batch)["calls"]
        return keras_layers.bias_sites(self.layers(), called)

    def pass_budget_bytes(self) -> int:
        """A larger budget where the model's tensors live on an accelerator."""
        device = ""
        if self._last_batch is not None:
            device = str(getattr(self._last_batch, "device", "") or "")
        on_accelerator = any(tag in device.lower() for tag in ("gpu", "cuda", "tpu"))
        if on_accelerator:
            return ACCELERATOR_PASS_BUDGET
        return int(CPU_PASS_BUDGET * self.shim.CPU_BUDGET_SCALE)

    @property
    def max_forward_rows(self) -> int:
        """The most rows of one automatic pass without a graph (occlusion variants).

        The backend's ``RECURRENT_FORWARD_ROWS`` where the model has a recurrent
        layer (Keras runs it step by step with a fixed cost per step: large chunks
        on TensorFlow and JAX, 256 rows on torch, whose CPU LSTM does better on
        smaller batches); :data:`FORWARD_ROWS_CAP` where the backend sets no byte
        budget (eager TensorFlow: a fixed cost per op); otherwise as many rows as
        fit the backend's ``FORWARD_CHUNK_BYTES`` (past a few tens of MB, XLA's and
        torch's CPU convolutions slow down per row: text CNN occlusion on JAX
        117 ms at 256 rows, 210 ms at 1900).
        """
        if self._forward_rows is not None:
            return self._forward_rows
        if self._recurrent:
            return int(self.shim.RECURRENT_FORWARD_ROWS)
        budget = self.shim.FORWARD_CHUNK_BYTES
        if budget is None or self._last_batch is None:
            return self.FORWARD_ROWS_CAP
        per_row = max(1, self.bytes_per_row(self._last_batch))
        return int(max(1, min(self.FORWARD_ROWS_CAP, budget // per_row)))

    @max_forward_rows.setter
    def max_forward_rows(self, rows: int) -> None:
        """A fixed cap instead of the automatic one."""
        self._forward_rows = int(rows)

    @property
    def max_gradient_rows(self) -> int:
        """The most rows of one automatic pass with a graph (memory allowing): for a
        model with recurrent layers, the backend's ``RECURRENT_FORWARD_ROWS`` as for
        passes without a graph (TensorFlow and JAX step the layer with a fixed cost
        per step: BiLSTM Integrated Gradients of 320 (review, step) rows took 2x the
        floor's one pass in chunks of 256 + 64); else the backend's ``GRADIENT_ROWS``
        (TensorFlow: 1024, as eager ops have a fixed cost each; JAX and torch:
        :data:`MAX_GRADIENT_ROWS`)."""
        rows = int(self.shim.GRADIENT_ROWS)
        if self._recurrent:
            return max(rows, int(self.shim.RECURRENT_FORWARD_ROWS))
        return rows

    def bytes_per_row(self, x: Tensor) -> int:
        record = self._record(x)
        if isinstance(x, ModelInput):
            x = x.ids
        item = np.dtype(keras.backend.standardize_dtype(x.dtype)).itemsize
        acts = int(record["elements"])
        # The sum of every layer output overcounts what a tape keeps (element-wise
        # layers share or drop theirs); 1.25× it matches what PyTorch's saved-tensor
        # hooks measure on the same networks (the torch adapter's estimate).
        return int(1.25 * acts * 4 + 4 * int(np.prod(self.ops.shape(x)[1:])) * item)

    # -- copies with randomised layers (eli5_nn.metrics.randomization_check) --------------
    def copy_model(self) -> Any:
        """``keras.models.clone_model`` with the model's weights copied in (a
        subclassed model needs ``get_config``/``from_config``; its clone is built
        on the last input seen)."""

        def build(clone: Any) -> None:
            if self._last_batch is not None:
                KerasAdapter(clone)._call(self._last_batch)

        with common.model_lock(self.model):
            clone = keras_layers.clone(self.model, build)
        return common.register_copy(clone)

    def parameter_layers(self, x: Tensor) -> list[LayerRef]:
        """Layers (not nested models) with trainable weights, in reverse order of
        their first call in a forward pass on ``x``."""
        refs = self.layers()
        called: list[LayerRef] = []
        for pos, _shape in self._record(x)["order"]:
            ref = refs[pos]
            layer = ref.handle
            if isinstance(layer, keras.Model) or ref in called:
                continue
            if getattr(layer, "trainable_weights", None):
                called.append(ref)
        return called[::-1]

    def randomize_layer(self, copy: Any, layer: LayerRef, seed: int) -> None:
        """Overwrite the trainable weights of ``copy``'s layer at ``layer``'s position."""
        common.check_copy(copy, self.model)
        keras_layers.randomize(copy, layer, seed)
