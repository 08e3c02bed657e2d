"""Keras image methods on every backend against hand-written floors (CPU).

A ResNet-style Keras network at 224×224 (the layout of the PyTorch benchmark
model: a stem, four residual stages of one basic block with BatchNorm, global
pooling, a dense layer) is explained with every image method on TensorFlow,
JAX and torch, each backend in its own child process with ``KERAS_BACKEND``
set (the backend is fixed when Keras is imported).

The floor of a method is the same forward/backward passes written directly
in the backend: ``tf.GradientTape`` on TensorFlow, ``jax.vjp`` over
``model.stateless_call`` on JAX (eager, as eli5-nn runs), ``torch.autograd``
on torch; the arithmetic around them in ``keras.ops``. Models a user would
build once (the feature/head split for Grad-CAM, the model with a zero input
added at each bias layer's output for FullGrad) are built outside the timing.
Step- and sample-based floors use the best chunk size among a few. On
TensorFlow Grad-CAM is also timed against eli5 0.16's own
``explain_prediction_keras``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SIZE = 224
WIDTH = 16
N_CLASSES = 10
LAYER = "block4_out"
#: passes of Integrated Gradients and SmoothGrad (fewer than on PyTorch: Keras on the
#: torch backend is slow on the CPU, and the ratio does not need more)
STEPS = 20
SAMPLES = 10
BACKENDS = ("tensorflow", "jax", "torch")
METHODS = ("grad-cam", "grad-cam++", "gradient", "gradient-x-input", "smoothgrad",
           "integrated-gradients", "fullgrad")


# -- the network ------------------------------------------------------------------------------
def _wire(keras: Any, memo: dict[str, Any], inp: Any, tap: Callable[[str, Any], Any]
          ) -> tuple[Any, Any]:
    """The ResNet-style graph on ``inp``; layers are created once in ``memo`` and
    shared by every wiring. ``tap(name, t)`` sees each bias layer's output (the
    BatchNorm layers and the dense layer). Returns (last block's output, logits)."""
    layers = keras.layers

    def get(name: str, make: Callable[[str], Any]) -> Any:
        if name not in memo:
            memo[name] = make(name)
        return memo[name]

    def conv(h: Any, name: str, c: int, k: int, s: int) -> Any:
        return get(name, lambda n: layers.Conv2D(c, k, strides=s, padding="same",
                                                 use_bias=False, name=n))(h)

    def bn(h: Any, name: str) -> Any:
        return tap(name, get(name, lambda n: layers.BatchNormalization(name=n))(h))

    def relu(h: Any, name: str) -> Any:
        return get(name, lambda n: layers.Activation("relu", name=n))(h)

    h = relu(bn(conv(inp, "stem_conv", WIDTH, 3, 1), "stem_bn"), "stem_relu")
    cin = WIDTH
    for i in range(4):
        cout, stride, p = WIDTH * 2 ** i, 1 if i == 0 else 2, f"block{i + 1}"
        o = relu(bn(conv(h, f"{p}_conv1", cout, 3, stride), f"{p}_bn1"), f"{p}_relu1")
        o = bn(conv(o, f"{p}_conv2", cout, 3, 1), f"{p}_bn2")
        identity = h
        if stride != 1 or cin != cout:
            identity = bn(conv(h, f"{p}_down", cout, 1, stride), f"{p}_down_bn")
        h = relu(get(f"{p}_add", lambda n: layers.Add(name=n))([o, identity]), f"{p}_out")
        cin = cout
    return h, _head(keras, memo, h, tap)


def _head(keras: Any, memo: dict[str, Any], h: Any, tap: Callable[[str, Any], Any]) -> Any:
    if "pool" not in memo:
        memo["pool"] = keras.layers.GlobalAveragePooling2D(name="pool")
        memo["fc"] = keras.layers.Dense(N_CLASSES, name="fc")
    return tap("fc", memo["fc"](memo["pool"](h)))


class Models:
    """The benchmark model and the wirings its floors use, sharing its layers."""

    def __init__(self, keras: Any) -> None:
        import numpy as np

        keras.utils.set_random_seed(0)
        memo: dict[str, Any] = {}
        inp = keras.Input((SIZE, SIZE, 3))
        act, logits = _wire(keras, memo, inp, lambda _n, t: t)
        self.model = keras.Model(inp, logits, name="bench_resnet")
        rng = np.random.default_rng(0)
        for layer in self.model.layers:  # non-trivial BatchNorm statistics, as in PyTorch
            if isinstance(layer, keras.layers.BatchNormalization):
                c = layer.moving_mean.shape[0]
                layer.set_weights([1 + 0.1 * rng.standard_normal(c), 0.1 * rng.standard_normal(c),
                                   0.1 * rng.standard_normal(c), rng.random(c) + 0.5])
        # Grad-CAM: the features up to the layer, and the head after it
        self.features = keras.Model(inp, act)
        head_in = keras.Input(tuple(act.shape[1:]))
        self.head = keras.Model(head_in, _head(keras, memo, head_in, lambda _n, t: t))
        # FullGrad: a zero input added at each bias layer's output, to differentiate there
        self.bias_names: list[str] = []
        deltas: list[Any] = []

        def add_delta(name: str, t: Any) -> Any:
            d = keras.Input(tuple(t.shape[1:]), name=f"{name}_delta")
            deltas.append(d)
            self.bias_names.append(name)
            return keras.layers.Add(name=f"{name}_tap")([t, d])

        inp2 = keras.Input((SIZE, SIZE, 3))
        _, logits2 = _wire(keras, memo, inp2, add_delta)
        self.tapped = keras.Model([inp2, *deltas], logits2)
        self.delta_shapes = [(1, *d.shape[1:]) for d in deltas]
        self.biases = [self._bias(keras, memo[n]) for n in self.bias_names]

    @staticmethod
    def _bias(keras: Any, layer: Any) -> Any:
        ops = keras.ops
        if isinstance(layer, keras.layers.Dense):
            return ops.convert_to_tensor(layer.bias)
        scale = ops.rsqrt(ops.convert_to_tensor(layer.moving_variance) + layer.epsilon)
        scale = scale * ops.convert_to_tensor(layer.gamma)
        return ops.convert_to_tensor(layer.beta) - ops.convert_to_tensor(layer.moving_mean) * scale


# -- one forward/backward pass, per backend --------------------------------------------------
Pullback = Callable[[Any], list[Any]]


class Backend:
    """``vjp(model, inputs, wrt)``: one forward pass recording only what depends on
    ``inputs[i]`` for ``i`` in ``wrt``; returns the outputs and the pullback of a
    cotangent on the first output. ``forward``: a pass that records nothing."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._values: dict[int, tuple[list[Any], list[Any]]] = {}

    def no_grad(self) -> AbstractContextManager[Any]:
        if self.name == "torch":
            import torch

            return torch.no_grad()
        return nullcontext()

    def forward(self, model: Any, x: Any) -> Any:
        with self.no_grad():
            return model(x, training=False)

    def normal(self, shape: tuple[int, ...], seed: int) -> Any:
        if self.name == "tensorflow":
            import tensorflow as tf

            return tf.random.stateless_normal(shape, seed=(seed, 0))
        if self.name == "jax":
            import jax

            return jax.random.normal(jax.random.PRNGKey(seed), shape)
        import torch

        return torch.randn(shape, generator=torch.Generator().manual_seed(seed))

    def vjp(self, model: Any, inputs: Sequence[Any], wrt: Sequence[int]
            ) -> tuple[list[Any], Pullback]:
        return getattr(self, f"_vjp_{self.name}")(model, list(inputs), list(wrt))

    @staticmethod
    def _outputs(out: Any) -> list[Any]:
        return list(out) if isinstance(out, (list, tuple)) else [out]

    @staticmethod
    def _arg(inputs: list[Any]) -> Any:
        return inputs[0] if len(inputs) == 1 else inputs

    def _vjp_tensorflow(self, model: Any, inputs: list[Any], wrt: list[int]
                        ) -> tuple[list[Any], Pullback]:
        import tensorflow as tf

        with tf.GradientTape(watch_accessed_variables=False) as tape:
            for i in wrt:
                tape.watch(inputs[i])
            outs = self._outputs(model(self._arg(inputs), training=False))
        sources = [inputs[i] for i in wrt]
        return outs, lambda cot: list(tape.gradient(outs[0], sources, output_gradients=cot))

    def _vjp_jax(self, model: Any, inputs: list[Any], wrt: list[int]
                 ) -> tuple[list[Any], Pullback]:
        import jax

        if id(model) not in self._values:  # read once, as a JAX user holds them
            self._values[id(model)] = ([v.value for v in model.trainable_variables],
                                       [v.value for v in model.non_trainable_variables])
        trainable, non_trainable = self._values[id(model)]

        def f(*w: Any) -> tuple[Any, list[Any]]:
            full = list(inputs)
            for i, wi in zip(wrt, w, strict=True):
                full[i] = wi
            out, _ = model.stateless_call(trainable, non_trainable, self._arg(full),
                                          training=False)
            outs = self._outputs(out)
            return outs[0], outs[1:]

        first, pull, rest = jax.vjp(f, *[inputs[i] for i in wrt], has_aux=True)
        return [first, *rest], lambda cot: list(pull(cot))

    def _vjp_torch(self, model: Any, inputs: list[Any], wrt: list[int]
                   ) -> tuple[list[Any], Pullback]:
        import torch

        inputs = [t.detach().requires_grad_(True) if i in wrt else t
                  for i, t in enumerate(inputs)]
        outs = self._outputs(model(self._arg(inputs), training=False))
        sources = [inputs[i] for i in wrt]
        return outs, lambda cot: list(torch.autograd.grad(outs[0], sources, grad_outputs=cot))


# -- the floors ---------------------------------------------------------------------------
class Floors:
    """Hand-written versions of every method for one image ``x`` (1, H, W, 3)."""

    def __init__(self, keras: Any, models: Models, backend: Backend, x: Any) -> None:
        self.k, self.ops, self.m, self.b, self.x = keras, keras.ops, models, backend, x

    def _onehot(self, logits: Any, scale: Any = 1.0) -> Any:
        return self.ops.one_hot(self.ops.argmax(logits, axis=-1), N_CLASSES) * scale

    def _done(self, t: Any) -> Any:
        return self.ops.convert_to_numpy(t)

    def cam(self, plus: bool) -> Any:
        ops = self.ops
        act = self.b.forward(self.m.features, self.x)
        (logits,), pull = self.b.vjp(self.m.head, [act], [0])
        (g,) = pull(self._onehot(logits))
        if plus:  # Grad-CAM++ (eq. 19): alpha = G^2 / (2 G^2 + sum A G^3)
            g2 = g * g
            denom = 2.0 * g2 + ops.sum(act, axis=(1, 2), keepdims=True) * g2 * g
            alpha = ops.where(denom != 0, g2 / ops.where(denom != 0, denom, 1.0), 0.0)
            w = ops.sum(alpha * ops.relu(g), axis=(1, 2), keepdims=True)
        else:
            w = ops.mean(g, axis=(1, 2), keepdims=True)
        return self._done(ops.relu(ops.sum(w * act, axis=-1)))

    def gradient(self, times_input: bool) -> Any:
        (logits,), pull = self.b.vjp(self.m.model, [self.x], [0])
        (g,) = pull(self._onehot(logits))
        return self._done(g * self.x if times_input else self.ops.max(self.ops.abs(g), -1))

    def steps(self, kind: str, n: int, chunk: int) -> Any:
        """SmoothGrad (``kind="sg"``) or Integrated Gradients from zeros (``"ig"``):
        one forward for the class, then ``n`` gradient passes in chunks."""
        ops, x = self.ops, self.x
        c = ops.argmax(self.b.forward(self.m.model, x), axis=-1)
        std = 0.15 * (ops.max(x) - ops.min(x))
        total = None
        for start in range(0, n, chunk):
            k = min(chunk, n - start)
            if kind == "ig":
                alphas = (ops.arange(start, start + k, dtype="float32") + 0.5) / n
                xs = ops.reshape(alphas, (k, 1, 1, 1)) * x
            else:
                xs = x + self.b.normal((k, *x.shape[1:]), start) * std
            _, pull = self.b.vjp(self.m.model, [xs], [0])
            cot = ops.repeat(ops.one_hot(c, N_CLASSES), k, axis=0) / n
            part = ops.sum(pull(cot)[0], axis=0, keepdims=True)
            total = part if total is None else total + part
        return self._done(total * x if kind == "ig" else total)

    def fullgrad(self) -> Any:
        """Input gradient and the gradient at every bias layer's output in one pass;
        the bias maps spread (mass-preserving) to the input for the attribution,
        and the paper's display map: per-map min-max of |.|, channel sum, resized."""
        ops, x, m = self.ops, self.x, self.m
        zeros = [ops.zeros(s) for s in m.delta_shapes]
        (logits,), pull = self.b.vjp(m.tapped, [x, *zeros], range(len(zeros) + 1))
        gx, *gds = pull(self._onehot(logits))
        inp = gx * x

        def psi(t: Any) -> Any:
            a = ops.abs(t)
            mn = ops.min(a, axis=(1, 2, 3), keepdims=True)
            mx = ops.max(a, axis=(1, 2, 3), keepdims=True)
            return ops.sum((a - mn) / ops.maximum(mx - mn, 1e-12), axis=-1, keepdims=True)

        attribution, display = inp, psi(inp)
        for g, bias in zip(gds, m.biases, strict=True):
            per = g * bias
            if len(per.shape) == 4:
                bias_map = ops.sum(per, axis=-1, keepdims=True)
                scale = (per.shape[1] * per.shape[2]) / (SIZE * SIZE) / 3.0
                both = ops.image.resize(ops.concatenate([bias_map, psi(per)], axis=-1),
                                        (SIZE, SIZE), interpolation="bilinear")
                attribution = attribution + both[..., :1] * scale
                display = display + both[..., 1:]
            else:  # the dense layer: a constant spread over the input
                attribution = attribution + ops.sum(per) / (SIZE * SIZE * 3.0)
        return self._done(attribution), self._done(display)


# -- measurement (in the child process) -----------------------------------------------------
def _measure(backend_name: str, quick: bool) -> list[dict[str, Any]]:
    import keras
    import numpy as np

    sys.path.insert(0, str(ROOT))
    import eli5_nn
    from benchmarks.timing import best_chunk, interleaved, one_pass_row, speed_row

    models = Models(keras)
    backend = Backend(backend_name)
    x_np = np.random.default_rng(0).random((1, SIZE, SIZE, 3)).astype("float32")
    x = keras.ops.convert_to_tensor(x_np)
    floors = Floors(keras, models, backend, x)
    model = models.model
    repeat, warmup, min_time = (1, 1, 0.5) if quick else (3, 2, 3.0)
    framework = f"keras-{backend_name}"
    rows = []

    def ours(method: str, **kw: Any) -> Callable[[], Any]:
        return lambda: eli5_nn.explain_prediction_nn(model, x_np, method=method, progress=False,
                                                     **kw)

    simple: list[tuple[str, Callable[[], Any], dict[str, Any], str]] = [
        ("grad-cam", lambda: floors.cam(False), {"layer": LAYER},
         "features without a graph, head forward + backward to the layer"),
        ("grad-cam++", lambda: floors.cam(True), {"layer": LAYER}, "as grad-cam"),
        ("gradient", lambda: floors.gradient(False), {}, "forward + backward to the input"),
        ("gradient-x-input", lambda: floors.gradient(True), {},
         "forward + backward to the input"),
        ("fullgrad", floors.fullgrad, {},
         "one pass to the input and every bias layer; bias maps resized"),
    ]
    for method, floor, kw, note in simple:
        rows.append(one_pass_row(framework, method, ours(method, **kw), floor, note, quick))
    # --quick: half the passes
    samples, steps = (SAMPLES // 2, STEPS // 2) if quick else (SAMPLES, STEPS)
    for method, kind, n, kw in (
        ("smoothgrad", "sg", samples, {"samples": samples}),
        ("integrated-gradients", "ig", steps, {"steps": steps}),
    ):
        options = [c for c in ((5, 10) if quick else (2, 5, 10, 20)) if c <= n]
        best = best_chunk(lambda c, kind=kind, n=n: lambda: floors.steps(kind, n, c), options)
        t_ours, t_floor = interleaved(ours(method, **kw),
                                      lambda kind=kind, n=n, c=best: floors.steps(kind, n, c),
                                      1 if quick else 2, warmup=1, min_time=0.0)
        rows.append(speed_row(framework, method, t_ours, t_floor,
                              f"{n} passes; floor chunk {best} (best of {tuple(options)})"))
        if method == "integrated-gradients":  # eli5-nn's own chunk size against the floor's
            t_ours, t_floor = interleaved(
                ours(method, batch_size=best, **kw),
                lambda kind=kind, n=n, c=best: floors.steps(kind, n, c), 1, warmup=1,
                min_time=0.0)
            rows.append(speed_row(framework, f"{method} batch_size={best}", t_ours, t_floor,
                                  "as above, eli5-nn given the floor's chunk size"))
    if backend_name == "tensorflow":
        from eli5.keras.explain_prediction import explain_prediction_keras

        t_ours, t_eli5 = interleaved(
            ours("grad-cam", layer=LAYER),
            lambda: explain_prediction_keras(model, x_np, layer=LAYER), repeat, warmup, min_time)
        rows.append(speed_row(framework, "grad-cam vs eli5 0.16", t_ours, t_eli5,
                              "floor = eli5 0.16's explain_prediction_keras"))
    return rows


def _memory(steps: int, batch_size: int) -> float:
    import keras
    import numpy as np

    sys.path.insert(0, str(ROOT))
    import eli5_nn
    from benchmarks.timing import peak_extra_mb

    model = Models(keras).model
    x = np.random.default_rng(0).random((1, SIZE, SIZE, 3)).astype("float32")
    explain = eli5_nn.explain_prediction_nn
    explain(model, x, method="integrated-gradients", steps=2, batch_size=2, progress=False)
    return peak_extra_mb(lambda: explain(model, x, method="integrated-gradients", steps=steps,
                                         batch_size=batch_size, progress=False))


# -- the parent's side ------------------------------------------------------------------------
def child(backend: str, *args: str, script: str = __file__,
          env: dict[str, str] | None = None) -> Any:
    """Run ``script --child BACKEND ARGS`` with ``KERAS_BACKEND=BACKEND`` (and ``env``
    added to the environment); its last line of output, read as JSON."""
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    cmd = [sys.executable, str(Path(script).resolve()), "--child", backend, *args]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"the Keras benchmark on {backend} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(quick: bool = False, backends: Sequence[str] = BACKENDS) -> list[dict[str, Any]]:
    """Speed rows {framework, method, ours_s, floor_s, ratio, note}, one child per backend."""
    rows: list[dict[str, Any]] = []
    for backend in backends:
        rows += child(backend, *(["--quick"] if quick else []))
    return rows


#: glibc's malloc raises its mmap threshold (up to 32 MB) each time it frees a mapped
#: block, after which freed activations stay in the heap and the resident size creeps
#: up pass after pass, the same for the floors; with the threshold fixed the growth
#: left is what the process holds (JAX, 10 -> 40 steps: +30-70% by default, +5% fixed;
#: torch: +20-50%, +5%)
FIXED_MMAP = {"MALLOC_MMAP_THRESHOLD_": "131072"}


def memory_rows(quick: bool = False, batch_size: int = 10,
                backends: Sequence[str] = BACKENDS) -> Iterator[dict[str, Any]]:
    """Peak extra memory of Integrated Gradients at STEPS and 4 × STEPS steps (half
    as many with ``quick``) on each backend, one fresh process per measurement:
    once as a default process, once with malloc's mmap threshold fixed
    (:data:`FIXED_MMAP`), where the resident size follows what is held."""
    base = STEPS // 2 if quick else STEPS
    for backend in backends:
        for env, note in ((None, ""), (FIXED_MMAP, ", malloc mmap threshold fixed")):
            for steps in (base, 4 * base):
                peak = child(backend, "--memory", str(steps), str(batch_size), env=env)
                yield {"framework": f"keras-{backend}",
                       "method": f"integrated-gradients steps={steps} "
                                 f"batch_size={batch_size}{note}",
                       "peak_mb": float(peak)}


if __name__ == "__main__":
    if "--child" in sys.argv:
        name = sys.argv[sys.argv.index("--child") + 1]
        if "--memory" in sys.argv:
            i = sys.argv.index("--memory")
            print(json.dumps(_memory(int(sys.argv[i + 1]), int(sys.argv[i + 2]))))
        else:
            print(json.dumps(_measure(name, "--quick" in sys.argv)))
    else:
        chosen = [b for b in BACKENDS if b in sys.argv] or list(BACKENDS)
        for row in run("--quick" in sys.argv, chosen):
            print(row)
