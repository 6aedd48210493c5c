"""``softreg train`` and ``softreg sweep``: the commands that train.

Both map their flags onto a :class:`~softreg.config.TrainConfig` and call the library
(:func:`softreg.runs.train_run`, :func:`softreg.runs.resume_run`,
:func:`softreg.sweep.sweep_main`), imported when the command runs.
"""

from __future__ import annotations

import argparse
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from softreg.config import TrainConfig
from softreg.errors import SoftregError, printable
from softreg.recipes import recipe_config
from softreg.run_options import MAX_SHOW, RunOptions

# TrainConfig fields that do not change what the book's recipe trains (see is_book_recipe).
BOOK_FREE_FIELDS = ("seed", "backend", "device", "eval_batch_size", "log_every", "kernel")

# The run directory's files named in the last line softreg train prints, when present.
SHOWN_FILES = (
    "metrics.json",
    "curves.png",
    "predictions.png",
    "misclassified.png",
    "model.safetensors",
)


def cmd_train(args: argparse.Namespace) -> int:
    """Run ``softreg train``: train a new run, or continue one with ``--resume``.

    Parameters
    ----------
    args : argparse.Namespace
        A flag per TrainConfig field, ``--recipe``, ``--out``, ``--overwrite``,
        ``--checkpoint-every``, ``--resume``, ``--distributed``, ``--dist-timeout``,
        ``--data-dir``, ``--show``, ``--no-plots`` and ``--quiet``.

    Returns
    -------
    int
        0, once the run has finished and (on rank 0) its final metrics and directory are
        printed, or when ``--resume`` finds the run finished already.

    Raises
    ------
    SoftregError
        A flag is out of range or does not go with ``--resume``, or the run is refused.
    """
    from softreg.runs import resume_run, train_run

    _check_train_flags(args)
    config = None if args.resume is not None else _config_from_flags(args)
    options = RunOptions(
        data_dir=args.data_dir,
        progress=not args.quiet,
        plots=not args.no_plots,
        n_show=args.show,
        checkpoint_every=args.checkpoint_every,
        communicator=_join(args, config) if args.distributed else None,
    )
    if config is None:
        result = resume_run(args.resume, options=options)
        if result is None:
            if options.writes:
                print(
                    printable(f"{args.resume}: the run has already finished (see its metrics.json)")
                )
            return 0
    else:
        result = train_run(config, args.out, overwrite=args.overwrite, options=options)
    if options.communicator is not None:
        options.communicator.close()
    if options.writes:
        _print_summary(result)
    return 0


def _check_train_flags(args: argparse.Namespace) -> None:
    """Refuse flags out of range, and flags that would change a resumed run."""
    if not 0 <= args.show <= MAX_SHOW:
        raise SoftregError(f"--show must be 0 to {MAX_SHOW}, got {args.show}")
    if args.checkpoint_every is not None and args.checkpoint_every < 0:
        raise SoftregError(f"--checkpoint-every must be >= 0, got {args.checkpoint_every}")
    if args.resume is None:
        return
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


def _config_from_flags(args: argparse.Namespace) -> TrainConfig:
    """Return the configuration the flags give: a recipe's with the flags given on top."""
    if args.recipe is not None:
        return recipe_config(args.recipe, **{name: getattr(args, name) for name in args.given})
    return TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})


def _join(args: argparse.Namespace, config: TrainConfig | None) -> Any:
    """Return this process's place in the torchrun job (for ``--distributed``).

    ``config`` None: a resumed run's, read from its directory.
    """
    from softreg import distributed

    if config is None:
        from softreg.run_files import read_run_config

        config = read_run_config(args.resume)
    distributed.check_config(config)
    return distributed.init(config.device, timeout=args.dist_timeout)


def _print_summary(result: Any) -> None:
    """Print the final metrics, the book's bars (for its recipe) and the run directory."""
    m = result.metrics
    resumed = (
        f" (continued from step {m['resumed_from_step']})" if m.get("resumed_from_step") else ""
    )
    print(
        f"final: train loss {m['train_loss']:.4f}, train acc {m['train_acc']:.4f}, "
        f"test acc {m['test_acc']:.4f}; trained in {m['seconds_train']:.2f} s{resumed}"
    )
    if is_book_recipe(result.config):
        meets = m["train_loss"] < 0.5 and m["train_acc"] > 0.7 and m["test_acc"] > 0.7
        print(
            f"the book's bars (train loss < 0.5, accuracies > 0.7): {'met' if meets else 'NOT met'}"
        )
    shown = [name for name in SHOWN_FILES if (result.run_dir / name).exists()]
    print(printable(f"run directory: {result.run_dir}/ ({', '.join(shown)})"))


def is_book_recipe(config: TrainConfig) -> bool:
    """Whether ``config`` is the book's recipe, whose bars ``softreg train`` reports.

    Fashion-MNIST, softmax regression, 10 epochs, batch 256, lr 0.1 and every other field
    that decides what is trained at the recipe's value; the seed, the backend, the device,
    ``eval_batch_size``, ``log_every`` and ``kernel`` may be anything (the bars hold for each).

    Parameters
    ----------
    config : TrainConfig
        A run's configuration.

    Returns
    -------
    bool
        True when the run trained the book's recipe.
    """
    book = recipe_config("book")
    as_book = replace(config, **{name: getattr(book, name) for name in BOOK_FREE_FIELDS})
    return as_book.trains_like(book)


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run ``softreg sweep``: one model per value of ``--lr`` or ``--batch-size``.

    Parameters
    ----------
    args : argparse.Namespace
        A flag per TrainConfig field (``--lr`` or ``--batch-size`` a comma-separated list),
        ``--equal``, ``--val-fraction``, ``--workers``, ``--out``, ``--overwrite``,
        ``--data-dir``, ``--no-plots`` and ``--quiet``.

    Returns
    -------
    int
        0, once every point is trained and the sweep's files are written.

    Raises
    ------
    SoftregError
        Not exactly one of ``--lr`` and ``--batch-size`` is a list, a value is not a number,
        or the sweep is refused.
    """
    import time

    from softreg.sweep import SweepPlan, parse_values, sweep_main

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
        SweepPlan(config, field, values, equal=equal, val_fraction=args.val_fraction),
        out_dir=out,
        data_dir=args.data_dir,
        workers=args.workers,
        progress=not args.quiet,
        plots=not args.no_plots,
        overwrite=args.overwrite,
    )
    return 0


def _number(kind: type, flag: str, text: str) -> Any:
    """Return ``text`` as a ``kind`` (int or float), or refuse it naming ``flag``."""
    try:
        return kind(text)
    except ValueError:
        raise SoftregError(f"{flag}: expected a number, got {text!r}") from None
