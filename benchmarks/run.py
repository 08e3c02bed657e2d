"""Run every benchmark and print the figures as reStructuredText tables.

``make bench`` runs this. Speed is a ratio against a floor timed in the same
process (ratio 1.0 = as fast as the hand-written code; below 1 = faster);
memory is the peak resident memory a call adds. ``--quick`` repeats less.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import bench_keras, bench_render, bench_text, bench_torch  # noqa: E402


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


def memory_table(rows: list[dict[str, Any]]) -> str:
    """Memory rows as an RST table."""
    return _table(["framework", "call", "peak extra memory (MB)"],
                  [[r["framework"], r["method"], f"{r['peak_mb']:.0f}"] for r in rows])


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    speed = (bench_torch.run(quick) + bench_keras.run(quick) + bench_text.run(quick)
             + bench_render.run(quick))
    print(speed_table(speed))
    print()
    print(memory_table(bench_torch.memory_rows()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
