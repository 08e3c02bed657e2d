"""The ``eli5-nn`` command (also ``python -m eli5_nn``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = argparse.ArgumentParser(prog="eli5-nn", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo", help="train a small CNN on scikit-learn's digits and write an HTML report"
    )
    demo.add_argument("--out", default="demo-out", help="folder for the report and the cache")
    demo.add_argument("--digits", type=int, default=6, help="how many test digits to explain")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from .demo import run_demo

        try:
            path = run_demo(args.out, n_digits=args.digits)
        except ImportError as exc:
            print(f"eli5-nn demo needs torch and scikit-learn: {exc}", file=sys.stderr)
            return 2
        print(f"report written to {path}")
    return 0
