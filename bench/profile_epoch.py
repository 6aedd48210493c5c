#!/usr/bin/env python
"""Where the time of softreg's training epochs goes, on any backend.

The default report profiles ``softreg.fit`` itself, on the book's recipe (softmax regression,
batch 256, lr 0.1, test accuracy after every epoch), with ``--backend numpy|torch|jax|
tensorflow`` (``--device``, and ``--kernel`` where TrainConfig has that field). It runs:

    warm-up     one un-profiled fit of one epoch (imports, first allocations, caches)
    reference   an un-profiled fit of --epochs epochs: seconds_train, seconds_compile and the
                epochs' times from the history (the numbers to compare)
    profiled    the same fit under cProfile: the top --top functions by cumulative time, in
                ms per epoch (cProfile's overhead makes Python-heavy paths look slower: read
                the shares, not the totals)

and prints, for JAX and TensorFlow, the compile/run split (FitResult.seconds_compile against
seconds_train). The report is plain text (``--out`` writes it to a file too), so a profile
taken before a change and one taken after can be put side by side (``diff -y``).

``--pieces`` (NumPy only) prints instead the older table of the NumPy step's pieces: the body
of fit's loop re-run with a clock around each library call:

    permutation   epoch_permutation(n, seed, epoch)
    gather        np.take of the batch's rows of X and y
    forward       model.forward: X @ W + b
    softmax/loss  ops.cross_entropy_with_grad: stable softmax, per-example loss, dlogits
    backward      model.backward: X.T @ dlogits and dlogits.sum(0)
    update        SGD.update: W - lr * gW, b - lr * gb (new arrays)
    metrics       the running loss sum and ops.count_correct (as fit accumulates them)
    loop/other    the rest: Python overhead of the loop and of the clocks themselves
    evaluation    softreg.evaluate on the test set (fit does this once per epoch), split into
                  its forward matmul, its cross-entropy (computed, then unused by fit) and
                  count_correct

with, for reference, the per-epoch time of an un-instrumented ``softreg.fit``; the first epoch
is a warm-up and is not counted. Run::

    SOFTREG_DATA=../shared/data .venv/bin/python bench/profile_epoch.py --backend jax
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import os
import pstats
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from _harness import data_dir, positive_int, write_report

import softreg
from softreg import ops
from softreg.data import epoch_permutation

BACKENDS = ("numpy", "torch", "jax", "tensorflow")
COMPILED = ("jax", "tensorflow")  # backends whose steps are compiled (seconds_compile > 0)
RECIPE = {"batch_size": 256, "lr": 0.1, "seed": 0, "sigma": 0.01}
PIECES = ("permutation", "gather", "forward", "softmax/loss", "backward", "update", "metrics")
EVAL_PIECES = ("eval forward", "eval loss", "eval count_correct")


def profile_epochs(
    X, y, X_test, y_test, *, epochs, batch_size=256, lr=0.1, seed=0, eval_batch_size=8192
):
    """Per-epoch seconds of each piece: a list (one dict per epoch)."""
    model = softreg.SoftmaxRegression(num_inputs=X.shape[1], num_outputs=int(y.max()) + 1)
    optimizer = softreg.SGD(lr)
    params = model.init(np.random.default_rng(seed))
    opt_state = optimizer.init(params)
    clock = time.perf_counter
    n = X.shape[0]
    out = []
    for epoch in range(epochs):
        acc = dict.fromkeys(PIECES + EVAL_PIECES + ("loop/other", "evaluation", "epoch"), 0.0)
        t_epoch = clock()
        t0 = clock()
        order = epoch_permutation(n, seed=seed, epoch=epoch)
        acc["permutation"] += clock() - t0
        loss_sum = correct = 0
        for begin in range(0, n, batch_size):
            t0 = clock()
            idx = order[begin : begin + batch_size]
            X_batch, y_batch = np.take(X, idx, axis=0), np.take(y, idx, axis=0)
            t1 = clock()
            logits = model.forward(params, X_batch)
            t2 = clock()
            losses, dlogits = ops.cross_entropy_with_grad(logits, y_batch)
            t3 = clock()
            grads = model.backward(params, X_batch, dlogits)
            t4 = clock()
            params, opt_state = optimizer.update(params, grads, opt_state)
            t5 = clock()
            loss_sum = loss_sum + np.sum(losses)
            correct = correct + ops.count_correct(logits, y_batch)
            t6 = clock()
            acc["gather"] += t1 - t0
            acc["forward"] += t2 - t1
            acc["softmax/loss"] += t3 - t2
            acc["backward"] += t4 - t3
            acc["update"] += t5 - t4
            acc["metrics"] += t6 - t5
        t_train = clock()
        acc["loop/other"] = (t_train - t_epoch) - sum(acc[p] for p in PIECES)
        # softreg.evaluate's body, piece by piece.
        for begin in range(0, X_test.shape[0], eval_batch_size):
            t0 = clock()
            X_chunk = X_test[begin : begin + eval_batch_size]
            y_chunk = y_test[begin : begin + eval_batch_size]
            logits = model.forward(params, X_chunk)
            t1 = clock()
            ops.cross_entropy(logits, y_chunk, reduction="sum")
            t2 = clock()
            ops.count_correct(logits, y_chunk)
            t3 = clock()
            acc["eval forward"] += t1 - t0
            acc["eval loss"] += t2 - t1
            acc["eval count_correct"] += t3 - t2
        # ... and the real call, timed whole (what fit spends; the pieces above are a copy).
        t0 = clock()
        softreg.evaluate(model, params, X_test, y_test, batch_size=eval_batch_size)
        acc["evaluation"] = clock() - t0
        acc["epoch"] = (t_train - t_epoch) + acc["evaluation"]
        out.append(acc)
    return out


def fit_epoch_seconds(X, y, X_test, y_test, *, epochs, seed=0):
    """Per-epoch seconds of an un-instrumented softreg.fit (from its history)."""
    model = softreg.SoftmaxRegression(num_inputs=X.shape[1], num_outputs=int(y.max()) + 1)
    result = softreg.fit(
        model, (X, y), (X_test, y_test), softreg.TrainConfig(epochs=epochs, seed=seed)
    )
    marks = [0.0, *result.history.column("seconds")]
    return [b - a for a, b in zip(marks, marks[1:], strict=False)]


def has_kernel_field() -> bool:
    """Whether this softreg's TrainConfig has a ``kernel`` field."""
    return any(f.name == "kernel" for f in dataclasses.fields(softreg.TrainConfig))


def recipe_fit(train, test, *, epochs, backend, device="cpu", kernel=None):
    """``softreg.fit`` of the book's recipe: its FitResult and the config it ran."""
    extra = {} if kernel is None else {"kernel": kernel}
    config = softreg.TrainConfig(
        epochs=epochs, backend=backend, device=device, sigma=RECIPE["sigma"], **extra
    )
    model = softreg.SoftmaxRegression(
        num_inputs=int(np.prod(train[0].shape[1:])), num_outputs=10, sigma=RECIPE["sigma"]
    )
    return softreg.fit(model, train, test, config), config


def epoch_times(result) -> list[float]:
    """Seconds of each epoch of a fit, from its history's cumulative times."""
    marks = [0.0, *result.history.column("seconds")]
    return [b - a for a, b in zip(marks, marks[1:], strict=False)]


def profile_fit(train, test, args) -> dict:
    """Warm-up fit, reference fit, profiled fit (see the module's docstring)."""
    options = {"backend": args.backend, "device": args.device, "kernel": args.kernel}
    recipe_fit(train, test, epochs=1, **options)
    reference, config = recipe_fit(train, test, epochs=args.epochs, **options)
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiled, _ = profiler.runcall(recipe_fit, train, test, epochs=args.epochs, **options)
    wall = time.perf_counter() - start
    return {
        "config": config,
        "reference": reference,
        "profiled": profiled,
        "profiled_wall": wall,
        "stats": pstats.Stats(profiler),
    }


def top_functions(
    stats: pstats.Stats, top: int, epochs: int, key: str = "cumtime_ms_per_epoch"
) -> list[dict]:
    """The ``top`` functions by ``key`` (cumulative or own time), with their calls and times
    per epoch."""
    rows = []
    for (file, line, name), (_, ncalls, tottime, cumtime, _) in stats.stats.items():
        where = name if file == "~" else f"{short_path(file)}:{line}({name})"
        rows.append(
            {
                "function": where,
                "ncalls": ncalls,
                "tottime_ms_per_epoch": tottime * 1e3 / epochs,
                "cumtime_ms_per_epoch": cumtime * 1e3 / epochs,
            }
        )
    rows.sort(key=lambda r: r[key], reverse=True)
    return rows[:top]


def short_path(file: str) -> str:
    """``file`` from its package down (``softreg/train.py``, ``jax/_src/api.py``)."""
    parts = Path(file).parts
    for anchor in ("site-packages", "src", "lib"):
        if anchor in parts:
            rest = parts[len(parts) - parts[::-1].index(anchor) :]
            if rest:
                return "/".join(rest)
    return Path(file).name


def fit_report(n, n_test, args, run: dict) -> list[str]:
    """The text of the profile report (see the module's docstring)."""
    ref, prof, config = run["reference"], run["profiled"], run["config"]
    kernel = getattr(config, "kernel", None)
    per_epoch = epoch_times(ref)
    lines = [
        f"softreg.fit profile: backend {config.backend}, device {config.device}, "
        f"kernel {kernel if kernel is not None else '(no kernel field)'}",
        f"the book's recipe: {n} training examples, batch {config.batch_size}, "
        f"{-(-n // config.batch_size)} steps an epoch, test accuracy on {n_test} after every "
        f"epoch; {args.epochs} epochs after a one-epoch warm-up fit",
        f"softreg {softreg.__version__}, {softreg.backend.versions(config.backend)}, "
        f"os.cpu_count() = {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}",
        "",
        "un-profiled fit:",
        f"  seconds_train    {ref.seconds_train:8.3f} s  "
        f"({ref.seconds_train / args.epochs * 1e3:.1f} ms an epoch)",
        f"  seconds_compile  {ref.seconds_compile:8.3f} s",
        f"  epochs (ms)      {' '.join(f'{t * 1e3:.0f}' for t in per_epoch)}",
        f"  test acc         {ref.history.final.test_acc:.4f}",
    ]
    if config.backend in COMPILED:
        total = ref.seconds_train + ref.seconds_compile
        lines.append(
            f"  compile vs run   compile {ref.seconds_compile:.3f} s "
            f"({ref.seconds_compile / total:.0%}), run {ref.seconds_train:.3f} s "
            f"({ref.seconds_train / total:.0%})"
        )
    lines += [
        "",
        f"profiled fit: seconds_train {prof.seconds_train:.3f} s, seconds_compile "
        f"{prof.seconds_compile:.3f} s, call {run['profiled_wall']:.3f} s (cProfile overhead "
        "included)",
    ]
    for key, what in (
        ("cumtime_ms_per_epoch", "cumulative time (callees included; compiling too)"),
        ("tottime_ms_per_epoch", "own time (callees excluded)"),
    ):
        lines += [
            "",
            f"top {args.top} by {what}, ms per epoch:",
            f"{'ncalls':>9}{'own ms/ep':>11}{'cum ms/ep':>11}  function",
        ]
        lines += [
            f"{row['ncalls']:>9}{row['tottime_ms_per_epoch']:>11.2f}"
            f"{row['cumtime_ms_per_epoch']:>11.2f}  {row['function']}"
            for row in top_functions(run["stats"], args.top, args.epochs, key)
        ]
    return lines


def pieces_report(X, y, X_test, y_test, epochs: int) -> tuple[list[str], dict]:
    """The NumPy pieces table (``--pieces``) and its JSON."""
    n, batches = X.shape[0], -(-X.shape[0] // 256)
    per_epoch = profile_epochs(X, y, X_test, y_test, epochs=epochs)[1:]
    fit_epochs = fit_epoch_seconds(X, y, X_test, y_test, epochs=epochs)[1:]
    median = {k: statistics.median(e[k] for e in per_epoch) for k in per_epoch[0]}
    total = median["epoch"]
    lines = [
        f"one softreg epoch: {n} training examples, {batches} batches of 256, "
        f"{X_test.shape[0]} test examples; median of {len(per_epoch)} epochs after a warm-up",
        f"numpy {np.__version__}, os.cpu_count() = {os.cpu_count()}",
        f"{'piece':<22}{'ms/epoch':>10}{'% epoch':>9}{'us/batch':>10}",
    ]
    for key in (*PIECES, "loop/other", "evaluation"):
        lines.append(
            f"{key:<22}{median[key] * 1e3:>10.2f}{median[key] / total * 100:>8.1f}%"
            f"{median[key] / batches * 1e6:>10.1f}"
        )
    for key in EVAL_PIECES:
        lines.append(f"  {key:<20}{median[key] * 1e3:>10.2f}{median[key] / total * 100:>8.1f}%")
    lines.append(f"{'epoch (instrumented)':<22}{total * 1e3:>10.2f}{100.0:>8.1f}%")
    fit_median = statistics.median(fit_epochs)
    lines.append(f"{'epoch (softreg.fit)':<22}{fit_median * 1e3:>10.2f}")
    report = {
        "n_train": n,
        "n_test": int(X_test.shape[0]),
        "batches": batches,
        "epochs_counted": len(per_epoch),
        "median_seconds": median,
        "fit_epoch_seconds_median": fit_median,
        "numpy": np.__version__,
        "cpu_count": os.cpu_count(),
    }
    return lines, report


def fit_json(n, n_test, args, run: dict) -> dict:
    """The profile report's numbers as JSON."""
    ref, prof = run["reference"], run["profiled"]
    return {
        "backend": args.backend,
        "device": args.device,
        "kernel": getattr(run["config"], "kernel", None),
        "n_train": n,
        "n_test": n_test,
        "epochs": args.epochs,
        "seconds_train": ref.seconds_train,
        "seconds_compile": ref.seconds_compile,
        "epoch_seconds": epoch_times(ref),
        "test_acc": ref.history.final.test_acc,
        "profiled_seconds_train": prof.seconds_train,
        "top_cumulative": top_functions(run["stats"], args.top, args.epochs),
        "top_own": top_functions(run["stats"], args.top, args.epochs, "tottime_ms_per_epoch"),
        "cpu_count": os.cpu_count(),
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=BACKENDS, default="numpy")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or gpu (default: cpu)")
    parser.add_argument(
        "--kernel",
        default=None,
        help="TrainConfig(kernel=...), e.g. auto, fused, array (only where TrainConfig has it)",
    )
    parser.add_argument(
        "--epochs", type=positive_int, default=5, help="epochs profiled (default: %(default)s)"
    )
    parser.add_argument(
        "--top",
        type=positive_int,
        default=20,
        help="functions listed per table (default: %(default)s)",
    )
    parser.add_argument(
        "--pieces",
        action="store_true",
        help="NumPy only: the table of the step's pieces instead (the first epoch is warm-up)",
    )
    parser.add_argument(
        "--limit",
        type=positive_int,
        default=None,
        metavar="N",
        help="use only the first N training and test examples",
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        help="dataset directory (default: $SOFTREG_DATA, then softreg's search)",
    )
    parser.add_argument("--out", type=Path, default=None, help="also write the text here")
    parser.add_argument("--json", default=None, metavar="PATH", help="also write JSON here")
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.pieces and (args.backend != "numpy" or args.epochs < 2):
        parser.error("--pieces profiles NumPy, over --epochs >= 2 (the first is warm-up)")
    if args.kernel is not None and not has_kernel_field():
        parser.error("--kernel: this softreg's TrainConfig has no kernel field")

    data = softreg.load_dataset("fashion-mnist", data_dir=data_dir(args.data_dir), download=False)
    X, y = data.X_train[: args.limit], data.y_train[: args.limit]
    X_test, y_test = data.X_test[: args.limit], data.y_test[: args.limit]
    if not args.pieces and hasattr(data, "train_inputs"):  # as softreg train: uint8 images
        X, X_test = data.train_inputs[: args.limit], data.test_inputs[: args.limit]
    if args.pieces:
        lines, report = pieces_report(X, y, X_test, y_test, args.epochs)
    else:
        run = profile_fit((X, y), (X_test, y_test), args)
        lines = fit_report(X.shape[0], X_test.shape[0], args, run)
        report = fit_json(X.shape[0], X_test.shape[0], args, run)
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    if args.json:
        write_report(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
