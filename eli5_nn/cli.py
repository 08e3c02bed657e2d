"""The ``eli5-nn`` command (also ``python -m eli5_nn``): ``demo`` and ``explain``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

EXIT_USER_ERROR = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="eli5-nn", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo", help="train small models on bundled data and write an HTML report"
    )
    demo.add_argument("--out", default="demo-out", help="folder for the report and the cache")
    demo.add_argument("--digits", type=int, default=6, help="how many test digits to explain")
    demo.add_argument("--reviews", type=int, default=3,
                      help="how many IMDB reviews to explain (0: no text models)")
    ex = sub.add_parser(
        "explain",
        help="explain a saved model's predictions on image or text files",
        description=(
            "MODEL is a TorchScript archive, a torch.export archive (.pt2) or a Keras .keras "
            "file. INPUT is image files, or text files with --vocab."
        ),
    )
    ex.add_argument("model", help="the saved model")
    ex.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, or text files")
    ex.add_argument("--method", default="grad-cam", help="explanation method (default grad-cam)")
    ex.add_argument("--targets", type=int, nargs="+", help="class indices to explain")
    ex.add_argument("--top-targets", type=int, help="explain the k highest-scoring classes")
    ex.add_argument("--target-names", help="file with one class name per line")
    ex.add_argument("--layer", help="layer for CAM methods (name, or an index)")
    ex.add_argument("--out", default="report.html",
                    help="report.html (HTML page) or overlay.png (picture); default report.html")
    ex.add_argument("--size", type=int, nargs=2, metavar=("H", "W"),
                    help="image size for PyTorch models (default 224 224; Keras: its input)")
    ex.add_argument("--channels", type=int, default=3, help="1 (grey) or 3 (RGB, default)")
    ex.add_argument("--mean", type=float, nargs="+", help="per-channel mean to subtract")
    ex.add_argument("--std", type=float, nargs="+", help="per-channel std to divide by")
    ex.add_argument("--vocab", "--tokens-from", dest="vocab",
                    help="text models: vocabulary file, one token per line (line = id)")
    ex.add_argument("--length", type=int, help="text models: pad/cut to this many tokens")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for a user error)."""
    args = _parser().parse_args(argv)
    if args.command == "demo":
        from .demo import run_demo

        try:
            path = run_demo(args.out, n_digits=args.digits, n_reviews=args.reviews)
        except ImportError as exc:
            print(f"eli5-nn demo needs torch and scikit-learn: {exc}", file=sys.stderr)
            return EXIT_USER_ERROR
        print(f"report written to {path}")
        return 0
    from .adapters.base import ExplanationError
    from .loaders import InputError

    try:
        path = explain_command(args)
    except (InputError, ExplanationError, ValueError, TypeError) as exc:
        print(f"eli5-nn explain: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    print(f"written to {path}")
    return 0


def _keras_input(model: Any) -> tuple[int, ...] | None:
    shape = getattr(model, "input_shape", None)
    if isinstance(shape, tuple) and all(s is None or isinstance(s, int) for s in shape):
        return shape
    return None


def explain_command(args: argparse.Namespace) -> Path:
    """Load the model and inputs named in ``args``, explain, write ``args.out``."""
    from . import explain_predictions, format_as_image, save_html
    from .adapters import is_keras_model
    from .loaders import (
        InputError,
        encode_texts,
        fixed_batch_size,
        load_images,
        load_model,
        read_vocabulary,
    )

    out = Path(args.out)
    if out.suffix not in (".html", ".png"):
        raise InputError(f"--out must end in .html or .png, got {str(out)!r}")
    model = load_model(args.model)
    is_keras = is_keras_model(model)
    shape = _keras_input(model) if is_keras else None
    kwargs: dict[str, Any] = {"method": args.method, "progress": False,
                              "batch_size": fixed_batch_size(model)}
    if args.targets is not None:
        kwargs["targets"] = args.targets
    if args.top_targets is not None:
        kwargs["top_targets"] = args.top_targets
    if args.layer is not None:
        kwargs["layer"] = int(args.layer) if args.layer.lstrip("-").isdigit() else args.layer
    if args.target_names:
        names_file = Path(args.target_names)
        if not names_file.is_file():
            raise InputError(f"target names file {str(names_file)!r} does not exist")
        kwargs["target_names"] = names_file.read_text(encoding="utf-8").splitlines()
    if args.vocab:
        texts = []
        for p in map(Path, args.inputs):
            if not p.is_file():
                raise InputError(f"input file {str(p)!r} does not exist")
            texts.append(p.read_text(encoding="utf-8"))
        length = args.length or (shape[1] if shape and len(shape) == 2 else None)
        ids, tokens, pad = encode_texts(texts, read_vocabulary(args.vocab), length)
        expls = explain_predictions(model, ids, tokens=tokens, pad_value=pad, **kwargs)
    else:
        channels_last = False
        size = tuple(args.size) if args.size else (224, 224)
        channels = args.channels
        if shape is not None:
            if len(shape) != 4:
                raise InputError(
                    f"the model takes input of shape {shape}, not images; for a text model "
                    "pass --vocab"
                )
            import keras

            channels_last = keras.config.image_data_format() == "channels_last"
            h, w, c = shape[1:] if channels_last else (shape[2], shape[3], shape[1])
            size = (h or size[0], w or size[1])
            channels = c or channels
        x, pictures = load_images(args.inputs, (int(size[0]), int(size[1])), channels,
                                  channels_last, args.mean, args.std)
        expls = []
        for i, pic in enumerate(pictures):
            expls += explain_predictions(model, x[i:i + 1], image=pic, **kwargs)
    if out.suffix == ".png":
        out.parent.mkdir(parents=True, exist_ok=True)
        format_as_image(expls if len(expls) > 1 else expls[0]).save(out)
        return out
    return save_html(out, expls, title=f"eli5-nn: {Path(args.model).name}")
