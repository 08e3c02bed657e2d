"""Timing helpers and data shared by the benchmarks (no framework imports).

Ours and the floor run alternately in the same process after warm-up, so that
load from other processes hits both alike: each keeps its best time
(:func:`interleaved`), or, for calls of tens of milliseconds, each round's CPU times
give a ratio and the row reports their median (:func:`paired`, :func:`one_pass_row`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def interleaved(ours: Callable[[], Any], floor: Callable[[], Any], repeat: int,
                warmup: int = 2, min_time: float = 2.0, max_repeat: int = 30
                ) -> tuple[float, float]:
    """Best times of ``ours`` and ``floor``, run alternately after ``warmup`` calls
    of each: ``repeat`` rounds, more (up to ``max_repeat``) while the rounds took
    less than ``min_time`` seconds in all, so that quick calls get enough tries
    on a busy machine."""
    for _ in range(warmup):
        ours()
        floor()
    best_ours = best_floor = float("inf")
    spent, rounds = 0.0, 0
    while rounds < repeat or (spent < min_time and rounds < max_repeat):
        t0 = time.perf_counter()
        ours()
        t1 = time.perf_counter()
        floor()
        t2 = time.perf_counter()
        best_ours, best_floor = min(best_ours, t1 - t0), min(best_floor, t2 - t1)
        spent, rounds = spent + t2 - t0, rounds + 1
    return best_ours, best_floor


def paired(ours: Callable[[], Any], theirs: Callable[[], Any], repeat: int, warmup: int = 1
           ) -> tuple[float, float, float]:
    """Median times of ``ours`` and ``theirs`` run alternately (which goes first
    alternates too) and the median of the per-round ratios ours ÷ theirs.

    Times are the CPU time of the process (``time.process_time``): both libraries
    run on one thread, so CPU time is the work each does, and load from other
    processes on a shared machine, which stretches wall-clock time at random, does
    not enter the ratio."""
    for _ in range(warmup):
        ours()
        theirs()
    t_ours, t_theirs = [], []
    for i in range(repeat):
        pair = (ours, theirs) if i % 2 == 0 else (theirs, ours)
        times = []
        for fn in pair:
            t0 = time.process_time()
            fn()
            times.append(time.process_time() - t0)
        a, b = times if i % 2 == 0 else times[::-1]
        t_ours.append(a)
        t_theirs.append(b)
    ratios = np.array(t_ours) / np.array(t_theirs)
    return float(np.median(t_ours)), float(np.median(t_theirs)), float(np.median(ratios))


def auto_batch_size(model: Any, x: Any, units: int) -> int:
    """The chunk eli5-nn picks for ``units`` gradient rows of inputs like ``x``."""
    from eli5_nn.adapters import get_adapter
    from eli5_nn.methods.context import MethodContext

    ctx = MethodContext(adapter=get_adapter(model), x=x, resolve_targets=lambda s, d: [])
    return int(ctx.chunk_size(units))


def best_time(fn: Callable[[], Any], repeat: int = 1, warmup: bool = True) -> float:
    """Best of ``repeat`` timed calls, after one warm-up call if ``warmup``."""
    if warmup:
        fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def best_chunk(make: Callable[[int], Callable[[], Any]], chunks: Sequence[int]) -> int:
    """The chunk size among ``chunks`` for which ``make(chunk)()`` runs fastest
    (one warm-up call, then one timed call per size)."""
    make(chunks[0])()
    return min(chunks, key=lambda c: best_time(make(c), warmup=False))


def speed_row(framework: str, method: str, ours: float, floor: float, note: str,
              ratio: float | None = None) -> dict[str, Any]:
    """One row of the speed table (``ratio``: as measured, e.g. the median of
    per-round ratios; else ours ÷ floor)."""
    return {"framework": framework, "method": method, "ours_s": ours, "floor_s": floor,
            "ratio": ours / floor if ratio is None else ratio, "note": note}


#: alternated rounds of a one-pass row (:func:`one_pass_row`), --quick / full: images,
#: and PyTorch text (calls of up to a few tenths of a second)
ONE_PASS_ROUNDS = (21, 41)
TEXT_ONE_PASS_ROUNDS = (9, 21)


def one_pass_row(framework: str, method: str, ours: Callable[[], Any],
                 floor: Callable[[], Any], note: str, quick: bool,
                 rounds: tuple[int, int] = ONE_PASS_ROUNDS) -> dict[str, Any]:
    """A one-pass row (a call of tens of milliseconds, where one lucky best time moves
    the ratio by several percent): :func:`paired` rounds, the medians of process CPU
    time and the median of the per-round ratios, as the Captum tables."""
    t_ours, t_floor, ratio = paired(ours, floor, rounds[0 if quick else 1], warmup=2)
    return speed_row(framework, method, t_ours, t_floor, note, ratio)


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def peak_extra_mb(fn: Callable[[], Any]) -> float:
    """Peak resident memory above the level before ``fn()``, sampled every 2 ms (MB)."""
    base = _rss()
    peak = [base]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss())
            time.sleep(0.002)

    thread = threading.Thread(target=sample)
    thread.start()
    try:
        fn()
    finally:
        done.set()
        thread.join()
    return (max(peak[0], _rss()) - base) / 2**20


def reviews(n: int, length: int = 160, vocab: int = 6000) -> np.ndarray:
    """Token ids (n, length) of IMDB-length reviews: random ids, each review padded
    (id 0) after a random length between half and all of ``length``."""
    rng = np.random.default_rng(0)
    ids = rng.integers(1, vocab, (n, length))
    lengths = rng.integers(length // 2, length, n)
    ids[np.arange(length)[None, :] >= lengths[:, None]] = 0
    return ids
