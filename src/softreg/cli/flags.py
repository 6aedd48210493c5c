"""The flags that set a :class:`~softreg.config.TrainConfig`, and the flag types shared.

``softreg train`` and ``softreg sweep`` take one flag per configuration field
(``batch_size`` is ``--batch-size``); the help below says what each does.
"""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

from softreg.backend import BACKENDS, DEVICES
from softreg.config import KERNELS, NORMALIZE, OPTIMIZERS, SOFTMAX, TrainConfig
from softreg.data import DATASET_NAMES
from softreg.models import MODELS
from softreg.optim import LR_SCHEDULES

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
    "kernel": "fused: softmax regression's NumPy step in one compiled pass (needs numba: "
    "softreg[fast]); array: the array-API step; auto: fused where it applies (default: "
    "%(default)s)",
}

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
    "kernel": KERNELS,
}


class _Given(argparse.Action):
    """Store the value and record that the flag was given (``namespace.given``).

    A recipe's values or a resumed run's configuration are overridden only by flags the user
    typed.
    """

    def __call__(self, parser, namespace, values, option_string=None):  # type: ignore[override]
        setattr(namespace, self.dest, values)
        namespace.given = {*getattr(namespace, "given", ()), self.dest}


def add_config_flags(parser: argparse.ArgumentParser, *, lists: tuple[str, ...] = ()) -> None:
    """Add one flag per :class:`~softreg.config.TrainConfig` field to ``parser``.

    The flags default to TrainConfig's defaults; the names of those given are collected in
    ``namespace.given``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        A command's parser.
    lists : tuple of str
        Fields whose flags take comma-separated values (``softreg sweep --lr 0.01,0.1,1``),
        kept as text for the command to parse.
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
            kwargs["type"] = layer_sizes
            kwargs["metavar"] = "N,N,..."
        if f.name in lists:
            kwargs.update(type=str, default=str(getattr(defaults, f.name)), metavar="V[,V,...]")
            kwargs["help"] += "; a comma-separated list is the sweep"
        parser.add_argument(flag, **kwargs)


def layer_sizes(text: str) -> tuple[int, ...]:
    """Parse ``--hidden``: ``"512,256,128,64"`` is ``(512, 256, 128, 64)``.

    Parameters
    ----------
    text : str
        Comma-separated layer sizes; an empty string is no hidden layer.

    Returns
    -------
    tuple of int
        The sizes, each >= 1.

    Raises
    ------
    argparse.ArgumentTypeError
        A size is not an integer or is below 1.
    """
    try:
        sizes = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if any(size < 1 for size in sizes):
        raise argparse.ArgumentTypeError(f"layer sizes must be >= 1, got {text!r}")
    return sizes


def directory(text: str) -> Path:
    """Parse a directory flag's value, refusing an empty one.

    Parameters
    ----------
    text : str
        The value given.

    Returns
    -------
    Path
        The directory.

    Raises
    ------
    argparse.ArgumentTypeError
        ``text`` is empty or blank: it would silently mean the current directory.
    """
    if not text.strip():
        raise argparse.ArgumentTypeError(
            "an empty directory name; give one (. for the current directory)"
        )
    return Path(text)


def add_data_dir(parser: argparse.ArgumentParser) -> None:
    """Add ``--data-dir`` to a command's parser.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        A command's parser.
    """
    parser.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="where the dataset files are (default: $SOFTREG_DATA, then caches)",
    )
