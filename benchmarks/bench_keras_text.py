"""Keras text methods on every backend against hand-written floors (CPU).

The text CNN and the BiLSTM of ``bench_text`` written in Keras (Embedding →
Conv1D → ReLU → max over time → Dense; Embedding → Bidirectional LSTM → mean
over time → Dense) explain a batch of IMDB-length reviews with
``explain_predictions`` on TensorFlow, JAX and torch, each backend in its own
child process. Floors, in the backend (``bench_keras.Backend``): the embedding
output as the differentiated input of a model of the rest of the network and
one batched backward (gradient × input); the (review, step) units in chunks of
the best size among a few (Integrated Gradients); the temporal map without a
graph before it, then the head (Grad-CAM); every one-token-padded variant in
batched forward passes (occlusion). The sub-models share the model's layers
and are built once, outside the timing. Fewer reviews than on PyTorch: Keras
recurrent layers are slow on the CPU on the JAX and torch backends.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
N_DOCS, LENGTH, VOCAB, DIM = 32, 160, 6000, 32
STEPS = 10


class KerasText:
    """A Keras text model and its parts: body (embeddings → logits), features
    (embeddings → temporal map) and head (map → logits), sharing its layers."""

    def __init__(self, keras: Any, kind: str) -> None:
        layers = keras.layers
        keras.utils.set_random_seed(0)
        self.kind = kind
        self.embedding = layers.Embedding(VOCAB, DIM, name="embedding")
        if kind == "cnn":
            self.name, self.layer = "text CNN", "relu"
            temporal = [layers.Conv1D(64, 3, padding="same", name="conv"),
                        layers.Activation("relu", name="relu")]
            pool = layers.GlobalMaxPooling1D(name="pool")
        else:
            self.name, self.layer = "BiLSTM", "rnn"
            temporal = [layers.Bidirectional(layers.LSTM(32, return_sequences=True),
                                             name="rnn")]
            pool = layers.GlobalAveragePooling1D(name="pool")
        fc = layers.Dense(2, name="fc")

        def to_map(h: Any) -> Any:
            for layer in temporal:
                h = layer(h)
            return h

        ids = keras.Input((LENGTH,), dtype="int32")
        self.model = keras.Model(ids, fc(pool(to_map(self.embedding(ids)))), name=kind)
        emb = keras.Input((LENGTH, DIM))
        self.body = keras.Model(emb, fc(pool(to_map(emb))))
        emb2 = keras.Input((LENGTH, DIM))
        self.features = keras.Model(emb2, to_map(emb2))
        h = keras.Input(tuple(self.features.output.shape[1:]))
        self.head = keras.Model(h, fc(pool(h)))


class TextFloors:
    def __init__(self, keras: Any, tm: KerasText, backend: Any, ids: Any) -> None:
        self.ops, self.tm, self.b, self.ids = keras.ops, tm, backend, ids

    def _embed(self, ids: Any) -> Any:
        return self.b.forward(self.tm.embedding, ids)

    def _cot(self, cls: Any, weight: float = 1.0) -> Any:
        return self.ops.one_hot(cls, 2) * weight

    def gradient_x_input(self) -> Any:
        e = self._embed(self.ids)
        (out,), pull = self.b.vjp(self.tm.body, [e], [0])
        (g,) = pull(self._cot(self.ops.argmax(out, axis=-1)))
        return self.ops.convert_to_numpy(self.ops.sum(g * e, axis=-1))

    def cam(self) -> Any:
        ops = self.ops
        h = self.b.forward(self.tm.features, self._embed(self.ids))
        (out,), pull = self.b.vjp(self.tm.head, [h], [0])
        (g,) = pull(self._cot(ops.argmax(out, axis=-1)))
        w = ops.mean(g, axis=1, keepdims=True)
        return ops.convert_to_numpy(ops.relu(ops.sum(w * h, axis=-1)))

    def integrated_gradients(self, n: int, chunk: int) -> Any:
        ops = self.ops
        e = self._embed(self.ids)
        base = self._embed(ops.zeros_like(self.ids))
        cls = ops.argmax(self.b.forward(self.tm.body, e), axis=-1)
        units = len(self.ids) * n
        parts = []
        for s in range(0, units, chunk):
            u = ops.arange(s, min(s + chunk, units))
            doc, step = u // n, u % n
            alpha = ops.reshape((ops.cast(step, "float32") + 0.5) / n, (-1, 1, 1))
            e_d, b_d = ops.take(e, doc, axis=0), ops.take(base, doc, axis=0)
            _, pull = self.b.vjp(self.tm.body, [b_d + alpha * (e_d - b_d)], [0])
            (g,) = pull(self._cot(ops.take(cls, doc, axis=0), 1.0 / n))
            parts.append(g)
        # units are review-major: sum the steps of each review
        total = ops.sum(ops.reshape(ops.concatenate(parts, axis=0), (-1, n, LENGTH, DIM)),
                        axis=1)
        return ops.convert_to_numpy(ops.sum((e - base) * total, axis=-1))

    def occlusion(self, chunk: int) -> Any:
        """Every real token replaced by padding, one variant at a time, in chunks."""
        import numpy as np

        ops = self.ops
        ids = ops.convert_to_numpy(self.ids)
        full = self.b.forward(self.tm.model, self.ids)
        cls = ops.argmax(full, axis=-1)
        doc, pos = np.nonzero(ids != 0)
        drops = []
        for s in range(0, len(doc), chunk):
            d, p = doc[s:s + chunk], pos[s:s + chunk]
            padded = ids[d]
            padded[np.arange(len(d)), p] = 0
            out = self.b.forward(self.tm.model, ops.convert_to_tensor(padded))
            d_t = ops.convert_to_tensor(d)
            c = ops.take(cls, d_t, axis=0)
            drops.append(ops.take_along_axis(ops.take(full, d_t, axis=0) - out, c[:, None],
                                             axis=1))
        return ops.convert_to_numpy(ops.concatenate(drops, axis=0))


def _measure(backend_name: str, quick: bool) -> list[dict[str, Any]]:
    import keras

    sys.path.insert(0, str(ROOT))
    import eli5_nn
    from benchmarks.bench_keras import Backend
    from benchmarks.timing import best_chunk, interleaved, reviews, speed_row

    n_docs = N_DOCS  # the size the targets are set at; --quick runs fewer rounds
    ids_np = reviews(n_docs).astype("int32")
    ids = keras.ops.convert_to_tensor(ids_np)
    backend = Backend(backend_name)
    repeat, min_time = (1, 0.3) if quick else (2, 2.0)
    # the calls of seconds (steps, occlusion): best of 3 alternated rounds (one round
    # left a ratio to chance: Keras-TF BiLSTM IG 1.08 and 1.34 in two runs of one build)
    rounds = 3
    rows = []
    for kind in ("cnn", "lstm"):
        tm = KerasText(keras, kind)
        fl = TextFloors(keras, tm, backend, ids)
        fw = f"keras-{backend_name} {tm.name}"

        def ours(method: str, tm: KerasText = tm, **kw: Any) -> Callable[[], Any]:
            return lambda: eli5_nn.explain_predictions(tm.model, ids_np, method=method,
                                                       pad_value=0, progress=False, **kw)

        for method, floor, note in (
            ("grad-cam", fl.cam, f"map of {tm.layer!r} without a graph before it, head"),
            ("gradient-x-input", fl.gradient_x_input, "one batched backward to the embedding"),
        ):
            kw = {"layer": tm.layer} if method == "grad-cam" else {}
            t_ours, t_floor = interleaved(ours(method, **kw), floor, repeat, 1, min_time)
            rows.append(speed_row(fw, f"{method} x{n_docs}", t_ours, t_floor, note))
        options: Sequence[int] = (64, 160, 320)
        best = best_chunk(lambda c, fl=fl: lambda: fl.integrated_gradients(STEPS, c), options)
        t_ours, t_floor = interleaved(ours("integrated-gradients", steps=STEPS),
                                      lambda fl=fl, c=best: fl.integrated_gradients(STEPS, c),
                                      rounds, warmup=1, min_time=0.0)
        rows.append(speed_row(fw, f"integrated-gradients x{n_docs}", t_ours, t_floor,
                              f"{STEPS} passes per review; floor chunk {best} "
                              f"(best of {tuple(options)})"))
        options = (256, 1024, 4096)
        best = best_chunk(lambda c, fl=fl: lambda: fl.occlusion(c), options)
        t_ours, t_floor = interleaved(ours("occlusion"),
                                      lambda fl=fl, c=best: fl.occlusion(c),
                                      rounds, warmup=1, min_time=0.0)
        rows.append(speed_row(fw, f"occlusion x{n_docs}", t_ours, t_floor,
                              f"every variant in batched forwards; floor chunk {best} "
                              f"(best of {tuple(options)})"))
    return rows


def run(quick: bool = False, backends: Sequence[str] = ("tensorflow", "jax", "torch")
        ) -> list[dict[str, Any]]:
    """Speed rows, one child process per backend."""
    sys.path.insert(0, str(ROOT))
    from benchmarks.bench_keras import child

    rows: list[dict[str, Any]] = []
    for backend in backends:
        rows += child(backend, *(["--quick"] if quick else []), script=__file__)
    return rows


if __name__ == "__main__":
    if "--child" in sys.argv:
        name = sys.argv[sys.argv.index("--child") + 1]
        print(json.dumps(_measure(name, "--quick" in sys.argv)))
    else:
        chosen = [b for b in ("tensorflow", "jax", "torch") if b in sys.argv]
        for row in run("--quick" in sys.argv, chosen or ("tensorflow", "jax", "torch")):
            print(row)
