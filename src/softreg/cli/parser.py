"""The ``softreg`` command's parser: its subcommands, their flags and their help.

:func:`build_parser` is all a caller needs; one function per subcommand adds its flags.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from softreg import __version__
from softreg.cli.flags import add_config_flags, add_data_dir, directory
from softreg.data import DATASET_NAMES
from softreg.distributed import DEFAULT_TIMEOUT as DIST_TIMEOUT
from softreg.errors import printable
from softreg.recipes import RECIPES
from softreg.run_options import MAX_SHOW

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


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, named after its command, made printable.

    The full usage is one ``--help`` away; what the user typed is shown with control
    characters escaped.
    """

    commands: dict[str, argparse.ArgumentParser]  # the subcommands' parsers (build_parser)

    def error(self, message: str) -> None:  # type: ignore[override]
        """Print ``softreg <command>: error: <message> (see --help)`` and exit with 2."""
        self.exit(2, f"{self.prog}: error: {printable(message)} (see --help)\n")

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        """Parse ``args``; unknown arguments are an error of the command they were given to."""
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:  # said by the command's parser: "softreg train: error: ..."
            commands = getattr(self, "commands", {})
            parser = commands.get(getattr(parsed, "command", None), self)
            parser.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of the ``softreg`` command and its subcommands.

    Returns
    -------
    argparse.ArgumentParser
        Its ``parse_args`` returns a namespace whose ``command`` names the subcommand. A
        usage error prints one line on stderr and exits with status 2.
    """
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
    for add in (_add_train, _add_sweep, _add_evaluate, _add_stability, _add_predict, _add_data):
        add(sub)
    parser.commands = dict(sub.choices)
    return parser


def _add_train(sub) -> None:
    """Add ``softreg train``: a run directory from a configuration, or ``--resume``."""
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
    add_config_flags(train)
    train.add_argument(
        "--out", type=directory, help="run directory (default: runs/<dataset>-<time>)"
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
        type=directory,
        metavar="DIR",
        help="continue the run in DIR from its last checkpoint, exactly as it "
        "would have gone on (its configuration comes from DIR)",
    )
    _add_distributed(train)
    add_data_dir(train)
    train.add_argument(
        "--show",
        type=int,
        default=16,
        metavar="N",
        help=f"images in the prediction grids, 0 to {MAX_SHOW} (default: %(default)s)",
    )
    train.add_argument("--no-plots", action="store_true", help="skip the figures")
    train.add_argument("--quiet", action="store_true", help="no progress output")


def _add_distributed(train: argparse.ArgumentParser) -> None:
    """Add ``softreg train``'s flags for data-parallel training."""
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


def _add_sweep(sub) -> None:
    """Add ``softreg sweep``: one model per learning rate or batch size."""
    sweep = sub.add_parser(
        "sweep",
        help="train one model per learning rate or batch size; plot validation loss",
        epilog=SWEEP_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_flags(sweep, lists=("lr", "batch_size"))
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
        type=directory,
        help="directory for the CSV, JSON and figures (default: runs/sweep-<field>-<time>)",
    )
    sweep.add_argument(
        "--overwrite", action="store_true", help="replace an earlier sweep's files in --out"
    )
    add_data_dir(sweep)
    sweep.add_argument("--no-plots", action="store_true", help="skip the figures")
    sweep.add_argument("--quiet", action="store_true", help="no per-run progress lines")


def _add_evaluate(sub) -> None:
    """Add ``softreg evaluate``: the report on a saved model."""
    evaluate = sub.add_parser(
        "evaluate",
        help="test accuracy, top-k, confusion, calibration, abstaining and costs of a saved model",
    )
    evaluate.add_argument("model", type=Path, help="a model.safetensors file")
    evaluate.add_argument(
        "--dataset", choices=DATASET_NAMES, help="default: the dataset the model was trained on"
    )
    add_data_dir(evaluate)
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
        type=directory,
        metavar="DIR",
        help="where evaluation.json, coverage.csv and the figures go "
        "(default: evaluation/ beside the model file)",
    )
    evaluate.add_argument("--no-plots", action="store_true", help="skip the figures")


def _add_stability(sub) -> None:
    """Add ``softreg stability``: the chapter's overflow and underflow exercise."""
    sub.add_parser(
        "stability",
        help="the chapter's overflow/underflow exercise: naive and "
        "stable softmax and loss against a 50-digit reference",
    )


def _add_predict(sub) -> None:
    """Add ``softreg predict``: the classes of test images or image files."""
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
    add_data_dir(predict)
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


def _add_data(sub) -> None:
    """Add ``softreg data``: where a dataset is (downloaded if need be)."""
    data = sub.add_parser("data", help="find (or download) a dataset and say where it is")
    data.add_argument("--dataset", choices=DATASET_NAMES, default="fashion-mnist")
    add_data_dir(data)
    data.add_argument(
        "--no-download", action="store_true", help="only look in the usual places; never download"
    )
