"""The ``eli5-nn explain-dataset`` and ``eli5-nn dataset-report`` subcommands.

``eli5_nn.cli`` adds them with :func:`add_subcommands`, passing its model loader (so
this package never imports the command line's loaders).
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import Eli5NNError, InputError

EXIT_USER_ERROR = 2


def add_subcommands(subparsers: Any, load_model: Callable[[str], Any]) -> None:
    """Add ``explain-dataset`` and ``dataset-report`` to ``subparsers``; each sets
    ``func`` (returns the exit status). ``load_model(path)`` loads a saved model."""
    ex = subparsers.add_parser(
        "explain-dataset", help="explain every item of a dataset into Parquet shards",
        description=(
            "MODEL is a saved model (TorchScript, torch.export .pt2, Keras .keras). DATA is a "
            "folder of images (class sub-folders give labels) or a .npy array of items "
            "(read as a memmap). A rerun with the same arguments resumes."
        ),
    )
    ex.add_argument("model", help="the saved model")
    ex.add_argument("data", help="a folder of images, or a .npy file of items")
    ex.add_argument("--method", default="grad-cam", help="explanation method (default grad-cam)")
    ex.add_argument("--out", required=True, help="output folder")
    ex.add_argument("--labels", help=".npy file of true class indices (for a .npy DATA)")
    ex.add_argument("--targets", type=int, nargs="+", help="class indices to explain")
    ex.add_argument("--top-targets", type=int, help="explain the k highest-scoring classes")
    ex.add_argument("--target-names", help="file with one class name per line")
    ex.add_argument("--layer", help="layer for CAM methods (name, or an index)")
    ex.add_argument("--steps", type=int, help="Integrated Gradients: quadrature nodes")
    ex.add_argument("--samples", type=int, help="SmoothGrad: noisy samples")
    ex.add_argument("--random-state", type=int, help="seed (default: drawn and recorded)")
    ex.add_argument("--batch-size", type=int, help="inputs per forward/backward pass")
    ex.add_argument("--full", action="store_true", help="store the full attribution tensor")
    ex.add_argument("--faithfulness", action="store_true",
                    help="also store deletion and insertion AUCs")
    ex.add_argument("--shard-size", type=int, default=1000, help="items per Parquet file")
    ex.add_argument("--chunk-size", type=int, default=64, help="items per pipeline call")
    ex.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), default=(224, 224),
                    help="image size for a folder DATA (default 224 224)")
    ex.add_argument("--channels", type=int, default=3, help="1 (grey) or 3 (RGB, default)")
    ex.add_argument("--channels-last", action="store_true", help="images as H×W×C")
    ex.add_argument("--mean", type=float, nargs="+", help="per-channel mean to subtract")
    ex.add_argument("--std", type=float, nargs="+", help="per-channel std to divide by")
    ex.add_argument("--engine", choices=("local", "ray"), default="local")
    ex.add_argument("--address", help="Ray cluster address (default: a local Ray)")
    ex.add_argument("--workers", type=int, help="Ray actors (default: one per CPU)")
    ex.add_argument("--num-gpus", type=float, help="GPUs per Ray actor")
    ex.add_argument("--no-progress", action="store_true", help="no progress bar")
    ex.set_defaults(func=functools.partial(explain_dataset_command, load_model=load_model))

    rep = subparsers.add_parser(
        "dataset-report", help="an HTML report over a folder written by explain-dataset")
    rep.add_argument("dir", help="the folder explain-dataset wrote")
    rep.add_argument("--out", default="report.html",
                     help="the HTML file (default report.html inside DIR)")
    rep.add_argument("--mask", help=".npy mask: one (H, W) for all items or (N, H, W) per item")
    rep.add_argument("--by", choices=("label", "predicted"), default="label",
                     help="group items by true label (default) or predicted class")
    rep.add_argument("--top", type=int, default=8, help="items shown most/least inside the mask")
    rep.set_defaults(func=dataset_report_command)


def _run(name: str, fn: Callable[[], Path]) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ start-up lines
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            path = fn()
    except (Eli5NNError, ValueError, TypeError, OSError) as exc:
        print(f"eli5-nn {name}: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    print(f"written to {path}")
    return 0


def explain_dataset_command(args: argparse.Namespace, load_model: Callable[[str], Any]) -> int:
    """Run ``eli5-nn explain-dataset``; returns the exit status."""
    return _run("explain-dataset", lambda: _explain(args, load_model))


def _explain(args: argparse.Namespace, load_model: Callable[[str], Any]) -> Path:
    from .core import explain_dataset

    data_path = Path(args.data)
    kwargs: dict[str, Any] = {
        "method": args.method, "out": args.out, "engine": args.engine, "full": args.full,
        "faithfulness": args.faithfulness, "shard_size": args.shard_size,
        "chunk_size": args.chunk_size, "progress": not args.no_progress,
        "address": args.address, "workers": args.workers, "num_gpus": args.num_gpus,
    }
    for name in ("targets", "top_targets", "steps", "samples", "random_state", "batch_size"):
        if getattr(args, name) is not None:
            kwargs[name] = getattr(args, name)
    if args.layer is not None:
        kwargs["layer"] = int(args.layer) if args.layer.lstrip("-").isdigit() else args.layer
    if args.target_names:
        kwargs["target_names"] = Path(args.target_names).read_text(encoding="utf-8").splitlines()
    if data_path.is_dir():
        data: Any = data_path
        kwargs.update(image_size=tuple(args.size), channels=args.channels,
                      channels_last=args.channels_last, mean=args.mean, std=args.std)
    elif data_path.suffix == ".npy" and data_path.is_file():
        data = np.load(data_path, mmap_mode="r")
        if args.labels:
            kwargs["labels"] = np.load(args.labels)
    else:
        raise InputError(f"DATA {str(data_path)!r} is neither a folder of images nor a .npy file")
    model: Any = functools.partial(load_model, args.model) if args.engine == "ray" \
        else load_model(args.model)
    run = explain_dataset(model, data, **kwargs)
    print(f"{run.n_items} items explained, {run.n_errors} errors, "
          f"{len(run.shards_skipped)} finished shards skipped")
    return run.out


def dataset_report_command(args: argparse.Namespace) -> int:
    """Run ``eli5-nn dataset-report``; returns the exit status."""
    from .report import dataset_report

    def report() -> Path:
        masks = np.load(args.mask) if args.mask else None
        return dataset_report(args.dir, args.out, masks=masks, by=args.by, top=args.top)

    return _run("dataset-report", report)
