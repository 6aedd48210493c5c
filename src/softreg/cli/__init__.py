"""The ``softreg`` command: parse flags into a config, call the library, print.

Errors a user can fix (bad flags, missing data, damaged files) print one line on stderr and
exit with status 2; no traceback. So does anything unexpected (a defect), with a hint to
rerun with ``--debug`` (or ``SOFTREG_DEBUG=1``), which shows the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path

from softreg import __version__
from softreg.backend import BACKENDS, DEVICES
from softreg.config import NORMALIZE, OPTIMIZERS, SOFTMAX, TrainConfig
from softreg.data import DATASET_NAMES
from softreg.distributed import DEFAULT_TIMEOUT as DIST_TIMEOUT
from softreg.errors import SoftregError, printable, require
from softreg.models import MODELS
from softreg.optim import LR_SCHEDULES
from softreg.recipes import RECIPES, recipe_config
from softreg.runs import MAX_SHOW

DEBUG_VAR = "SOFTREG_DEBUG"  # set to 1: unexpected errors show their traceback

EXAMPLES = """\
examples:
  softreg train                                   # the book's recipe on Fashion-MNIST
  softreg train --dataset mnist --epochs 20 --out runs/mnist
  softreg train --recipe best-linear              # the best linear model on raw pixels
  softreg train --checkpoint-every 100 --out runs/long   # then, if it is stopped:
  softreg train --resume runs/long                # continues exactly where it stopped
  torchrun --nproc-per-node 2 -m softreg train --backend torch --distributed   # 2 ranks
  softreg evaluate runs/mnist/model.safetensors --dataset mnist
  softreg predict runs/mnist/model.safetensors --index 0 1 2 --top 3
  softreg predict runs/book/model.safetensors shoe.png
  softreg data --dataset mnist                    # where is MNIST? (downloads if needed)

data: found through --data-dir, $SOFTREG_DATA, ~/.cache/softreg, /usr/share/datasets
(Debian: apt-get install dataset-fashion-mnist), else downloaded from the official mirrors.
"""

SWEEP_EXAMPLES = """\
examples:
  softreg sweep --lr 0.01,0.03,0.1,0.3,1                  # validation loss against lr
  softreg sweep --batch-size 1,16,64,256,1024,60000       # at equal epochs and equal updates
  softreg sweep --lr 0.001,0.01,0.1 --model mlp --dataset mnist --epochs 2

Validation is a held-out part of the training set (--val-fraction), never the test set.
"""

# One flag per TrainConfig field (tests check that none is missing).
TRAIN_HELP = {
    "dataset": "fashion-mnist, mnist, or synthetic (the seed's generated 2-D, 3-class "
    "data) (default: %(default)s)",
    "model": "softmax-regression (the book's) or mlp (the lecture's) (default: %(default)s)",
    "hidden": "the MLP's hidden layer sizes, comma-separated (default: 512,256,128,64)",
    "epochs": "passes over the training set (default: %(default)s)",
    "batch_size": "examples per SGD step (default: %(default)s)",
    "lr": "SGD learning rate (default: %(default)s)",
    "lr_schedule": "constant, or cosine: the learning rate falls from --lr along a half "
    "cosine to near 0 at the last step (default: %(default)s)",
    "momentum": "SGD momentum, PyTorch's rule (default: %(default)s)",
    "weight_decay": "L2 penalty added to the gradient (default: %(default)s)",
    "optimizer": "sgd (shuffled minibatches) or gd (full-batch gradient descent; --epochs "
    "counts iterations) (default: %(default)s)",
    "normalize": "standardise inputs with the training set's mean and std: yes, no, auto "
    "(yes for mlp, no for softmax-regression), or per-feature (each pixel its "
    "own; folded into the saved model) (default: %(default)s)",
    "softmax": "stable (log-sum-exp), or naive: the book's exp(o) / sum(exp(o)), which "
    "overflows for large scores (the chapter's exercise) (default: %(default)s)",
    "chunk_size": "compute the output layer's loss and gradients over chunks of N classes, "
    "never forming the (batch, classes) scores: for large vocabularies; 0: all "
    "classes at once (default: %(default)s)",
    "sampled": "train with sampled softmax: N classes drawn per step from the training "
    "labels' frequencies, log-Q corrected (N below the number of classes); "
    "reported losses stay exact; 0: the exact gradient (default: %(default)s)",
    "seed": "seed for the initial weights and the data order; same seed, same run "
    "(default: %(default)s)",
    "sigma": "standard deviation of the initial weights (default: %(default)s)",
    "backend": "array library to compute with; torch, jax and tensorflow need the extra of "
    "that name, e.g. softreg[torch] (default: %(default)s)",
    "device": "where torch or jax compute: cpu, or cuda (= gpu) (default: %(default)s)",
    "eval_batch_size": "rows per evaluation chunk: bounds memory; the test loss can differ in "
    "its last float32 digits (default: %(default)s)",
    "log_every": "print the running loss every N batches; 0: never (default: %(default)s)",
}


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the full usage is one --help away), named
    after the command it belongs to, with what the user typed made printable.
    """

    commands: dict[str, argparse.ArgumentParser]  # the subcommands' parsers (build_parser)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {printable(message)} (see --help)\n")

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:  # said by the command's parser: "softreg train: error: ..."
            commands = getattr(self, "commands", {})
            parser = commands.get(getattr(parsed, "command", None), self)
            parser.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="softreg",
        description="Softmax classifiers from first principles (d2l, softmax regression).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"softreg {__version__}")
    parser.add_argument(
        "--debug",
        action="store_true",
        help=f"show the traceback of an unexpected error (or set {DEBUG_VAR}=1)",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = sub.add_parser(
        "train",
        help="train softmax regression and write a run directory",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )  # a recipe is overridden by the flags given
    train.add_argument(
        "--recipe",
        choices=tuple(RECIPES),
        default=None,
        help="start from a named recipe: book (the defaults), lecture-mlp, or "
        "best-linear; flags given as well override it",
    )
    _add_config_flags(train)
    train.add_argument(
        "--out", type=_directory, help="run directory (default: runs/<dataset>-<time>)"
    )
    train.add_argument("--overwrite", action="store_true", help="replace an earlier run in --out")
    train.add_argument(
        "--checkpoint-every",
        type=int,
        default=None,
        metavar="N",
        help="save the training state every N steps (and at the start and "
        "end), so that --resume can continue the run if it is stopped",
    )
    train.add_argument(
        "--resume",
        type=_directory,
        metavar="DIR",
        help="continue the run in DIR from its last checkpoint, exactly as it "
        "would have gone on (its configuration comes from DIR)",
    )
    train.add_argument(
        "--distributed",
        action="store_true",
        help="data-parallel training on torch.distributed, one process per "
        "rank: launch with torchrun --nproc-per-node N -m softreg train "
        "--backend torch --distributed ...; only rank 0 writes",
    )
    train.add_argument(
        "--dist-timeout",
        type=float,
        default=DIST_TIMEOUT,
        metavar="SECONDS",
        help="with --distributed: how long a rank waits for the others before "
        "it stops with an error (default: %(default)s)",
    )
    _add_data_dir(train)
    train.add_argument(
        "--show",
        type=int,
        default=16,
        metavar="N",
        help=f"images in the prediction grids, 0 to {MAX_SHOW} (default: %(default)s)",
    )
    train.add_argument("--no-plots", action="store_true", help="skip the figures")
    train.add_argument("--quiet", action="store_true", help="no progress output")

    sweep = sub.add_parser(
        "sweep",
        help="train one model per learning rate or batch size; plot validation loss",
        epilog=SWEEP_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_config_flags(sweep, lists=("lr", "batch_size"))
    sweep.add_argument(
        "--equal",
        choices=("epochs", "updates", "both"),
        default=None,
        help="compare at equal epochs, equal SGD updates, or both "
        "(default: epochs for --lr, both for --batch-size)",
    )
    sweep.add_argument(
        "--val-fraction",
        type=float,
        default=0.1,
        metavar="F",
        help="held-out part of the training set to validate on; the test set "
        "is never used (default: %(default)s)",
    )
    sweep.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="processes to train in (default: one per core, at most one per value)",
    )
    sweep.add_argument(
        "--out",
        type=_directory,
        help="directory for the CSV, JSON and figures (default: runs/sweep-<field>-<time>)",
    )
    sweep.add_argument(
        "--overwrite", action="store_true", help="replace an earlier sweep's files in --out"
    )
    _add_data_dir(sweep)
    sweep.add_argument("--no-plots", action="store_true", help="skip the figures")
    sweep.add_argument("--quiet", action="store_true", help="no per-run progress lines")

    evaluate = sub.add_parser(
        "evaluate",
        help="test accuracy, top-k, confusion, calibration, abstaining and costs of a saved model",
    )
    evaluate.add_argument("model", type=Path, help="a model.safetensors file")
    evaluate.add_argument(
        "--dataset", choices=DATASET_NAMES, help="default: the dataset the model was trained on"
    )
    _add_data_dir(evaluate)
    evaluate.add_argument("--json", action="store_true", help="print the result as JSON")
    evaluate.add_argument(
        "--reject-below",
        type=float,
        metavar="P",
        help="abstain when the top (temperature-scaled) probability is below "
        "P; report coverage and accuracy on the rest",
    )
    evaluate.add_argument(
        "--cost-matrix",
        type=Path,
        metavar="FILE",
        help="k x k costs (CSV or .npy; [i, j] = cost of predicting j for "
        "true i): decide by least expected cost and compare with arg-max",
    )
    evaluate.add_argument(
        "--out",
        type=_directory,
        metavar="DIR",
        help="where evaluation.json, coverage.csv and the figures go "
        "(default: evaluation/ beside the model file)",
    )
    evaluate.add_argument("--no-plots", action="store_true", help="skip the figures")

    sub.add_parser(
        "stability",
        help="the chapter's overflow/underflow exercise: naive and "
        "stable softmax and loss against a 50-digit reference",
    )

    predict = sub.add_parser("predict", help="predict classes of test images or image files")
    predict.add_argument("model", type=Path, help="a model.safetensors file")
    predict.add_argument(
        "images", nargs="*", type=Path, help="image files (PNG, JPEG, .npy of 28x28) to classify"
    )
    predict.add_argument(
        "--index",
        type=int,
        nargs="+",
        default=[],
        metavar="I",
        help="indices of test-set images to classify",
    )
    predict.add_argument(
        "--dataset", choices=DATASET_NAMES, help="dataset for --index (default: the model's)"
    )
    _add_data_dir(predict)
    predict.add_argument(
        "--top",
        type=int,
        default=1,
        metavar="K",
        help="show the K most likely classes (default: %(default)s)",
    )
    predict.add_argument(
        "--invert",
        choices=("auto", "yes", "no"),
        default="auto",
        help="invert light-background pictures (default: %(default)s)",
    )
    data = sub.add_parser("data", help="find (or download) a dataset and say where it is")
    data.add_argument("--dataset", choices=DATASET_NAMES, default="fashion-mnist")
    _add_data_dir(data)
    data.add_argument(
        "--no-download", action="store_true", help="only look in the usual places; never download"
    )
    parser.commands = dict(sub.choices)
    return parser


# The TrainConfig fields whose flags take one of a fixed set of values.
CHOICES = {
    "dataset": DATASET_NAMES,
    "backend": BACKENDS,
    "device": DEVICES,
    "model": tuple(MODELS),
    "optimizer": OPTIMIZERS,
    "normalize": NORMALIZE,
    "softmax": SOFTMAX,
    "lr_schedule": LR_SCHEDULES,
}


class _Given(argparse.Action):
    """Stores the value and records that the flag was given (``namespace.given``), so a
    recipe's values or a resumed run's configuration are overridden only by flags the user
    typed.
    """

    def __call__(self, parser, namespace, values, option_string=None):  # type: ignore[override]
        setattr(namespace, self.dest, values)
        namespace.given = {*getattr(namespace, "given", ()), self.dest}


def _add_config_flags(parser: argparse.ArgumentParser, *, lists: tuple[str, ...] = ()) -> None:
    """One flag per TrainConfig field. Fields in ``lists`` take comma-separated values
    (``softreg sweep --lr 0.01,0.1,1``) and are parsed by the command.
    """
    defaults = TrainConfig()
    parser.set_defaults(given=set())
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        kind = type(getattr(defaults, f.name))
        kwargs = {
            "type": kind,
            "default": getattr(defaults, f.name),
            "help": TRAIN_HELP[f.name],
            "action": _Given,
        }
        if f.name in CHOICES:
            kwargs["choices"] = CHOICES[f.name]
        if f.name == "hidden":
            kwargs["type"] = _layer_sizes
            kwargs["metavar"] = "N,N,..."
        if f.name in lists:
            kwargs.update(type=str, default=str(getattr(defaults, f.name)), metavar="V[,V,...]")
            kwargs["help"] += "; a comma-separated list is the sweep"
        parser.add_argument(flag, **kwargs)


def _layer_sizes(text: str) -> tuple[int, ...]:
    """``"512,256,128,64"`` -> ``(512, 256, 128, 64)``; an empty string is no hidden layer."""
    try:
        sizes = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if any(size < 1 for size in sizes):
        raise argparse.ArgumentTypeError(f"layer sizes must be >= 1, got {text!r}")
    return sizes


def _directory(text: str) -> Path:
    """A directory flag's value: an empty one would silently mean the current directory."""
    if not text.strip():
        raise argparse.ArgumentTypeError(
            "an empty directory name; give one (. for the current directory)"
        )
    return Path(text)


def _add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="where the dataset files are (default: $SOFTREG_DATA, then caches)",
    )


def cmd_train(args: argparse.Namespace) -> int:
    from softreg.runs import read_run_config, resume_run, train_run

    if not 0 <= args.show <= MAX_SHOW:
        raise SoftregError(f"--show must be 0 to {MAX_SHOW}, got {args.show}")
    if args.checkpoint_every is not None and args.checkpoint_every < 0:
        raise SoftregError(f"--checkpoint-every must be >= 0, got {args.checkpoint_every}")
    options = {
        "data_dir": args.data_dir,
        "progress": not args.quiet,
        "plots": not args.no_plots,
        "n_show": args.show,
    }
    if args.resume is not None:
        given = ["--" + name.replace("_", "-") for name in sorted(args.given)]
        given += [
            flag
            for flag, value in (
                ("--out", args.out),
                ("--overwrite", args.overwrite),
                ("--recipe", args.recipe),
            )
            if value
        ]
        if given:
            raise SoftregError(
                f"--resume continues the run with the configuration in "
                f"{args.resume}/config.json; drop {', '.join(given)}"
            )
        options["communicator"] = (
            _join(args, read_run_config(args.resume)) if args.distributed else None
        )
        result = resume_run(args.resume, checkpoint_every=args.checkpoint_every, **options)
        if result is None:
            if _leads(options["communicator"]):
                print(
                    printable(f"{args.resume}: the run has already finished (see its metrics.json)")
                )
            return 0
    else:
        if args.recipe is not None:
            config = recipe_config(
                args.recipe, **{name: getattr(args, name) for name in args.given}
            )
        else:
            config = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})
        options["communicator"] = _join(args, config) if args.distributed else None
        result = train_run(
            config,
            args.out,
            overwrite=args.overwrite,
            checkpoint_every=args.checkpoint_every or 0,
            **options,
        )
    if options["communicator"] is not None:
        options["communicator"].close()
    if not _leads(options["communicator"]):
        return 0
    m = result.metrics
    meets = m["train_loss"] < 0.5 and m["train_acc"] > 0.7 and m["test_acc"] > 0.7
    resumed = (
        f" (continued from step {m['resumed_from_step']})" if m.get("resumed_from_step") else ""
    )
    print(
        f"final: train loss {m['train_loss']:.4f}, train acc {m['train_acc']:.4f}, "
        f"test acc {m['test_acc']:.4f}; trained in {m['seconds_train']:.2f} s{resumed}"
    )
    if (m["model"], m["dataset"]) == ("softmax-regression", "fashion-mnist"):
        print(
            f"the book's bars (train loss < 0.5, accuracies > 0.7): {'met' if meets else 'NOT met'}"
        )
    shown = [
        name
        for name in (
            "metrics.json",
            "curves.png",
            "predictions.png",
            "misclassified.png",
            "model.safetensors",
        )
        if (result.run_dir / name).exists()
    ]
    print(printable(f"run directory: {result.run_dir}/ ({', '.join(shown)})"))
    return 0


def _join(args: argparse.Namespace, config: TrainConfig):
    """For --distributed: this process's place in the torchrun job."""
    from softreg import distributed

    distributed.check_config(config)
    return distributed.init(config.device, timeout=args.dist_timeout)


def _leads(communicator) -> bool:
    """Whether this process prints: rank 0 of a data-parallel run, or a single process."""
    return communicator is None or communicator.rank == 0


def cmd_sweep(args: argparse.Namespace) -> int:
    import time

    from softreg.sweep import parse_values, sweep_main

    listed = [name for name in ("lr", "batch_size") if "," in getattr(args, name)]
    if len(listed) != 1:
        raise SoftregError(
            "give a comma-separated list to exactly one of --lr and "
            "--batch-size, e.g. --lr 0.01,0.03,0.1,0.3,1"
        )
    field = listed[0]
    values = parse_values(field, getattr(args, field))
    scalars = {
        "lr": _number(float, "--lr", args.lr) if field != "lr" else TrainConfig.lr,
        "batch_size": (
            _number(int, "--batch-size", args.batch_size)
            if field != "batch_size"
            else TrainConfig.batch_size
        ),
    }
    config = TrainConfig(
        **{f.name: scalars.get(f.name, getattr(args, f.name, None)) for f in fields(TrainConfig)}
    )
    equal = args.equal or ("epochs" if field == "lr" else "both")
    out = args.out or Path("runs") / f"sweep-{field}-{time.strftime('%Y%m%d-%H%M%S')}"
    sweep_main(
        config,
        field,
        values,
        out_dir=out,
        data_dir=args.data_dir,
        equal=equal,
        workers=args.workers,
        val_fraction=args.val_fraction,
        progress=not args.quiet,
        plots=not args.no_plots,
        overwrite=args.overwrite,
    )
    return 0


def _number(kind, flag: str, text: str):
    try:
        return kind(text)
    except ValueError:
        raise SoftregError(f"{flag}: expected a number, got {text!r}") from None


def cmd_evaluate(args: argparse.Namespace) -> int:
    from softreg.checkpoint import load_model
    from softreg.report import (
        format_report,
        model_report,
        read_cost_matrix,
        report_directory,
        write_report,
    )

    out = args.out or args.model.parent / "evaluation"
    report_directory(out).check()  # before the work, as everything below
    loaded = load_model(args.model)
    if args.reject_below is not None and not 0 <= args.reject_below <= 1:
        raise SoftregError(
            f"--reject-below must be a probability in [0, 1], got {args.reject_below}"
        )
    if not args.no_plots:
        require("matplotlib.figure", "drawing the figures (or pass --no-plots)")
    data = _dataset_for(loaded, args)
    cost = (
        read_cost_matrix(args.cost_matrix, data.num_classes)
        if args.cost_matrix is not None
        else None
    )
    report = model_report(
        loaded.model, loaded.params, data, reject_below=args.reject_below, cost=cost
    )
    written = write_report(report, out, plots=not args.no_plots)
    if args.json:
        print(
            json.dumps(
                {
                    "dataset": data.name,
                    "test_acc": report["accuracy"],
                    "test_loss": report["nll"],
                    "n": report["n"],
                    "report": str(written[0]),
                }
            )
        )
    else:
        correct = round(report["accuracy"] * report["n"])
        print(
            f"{data.name} test accuracy {report['accuracy']:.4f} ({correct}/{report['n']}), "
            f"test loss {report['nll']:.4f}"
        )
        print("\n".join(format_report(report)))
        print(printable(f"wrote {out}/ ({', '.join(p.name for p in written)})"))
    return 0


def cmd_stability(args: argparse.Namespace) -> int:
    from softreg.stability import main_text

    print(main_text())
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    import numpy as np

    from softreg.checkpoint import load_model
    from softreg.predict import predict_top_k, read_image_file

    loaded = load_model(args.model)
    if not args.images and not args.index:
        raise SoftregError("nothing to predict: give image files or --index I ...")
    if args.top < 1:
        raise SoftregError(f"--top must be >= 1, got {args.top}")
    names, rows, truths = [], [], []
    if args.index:
        data = _dataset_for(loaded, args)
        n_test = data.X_test.shape[0]
        for i in args.index:
            if not 0 <= i < n_test:
                raise SoftregError(f"--index {i} outside the test set [0, {n_test})")
            names.append(f"test[{i}]")
            rows.append(data.X_test[i])
            truths.append(data.class_names[data.y_test[i]])
    side = int(round(loaded.model.num_inputs**0.5))
    for path in args.images:
        image = read_image_file(path, size=(side, side), invert=args.invert)
        names.append(str(path))
        rows.append(image.reshape(-1).astype(np.float32) / np.float32(255))
        truths.append(None)
    X = np.stack(rows)
    _check_features(loaded, X.shape[1], "input")
    width = max(len(n) for n in names)
    predictions = predict_top_k(loaded.model, loaded.params, X, loaded.class_names, k=args.top)
    for name, pred, truth in zip(names, predictions, truths, strict=True):
        ranked = ", ".join(
            f"{label} ({p:.3f})" for label, p in zip(pred.labels, pred.probs, strict=True)
        )
        suffix = f"   true: {truth}" if truth is not None else ""
        print(printable(f"{name:<{width}}  {ranked}{suffix}"))
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from softreg.data import load_dataset

    data = load_dataset(args.dataset, data_dir=args.data_dir, download=not args.no_download)
    print(
        printable(
            f"{data.name}: {len(data.train_labels)} training and "
            f"{len(data.test_labels)} test images, {data.num_classes} classes, in "
            f"{data.source}"
        )
    )
    return 0


def _dataset_for(loaded, args):
    from softreg.data import load_dataset

    name = args.dataset or loaded.metadata.get("dataset", "fashion-mnist")
    data = load_dataset(name, data_dir=args.data_dir)
    _check_features(loaded, data.X_test.shape[1], name)
    loaded.check_classes(name, data.class_names)
    return data


def _check_features(loaded, n_features: int, what: str) -> None:
    if n_features != loaded.model.num_inputs:
        raise SoftregError(
            f"the model takes {loaded.model.num_inputs} features, {what} has {n_features}"
        )


COMMANDS = {
    "train": cmd_train,
    "sweep": cmd_sweep,
    "evaluate": cmd_evaluate,
    "predict": cmd_predict,
    "data": cmd_data,
    "stability": cmd_stability,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    debug = args.debug or os.environ.get(DEBUG_VAR, "") not in ("", "0")
    with _sigterm_as_exception():
        try:
            return COMMANDS[args.command](args)
        except SoftregError as exc:
            return _error(args.command, str(exc))
        except BrokenPipeError:  # the reader went away (softreg stability | head): not an error
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        except OSError as exc:  # e.g. a full disk or a permission problem while writing
            if debug:
                raise
            where = f"{exc.filename}: " if exc.filename else ""
            return _error(args.command, f"{where}{exc.strerror or exc}")
        except KeyboardInterrupt:
            print(f"softreg {args.command}: interrupted", file=sys.stderr)
            return 128 + signal.SIGINT
        except _Terminated:
            print(f"softreg {args.command}: terminated", file=sys.stderr)
            return 128 + signal.SIGTERM
        except MemoryError:
            if debug:
                raise
            return _error(
                args.command,
                "out of memory; try a smaller --batch-size, --eval-batch-size or model",
            )
        except Exception as exc:  # a defect: still one line, and the way to see more
            if debug:
                raise
            return _error(
                args.command,
                f"unexpected {type(exc).__name__}: {exc} (this is a "
                f"defect in softreg; rerun with --debug or "
                f"{DEBUG_VAR}=1 for the traceback, and please report "
                f"it)",
            )


class _Terminated(BaseException):
    """SIGTERM, raised where the process is, so that cleanup runs (temporary files removed,
    the run directory's lock released) as it does for Ctrl-C.
    """


@contextlib.contextmanager
def _sigterm_as_exception() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():  # signals: main thread only
        yield
        return

    def terminate(signum: int, frame: object) -> None:
        raise _Terminated

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _error(command: str, message: str) -> int:
    """Print ``message`` as one line on stderr (control characters escaped, so that text
    from a hostile file cannot move the cursor or clear the screen) and return 2.
    """
    print(f"softreg {command}: error: {printable(message)}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
