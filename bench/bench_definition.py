#!/usr/bin/env python
"""Benchmark exercise 2: cross-entropy straight from its definition against index picking.

Per backend (NumPy; PyTorch on the CPU when installed) and size (n examples, k classes), the
median seconds per call, over --repeat samples timed with time.perf_counter, of

    index         ops.cross_entropy(logits, y): log-softmax, then one entry per row picked
                  (with the label range check), mean over the batch
    unchecked     mean of ops.cross_entropy_unchecked(logits, y): the same without the check
    definition    ops.cross_entropy_soft(logits, ops.one_hot(y, k)): the (n, k) one-hot
                  target built, checked as a probability matrix, multiplied and summed over k
    definition-prebuilt
                  ops.cross_entropy_soft(logits, targets) with the targets built beforehand
                  (what soft labels cost when they come with the data)

and the ratios definition / index and definition / unchecked. Each sample runs the call
enough times to last about --min-sample seconds, so small sizes are not lost in timer noise,
and the samples go round-robin over the methods, so drift in the machine's load hits them all
alike. PyTorch keeps its default thread count unless --torch-threads says otherwise.

    .venv/bin/python bench/bench_definition.py          # n in {256, 8192, 60000}, k in {10, 1000}
    .venv/bin/python bench/bench_definition.py --quick  # a tiny size set (smoke test)
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from _harness import add_json_option, utc_timestamp, write_report

from softreg import backend, ops

SIZES_N = (256, 8192, 60000)
SIZES_K = (10, 1000)
QUICK_N = (64, 256)
QUICK_K = (10, 100)
METHODS = ("index", "unchecked", "definition", "definition-prebuilt")
DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "definition.json"

WHY = """\
Why: both need the full (n, k) log-softmax (a max, an exp, a sum and a log over every entry),
so that part costs the same. Index picking then takes one entry per row (softreg does that
portably with an (n, k) label mask and a where, one cheap pass, but no float target). The
definition also needs the (n, k) one-hot target (a comparison and a cast: n*k*4 more bytes of
float32 written and read), checks that it is a probability matrix (finite, >= 0, rows summing
to 1: three more passes over n*k entries), and multiplies and sums all n*k entries, of which
n*(k-1) are zeros. Those extra passes over memory are the gap; "prebuilt" shows the part that
remains when soft targets come with the data. The definition is worth it only when the targets
really are soft (label smoothing, distillation, mixed examples); for hard labels, pick."""


def calls_per_sample(fn: Callable[[], Any], min_sample: float) -> int:
    """How many calls of ``fn`` last about ``min_sample`` seconds (after a warm-up call)."""
    fn()  # warm-up: allocations, lazy imports
    start = time.perf_counter()
    fn()
    return max(1, math.ceil(min_sample / max(time.perf_counter() - start, 1e-9)))


def timed(fns: dict[str, Callable[[], Any]], repeat: int, min_sample: float) -> dict[str, float]:
    """Median seconds per call of each function over ``repeat`` samples, taken round-robin."""
    numbers = {m: calls_per_sample(fn, min_sample) for m, fn in fns.items()}
    samples: dict[str, list[float]] = {m: [] for m in fns}
    for _ in range(repeat):
        for m, fn in fns.items():
            start = time.perf_counter()
            for _ in range(numbers[m]):
                fn()
            samples[m].append((time.perf_counter() - start) / numbers[m])
    return {m: statistics.median(s) for m, s in samples.items()}


def calls(xp: Any, logits: Any, y: Any, targets: Any) -> dict[str, Callable[[], Any]]:
    k = logits.shape[1]
    return {
        "index": lambda: ops.cross_entropy(logits, y, xp=xp),
        "unchecked": lambda: xp.mean(ops.cross_entropy_unchecked(logits, y, xp=xp)),
        "definition": lambda: ops.cross_entropy_soft(
            logits, ops.one_hot(y, k, dtype=logits.dtype, xp=xp), xp=xp
        ),
        "definition-prebuilt": lambda: ops.cross_entropy_soft(logits, targets, xp=xp),
    }


def bench_one(name: str, n: int, k: int, repeat: int, min_sample: float) -> dict:
    rng = np.random.default_rng(n * 7919 + k)
    be = backend.resolve(name)
    logits = be.asarray(rng.normal(size=(n, k)).astype(np.float32))
    y = be.asarray(rng.integers(0, k, size=n))
    targets = ops.one_hot(y, k, dtype=logits.dtype, xp=be.xp)
    fns = calls(be.xp, logits, y, targets)
    # Same value from every method: the benchmark compares equal work.
    values = [float(fn()) for fn in fns.values()]
    if not np.allclose(values, values[0], rtol=1e-4):
        raise AssertionError(f"methods disagree at {name} n={n} k={k}: {values}")
    seconds = timed(fns, repeat, min_sample)
    return {
        "backend": name,
        "n": n,
        "k": k,
        "seconds": seconds,
        "ratio_definition_over_index": seconds["definition"] / seconds["index"],
        "ratio_definition_over_unchecked": seconds["definition"] / seconds["unchecked"],
        "ratio_prebuilt_over_index": seconds["definition-prebuilt"] / seconds["index"],
    }


def backends_available() -> list[str]:
    names = ["numpy"]
    if importlib.util.find_spec("torch") and importlib.util.find_spec("array_api_compat"):
        names.append("torch")
    return names


def format_table(results: list[dict]) -> str:
    header = ["backend", "n", "k", *(f"{m} ms" for m in METHODS), "def/index", "def/unchecked"]
    lines = [header]
    for r in results:
        lines.append(
            [
                r["backend"],
                str(r["n"]),
                str(r["k"]),
                *(f"{r['seconds'][m] * 1e3:.3f}" for m in METHODS),
                f"{r['ratio_definition_over_index']:.2f}x",
                f"{r['ratio_definition_over_unchecked']:.2f}x",
            ]
        )
    widths = [max(len(line[c]) for line in lines) for c in range(len(header))]
    return "\n".join(
        "  ".join(
            cell.rjust(w) if c else cell.ljust(w)
            for c, (cell, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in lines
    )


def machine() -> dict:
    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
    }
    if hasattr(os, "getloadavg"):
        info["loadavg_1min"] = os.getloadavg()[0]
    if "torch" in backends_available():
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    return info


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tiny size set (smoke test)")
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="timed samples per method (median reported; default 7, quick 3)",
    )
    parser.add_argument(
        "--min-sample",
        type=float,
        default=None,
        metavar="S",
        help="seconds each sample lasts at least (default 0.05, quick 0.002)",
    )
    parser.add_argument(
        "--backends",
        default=None,
        help="comma-separated, from numpy,torch (default: those installed)",
    )
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=None,
        metavar="N",
        help="torch.set_num_threads(N) (default: PyTorch's own choice)",
    )
    add_json_option(parser, DEFAULT_JSON)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    repeat = args.repeat or (3 if args.quick else 7)
    min_sample = args.min_sample if args.min_sample is not None else (0.002 if args.quick else 0.05)
    names = args.backends.split(",") if args.backends else backends_available()
    if args.torch_threads is not None and "torch" in names:
        import torch

        torch.set_num_threads(args.torch_threads)
    sizes_n, sizes_k = (QUICK_N, QUICK_K) if args.quick else (SIZES_N, SIZES_K)
    results = []
    for name in names:
        for k in sizes_k:
            for n in sizes_n:
                results.append(bench_one(name, n, k, repeat, min_sample))
                print(f"  {name} n={n} k={k} done", file=sys.stderr, flush=True)
    print(format_table(results))
    report = {
        "benchmark": "cross-entropy from its definition vs index picking",
        "created": utc_timestamp(),
        "repeat": repeat,
        "min_sample_seconds": min_sample,
        "quick": args.quick,
        "machine": machine(),
        "results": results,
    }
    write_report(args.json, report)
    print(f"\nwrote {args.json}\n\n{WHY}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
