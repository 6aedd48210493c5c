#!/usr/bin/env python
"""Where the time of one softreg training epoch goes.

Re-runs the body of ``softreg.fit``'s loop (same library calls, same order, the book's recipe:
batch 256, lr 0.1) with a clock around each piece, and prints seconds per epoch for:

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

and, for reference, the per-epoch time of an un-instrumented ``softreg.fit`` on the same data.
The first epoch is a warm-up and is not counted. Run::

    SOFTREG_DATA=../shared/data .venv/bin/python bench/profile_epoch.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np
from _harness import data_dir, write_report

import softreg
from softreg import ops
from softreg.data import epoch_permutation

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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--epochs",
        type=int,
        default=6,
        help="epochs to profile; the first is warm-up (default: %(default)s)",
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        metavar="N",
        help="use only the first N training and test examples",
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        help="dataset directory (default: $SOFTREG_DATA, then softreg's search)",
    )
    parser.add_argument("--json", default=None, metavar="PATH", help="also write JSON here")
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be >= 2 (the first epoch is warm-up)")
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be >= 1")

    data = softreg.load_dataset(
        "fashion-mnist",
        data_dir=data_dir(args.data_dir),
        download=False,
    )
    X, y = data.X_train[: args.limit], data.y_train[: args.limit]
    X_test, y_test = data.X_test[: args.limit], data.y_test[: args.limit]
    n, batches = X.shape[0], -(-X.shape[0] // 256)

    epochs = profile_epochs(X, y, X_test, y_test, epochs=args.epochs)[1:]
    fit_epochs = fit_epoch_seconds(X, y, X_test, y_test, epochs=args.epochs)[1:]
    median = {k: statistics.median(e[k] for e in epochs) for k in epochs[0]}
    total = median["epoch"]

    print(
        f"one softreg epoch: {n} training examples, {batches} batches of 256, "
        f"{X_test.shape[0]} test examples; median of {len(epochs)} epochs after a warm-up"
    )
    print(f"numpy {np.__version__}, os.cpu_count() = {os.cpu_count()}")
    print(f"{'piece':<22}{'ms/epoch':>10}{'% epoch':>9}{'us/batch':>10}")
    for key in (*PIECES, "loop/other", "evaluation"):
        print(
            f"{key:<22}{median[key] * 1e3:>10.2f}{median[key] / total * 100:>8.1f}%"
            f"{median[key] / batches * 1e6:>10.1f}"
        )
    for key in EVAL_PIECES:
        print(f"  {key:<20}{median[key] * 1e3:>10.2f}{median[key] / total * 100:>8.1f}%")
    print(f"{'epoch (instrumented)':<22}{total * 1e3:>10.2f}{100.0:>8.1f}%")
    fit_median = statistics.median(fit_epochs)
    print(f"{'epoch (softreg.fit)':<22}{fit_median * 1e3:>10.2f}")

    if args.json:
        report = {
            "n_train": n,
            "n_test": int(X_test.shape[0]),
            "batches": batches,
            "epochs_counted": len(epochs),
            "median_seconds": median,
            "fit_epoch_seconds_median": fit_median,
            "numpy": np.__version__,
            "cpu_count": os.cpu_count(),
        }
        write_report(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
