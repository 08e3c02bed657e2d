"""Run every benchmark and print the figures as reStructuredText tables.

``make bench`` runs this. Speed is a ratio against a floor timed in the same
process (ratio 1.0 = as fast as the hand-written code; below 1 = faster);
memory is the peak resident memory a call adds.

Options: ``--quick`` (fewer passes and repeats: the whole suite in a few
minutes), ``--write`` (also write the tables into ``docs/benchmarks.rst`` and
into the Benchmarks section of ``README.rst``), ``--results FILE`` (keep each
benchmark's rows in FILE as it finishes; a later run with the same FILE runs
only the benchmarks missing there), ``--only WORD`` (run and print only the
benchmarks whose caption contains WORD, e.g. ``--only Captum``; no ``--write``).
"""

from __future__ import annotations

import json
import os
import platform
import re
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # importing eli5_nn may import TensorFlow


def _threads(argv: list[str]) -> int:
    """``--threads N`` (default 1): the intra-op threads of every framework, set through
    the environment before any framework is imported (the Keras children inherit it).
    On a shared machine, two threads per process make timings swing by an order of
    magnitude (a parallel op waits for its slowest thread); one thread keeps the ratios
    steady."""
    n = argv[argv.index("--threads") + 1] if "--threads" in argv else "1"
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
                "TF_NUM_INTEROP_THREADS"):
        os.environ[var] = n
    if n == "1":
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                                   + " --xla_cpu_multi_thread_eigen=false").strip()
    return int(n)


THREADS = _threads(sys.argv) if __name__ == "__main__" else None

from benchmarks import (  # noqa: E402
    bench_batch,
    bench_captum,
    bench_captum_text,
    bench_cd,
    bench_import,
    bench_keras,
    bench_keras_text,
    bench_quadrature,
    bench_render,
    bench_text,
    bench_torch,
)

DOCS_PAGE = ROOT / "docs" / "benchmarks.rst"
README = ROOT / "README.rst"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    rule = "  ".join("=" * w for w in widths)

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([rule, line(header), rule, *(line(r) for r in rows), rule])


def speed_table(rows: list[dict[str, Any]]) -> str:
    """Speed rows as an RST table."""
    return _table(
        ["framework", "method", "ours (s)", "floor (s)", "ratio", "floor"],
        [[r["framework"], r["method"], f"{r['ours_s']:.3f}", f"{r['floor_s']:.3f}",
          f"{r['ratio']:.2f}", r.get("note", "")] for r in rows],
    )


def captum_table(rows: list[dict[str, Any]]) -> str:
    """eli5-nn against Captum as an RST table."""
    return _table(
        ["framework", "method", "ours (s)", "Captum (s)", "ours ÷ Captum", "note"],
        [[r["framework"], r["method"], f"{r['ours_s']:.3f}", f"{r['captum_s']:.3f}",
          f"{r['ratio']:.2f}", r.get("note", "")] for r in rows],
    )


def batch_table(rows: list[dict[str, Any]]) -> str:
    """Automatic batch size against the best fixed chunk as an RST table."""
    return _table(["framework", "call", "auto chunk", "best fixed", "auto (s)", "best (s)",
                   "auto ÷ best"], bench_batch.batch_table_rows(rows))


def quadrature_table(rows: list[dict[str, Any]]) -> str:
    """Integrated Gradients' rules: passes and errors as an RST table."""
    return _table(
        ["rule", "passes", "completeness error (median)", "(max)",
         f"L2 error vs {bench_quadrature.REFERENCE} steps (median)"],
        [[r["rule"].rsplit(" ", 1)[0], str(r["passes"]), f"{100 * r['completeness']:.2f}%",
          f"{100 * r['completeness_max']:.1f}%", f"{100 * r['l2']:.2f}%"] for r in rows],
    )


def memory_table(rows: list[dict[str, Any]]) -> str:
    """Memory rows as an RST table."""
    return _table(["framework", "call", "peak extra memory (MB)"],
                  [[r["framework"], r["method"], f"{r['peak_mb']:.0f}"] for r in rows])


def _datasets(quick: bool) -> list[dict[str, Any]]:
    """explain_dataset against explain_predictions, and Ray against the local engine
    where Ray is installed (the ``ray`` extra)."""
    from benchmarks import bench_dataset

    try:
        import ray  # noqa: F401
    except ImportError:
        return [bench_dataset.pipeline_vs_dataset(quick)]
    return bench_dataset.run(quick)


def _dataset_memory(quick: bool) -> list[dict[str, Any]]:
    from benchmarks import bench_dataset

    return bench_dataset.memory_rows(quick)


#: (caption, benchmark) in the order of the tables
SECTIONS: list[tuple[str, Callable[[bool], list[dict[str, Any]]]]] = [
    ("Images: a ResNet-style network at 224×224, PyTorch and Keras on each backend.",
     lambda quick: bench_torch.run(quick) + bench_keras.run(quick)),
    ("Text: a text CNN and a BiLSTM over IMDB-length reviews (160 tokens, padded after 80 to "
     "160), PyTorch and Keras on each backend (fewer reviews and steps on Keras).",
     lambda quick: bench_text.run(quick) + bench_keras_text.run(quick)),
    ("Contextual decomposition: CD of 64 patch masks of one 224×224 image (a VGG-style net) "
     "in one batched pass, against 64 plain forward passes; once in the default memory "
     "layout (what eli5-nn's method='cd' runs) and once with image, masks and floor all "
     "channels-last.", bench_cd.run),
    ("Rendering: the share of HTML rendering in explaining and showing.", bench_render.run),
    ("Start-up: importing eli5-nn in a fresh process, against importing torch (median of "
     "alternated runs).", bench_import.run),
    ("Datasets: explain_dataset against explain_predictions on the same items, and Ray (two "
     "1-thread actors) against the local engine (two threads), on the ResNet-style net with "
     "Integrated Gradients (64×64, 16 steps).", _datasets),
]

#: (caption, benchmark, table) of the tables that are not ratios against a floor
EXTRA: list[tuple[str, Callable[[bool], list[dict[str, Any]]], Callable[..., str]]] = [
    ("vs Captum (images): the ResNet-style network at 224×224 and 112×112, PyTorch, ours "
     "÷ Captum (version 0.9) in the same process (alternated calls, medians of process CPU "
     "time; --quick: 224×224 only). Step- and sample-based "
     "methods: once with each library's own batching, once both at eli5-nn's batch size.",
     lambda quick: bench_captum.run(quick), captum_table),
    ("vs Captum (text): 256 IMDB-length reviews, text CNN and BiLSTM, one call over all "
     "reviews in each library (medians of process CPU time; fewer rounds with --quick). "
     "Step- and sample-based methods: once with each library's own batching, once both "
     "with the same rows per pass (Captum's least: one step or sample of every review).",
     bench_captum_text.run, captum_table),
    ("Automatic batch_size: Integrated Gradients with batch_size=None against the best of "
     "the fixed chunks 1, 2, 5, 10, 25, 50, on every backend: the best picked on one "
     "round-robin of all seven (medians), then auto against it on fresh alternated rounds "
     "(the median of the per-round ratios).",
     bench_batch.run, batch_table),
    ("Integrated Gradients quadrature: completeness error ``|sum(attribution) - (f(x) "
     "- f(0))| / |f(x) - f(0)|`` and distance to a 256-step reference, medians over random "
     "images (112×112, the ResNet-style network).", bench_quadrature.run, quadrature_table),
    ("Datasets, memory: peak resident memory a fresh process adds explaining 1,000 and "
     "10,000 streamed items with explain_dataset (target: 10,000 within 1.1× of 1,000).",
     _dataset_memory, memory_table),
]


def measure(quick: bool, results: Path | None = None, only: str | None = None
            ) -> tuple[list[tuple[str, str]], str]:
    """Run every benchmark; returns (caption, speed table) pairs and the memory table.

    With ``results``, the rows of each finished benchmark are saved there as JSON,
    and benchmarks already saved (by a run with the same ``quick``) are not run
    again: a run that stopped halfway goes on where it stopped.
    """
    saved: dict[str, Any] = {}
    if results is not None and results.exists():
        saved = json.loads(results.read_text(encoding="utf-8"))
        if saved.get("quick") != quick:
            saved = {}
    saved["quick"] = quick
    steps: list[tuple[str, Callable[[bool], list[dict[str, Any]]]]] = [
        *SECTIONS, *[(caption, bench) for caption, bench, _ in EXTRA],
        ("memory", lambda quick: bench_torch.memory_rows()
         + list(bench_keras.memory_rows(quick))),
    ]
    for caption, bench in steps:
        if caption in saved or (only and only.lower() not in caption.lower()):
            continue
        t0 = time.perf_counter()
        saved[caption] = bench(quick)
        print(f"# {caption.split(':')[0].rstrip('.')}: {time.perf_counter() - t0:.0f} s",
              file=sys.stderr)
        if results is not None:
            results.write_text(json.dumps(saved, indent=1), encoding="utf-8")
    tables = [(caption, speed_table(saved[caption])) for caption, _ in SECTIONS
              if caption in saved]
    tables += [(caption, table(saved[caption])) for caption, _, table in EXTRA
               if caption in saved]
    return tables, memory_table(saved["memory"]) if "memory" in saved else ""


def _fill(text: str) -> str:
    return textwrap.fill(text, 88, break_on_hyphens=False, break_long_words=False)


def tables_rst(tables: list[tuple[str, str]], memory: str) -> str:
    """The tables with their captions, as one RST block."""
    memory_caption = ("Peak resident memory that one Integrated Gradients call adds, at a "
                      "fixed ``batch_size`` and four times the steps (each in a fresh process).")
    parts = [f"{_fill(caption)}\n\n{table}"
             for caption, table in [*tables, (memory_caption, memory)] if table]
    return "\n\n".join(parts)


def machine(quick: bool) -> str:
    import keras
    import torch

    cores = len(os.sched_getaffinity(0))
    run = "``--quick`` run (fewer passes and repeats)" if quick else "full run"
    n = os.environ.get("OMP_NUM_THREADS")
    threads = "all threads" if n is None else f"{n} thread{'s' if n != '1' else ''}"
    return (f"Measured on {time.strftime('%Y-%m-%d')}, {run}: {cores} CPU cores shared with "
            f"other jobs, {threads} per process ({platform.machine()}), Python "
            f"{platform.python_version()}, torch {torch.__version__}, Keras "
            f"{keras.__version__}.")


PAGE = """\
Benchmarks
==========

``python benchmarks/run.py`` (``make bench``) times every method on every framework and
Keras backend against a *floor*: the same forward and backward passes written by hand in
that framework (``torch.autograd`` with hooks; ``tf.GradientTape``; ``jax.vjp`` over
``model.stateless_call``; autograd for Keras on torch), with the arithmetic of the method
around them. The floors are honest:

- the same number of forward and backward passes as eli5-nn makes, and no more of the
  network recorded than needed (the CAM floors run the part before the layer without a
  graph and go backward down to the layer only);
- what a user would build once (a head model after the layer, a model with a zero input
  added at each bias layer's output for FullGrad) is built outside the timing;
- step- and sample-based floors (SmoothGrad, Integrated Gradients, occlusion) use the best
  chunk size among a few, found before the timing;
- the PyTorch image floors pass the input in the memory layout eli5-nn passes it in:
  on the CPU eli5-nn gives convolutional models their (N, C, H, W) images channels-last
  (oneDNN's preferred layout, about a quarter faster on the ResNet-style net), where one
  row run both ways gives the same scores, so a ratio measures eli5-nn's own work and
  not the layout.

eli5-nn and its floor run alternately in the same process after warm-up calls, so that load
from other processes hits both alike. The one-pass image rows (Grad-CAM, Grad-CAM++,
gradient, gradient × input, FullGrad: calls of tens of milliseconds, where one lucky best
time moves a ratio by several percent) and the PyTorch text rows of one pass (Grad-CAM,
gradient, gradient × input over 256 reviews) time the CPU the process uses in alternated
rounds (images 21, text 9; 41 and 21 without ``--quick``), and their *ratio* is the median
of the per-round ratios, as in the *vs Captum* tables; the other rows keep each side's best
wall-clock time. *ratio* is ours divided by the floor: 1.00 means as fast as the
hand-written code, below 1 faster (eli5-nn then picks a better chunk size than the floor's
candidates, or the floor does work eli5-nn avoids). eli5-nn's time includes everything
``explain_prediction`` does beyond the passes: checking the input, choosing the target, the
layouts, building the explanation. What a caller may never read is built when first read and
is not in the times: the heatmap resized to the input (for CAM methods also the channel sum
of the map), the picture of the input, the region sums, the probabilities, the description's
notes on the outputs and the input's values and, for text, the target explanations of the
reviews: their maps (for all reviews at once, about 1 ms per 256), spans and top tokens
(reading all of them costs about 2.5 ms for a 224×224 image, under a millisecond per
review). The machine is shared, so absolute times vary between runs; the ratios are what the
tables are for. Each process runs its frameworks on one thread (``--threads N`` to change):
on a shared machine a parallel operation waits for its slowest thread, and with two threads
per process the same call's time swings by an order of magnitude.

Rows named *vs loop* compare ``explain_predictions`` over all the reviews with a loop of
``explain_prediction`` over them, one review at a time (the floor column then holds the
loop); *grad-cam vs eli5 0.16* compares with eli5 0.16's own Keras Grad-CAM
(``explain_prediction_keras``); an *integrated-gradients batch_size=N* row gives eli5-nn
the floor's chunk size instead of the one it picks from its memory budget. In the
rendering table the floor column holds the time to compute the explanation that is
rendered.

{machine}

{tables}

The *vs Captum* tables run Captum (the ``bench`` extra: ``pip install eli5-nn[bench]``) on
the same model, input, targets and passes: ``LayerGradCam`` with its map upsampled to the
input as eli5-nn's is, ``Saliency``, ``InputXGradient``, ``NoiseTunnel(Saliency)`` with the
same samples and absolute noise, ``IntegratedGradients`` with the same steps and rule, and
for text the layer variants on the embedding and ``Occlusion``. Calls alternate in one
process; a row's ratio is the median of the per-round ratios. These tables time the CPU
the process uses (``time.process_time``) rather than the wall clock: both libraries run
on one thread, so it is the work each does, and load from other jobs on the machine does
not stretch one library's calls more than the other's. Step- and sample-based
methods appear twice: each library with its own batching (Captum's default runs all steps
or samples in one pass), then both with the same rows per pass (for images the batch size
eli5-nn picks; for text a multiple of the number of reviews, as Captum's least pass holds
one step or sample of every review). Captum gets the image
as a user holds it (contiguous); eli5-nn passes it channels-last, which is where most of
its lead on images comes from: the rows marked *Captum channels-last* give Captum the same
layout, and show what remains (the one-pass methods are then at parity: both do one
forward and one backward).

The floors are in ``benchmarks/`` (``bench_torch.py``, ``bench_keras.py``,
``bench_text.py``, ``bench_keras_text.py``, ``bench_cd.py``, ``bench_render.py``; Captum:
``bench_captum.py``, ``bench_captum_text.py``; ``bench_batch.py``, ``bench_quadrature.py``,
``bench_import.py``, ``bench_dataset.py``);
``python benchmarks/run.py --write`` rewrites this page and the tables in the README.
"""


def write_docs(tables: str, quick: bool) -> None:
    DOCS_PAGE.parent.mkdir(exist_ok=True)
    DOCS_PAGE.write_text(PAGE.format(machine=_fill(machine(quick)), tables=tables),
                         encoding="utf-8")


_HEADING = re.compile(r"^(\S.*)\n([=\-~^\"'`#*+]{3,})$", re.MULTILINE)
_RULE = re.compile(r"^=+(  +=+)*$")
BEGIN, END = ".. benchmark tables: begin", ".. benchmark tables: end"


def replace_readme_tables(text: str, tables: str) -> str:
    """``text`` with the tables of its Benchmarks section replaced by ``tables``.

    The tables written here lie between two RST comments, ``BEGIN`` and ``END``;
    a section without them has its tables replaced from the first table's
    first rule to the last table's last rule. The section's other text is kept.
    """
    headings = [m for m in _HEADING.finditer(text)
                if len(m.group(2)) >= len(m.group(1).rstrip())]
    start = next((i for i, m in enumerate(headings) if m.group(1).strip() == "Benchmarks"),
                 None)
    if start is None:
        raise ValueError("README.rst has no Benchmarks section")
    body_start = headings[start].end()
    body_end = headings[start + 1].start() if start + 1 < len(headings) else len(text)
    lines = text[body_start:body_end].split("\n")
    if BEGIN in lines and END in lines:
        first, last = lines.index(BEGIN), lines.index(END)
    else:
        rules = [i for i, line in enumerate(lines) if _RULE.match(line)]
        if not rules:
            raise ValueError("the Benchmarks section of README.rst holds no table")
        first, last = rules[0], rules[-1]
    block = [BEGIN, "", *tables.split("\n"), "", END]
    return text[:body_start] + "\n".join(lines[:first] + block + lines[last + 1:]) \
        + text[body_end:]


def write_readme(tables: str) -> None:
    text = README.read_text(encoding="utf-8")
    README.write_text(replace_readme_tables(text, tables), encoding="utf-8")


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    results = Path(argv[argv.index("--results") + 1]) if "--results" in argv else None
    only = argv[argv.index("--only") + 1] if "--only" in argv else None
    if only and "--write" in argv:
        raise SystemExit("--write needs every benchmark: run without --only")
    tables, memory = measure(quick, results, only)
    block = tables_rst(tables, memory)
    print(block)
    if "--write" in argv:
        write_docs(block, quick)
        write_readme(block)
        print(f"# wrote {DOCS_PAGE.relative_to(ROOT)} and the tables in "
              f"{README.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
