#!/usr/bin/env python
"""Benchmark the large-vocabulary loss: softmax cross-entropy of ``h @ W + b`` and its gradients
for ``h`` (N x d), ``W`` (d x V) and ``b`` (V), with and without the N x V logits.

Rows, each (row, V) pair measured in a fresh process of its own (this script with ``--worker``;
it prints one JSON line), so that one row's memory never counts against another's:

    plain-numpy    the logits materialised, done as lean as NumPy allows: one N x V buffer,
                   updated in place (+b, -max, exp, /sum, -one_hot), then dW = h.T @ G,
                   dh = G @ W.T, db = G.sum(0)
    chunked-numpy  softreg.vocab.linear_cross_entropy_with_grad: an online log-sum-exp over
                   chunks of classes, then the chunks recomputed for the gradients
    chunked-torch  the same function on PyTorch tensors (CPU)
    torch-ce       torch.nn.functional.cross_entropy on materialised logits, autograd backward

Each process times one computation of the loss and all three gradients and measures its peak
extra resident memory (VmHWM after resetting it through /proc/self/clear_refs, minus VmRSS once
the inputs exist: outputs such as dW count, inputs do not) and, for the NumPy rows, the peak of
tracemalloc (NumPy reports its buffers to it). There are --repeat such processes per row and V,
run round-robin over the rows so that a change in the machine's load hits every row alike; the
table gives the median and the minimum time and the largest peak. Before a row runs, the memory
it would need is estimated (from its measured peak at the largest smaller V, scaled by V; else
from a rule of thumb); when that is over --max-gb (default: half of MemAvailable), the row is
not run and the table says what it would need.

    .venv/bin/python bench/bench_vocab.py            # N=8192, d=256, V=32768,131072,262144
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
from _harness import (
    add_json_option,
    comma_separated,
    goal,
    machine_info,
    missing_libraries,
    positive_int,
    print_goals,
    proc_value,
    report_header,
    run_rounds,
    run_worker,
    warn_if_busy,
    write_report,
)

ROWS = ("plain-numpy", "chunked-numpy", "chunked-torch", "torch-ce")
NEEDS = {"chunked-torch": "torch", "torch-ce": "torch"}
# Peak extra memory in units of one N x V float32 array, used before a row has been measured:
# plain-numpy keeps one such array; torch-ce the logits, their log-softmax and two gradients.
RULE_OF_THUMB = {"plain-numpy": 1.1, "chunked-numpy": 0.2, "chunked-torch": 0.2, "torch-ce": 4.0}
GOAL_V = 131072
GOAL_MEMORY_RATIO = 0.1  # chunked peak extra memory at most 1/10 of plain's
GOAL_TIME_RATIO = 1.5  # chunked time at most 1.5x plain's
DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "vocab.json"


# --------------------------------------------------------------------------------------------
# Workers: one (row, V) per process.


def make_inputs(n: int, d: int, V: int, seed: int = 0):
    """float32 ``h (n, d)``, ``W (d, V)``, ``b (V,)`` and int64 labels ``y (n,)``; the logits
    spread over a few units, as a trained model's do."""
    rng = np.random.default_rng(seed)
    h = rng.standard_normal((n, d), dtype=np.float32)
    W = rng.standard_normal((d, V), dtype=np.float32)
    W *= np.float32(1.0 / np.sqrt(d))
    b = rng.standard_normal(V, dtype=np.float32)
    y = rng.integers(0, V, size=n)
    return h, W, b, y


def plain_numpy(h, W, b, y):
    """Loss and gradients with the N x V logits materialised once and reused in place."""
    n = h.shape[0]
    G = h @ W  # (n, V): the one big array
    G += b
    rows = np.arange(n)
    target = G[rows, y]
    top = G.max(axis=1, keepdims=True)
    G -= top
    np.exp(G, out=G)
    sum_exp = G.sum(axis=1, keepdims=True)
    loss = float(np.mean(np.log(sum_exp[:, 0]) + top[:, 0] - target))
    G *= 1.0 / (n * sum_exp)  # softmax / n
    G[rows, y] -= 1.0 / n
    return loss, G @ W.T, h.T @ G, G.sum(axis=0)


def chunked(h, W, b, y, chunk_size):
    from softreg import vocab

    losses, dh, dW, db = vocab.linear_cross_entropy_with_grad(h, W, b, y, chunk_size=chunk_size)
    return float(losses.mean()), dh, dW, db


def torch_ce(h, W, b, y):
    import torch

    h, W, b = (t.detach().requires_grad_() for t in (h, W, b))
    loss = torch.nn.functional.cross_entropy(h @ W + b, y)
    loss.backward()
    return float(loss), h.grad, W.grad, b.grad


def status_kb(key: str) -> int:
    value = proc_value("/proc/self/status", key + ":")
    if value is None:
        raise KeyError(key)
    return int(value.split()[0])


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where that is not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def worker(row: str, n: int, d: int, V: int, chunk_size: int | None) -> dict:
    """One timed run of ``row``, with its peak memory."""
    h, W, b, y = make_inputs(n, d, V)
    if row in ("chunked-torch", "torch-ce"):
        import torch

        h, W, b, y = (torch.from_numpy(a) for a in (h, W, b, y))
        threads = {"torch_threads": torch.get_num_threads(), "torch": torch.__version__}
    else:
        threads = {}
    run = {
        "plain-numpy": plain_numpy,
        "torch-ce": torch_ce,
        "chunked-numpy": lambda *a: chunked(*a, chunk_size),
        "chunked-torch": lambda *a: chunked(*a, chunk_size),
    }[row]
    traced = row.endswith("numpy")
    hwm_reset = reset_peak_rss()
    base_kb = status_kb("VmRSS")
    if traced:  # its overhead is per allocation, and these are few and large
        tracemalloc.start()
    start = time.perf_counter()
    loss = run(h, W, b, y)[0]
    seconds = time.perf_counter() - start
    result = {
        "seconds": seconds,
        "loss": loss,
        "hwm_reset": hwm_reset,
        "peak_extra_mb": (status_kb("VmHWM") - base_kb) * 1024 / 1e6,
        **threads,
    }
    if traced:
        result["tracemalloc_peak_mb"] = tracemalloc.get_traced_memory()[1] / 1e6
    return result


# --------------------------------------------------------------------------------------------
# Driver.


def mem_available_bytes() -> int | None:
    value = proc_value("/proc/meminfo", "MemAvailable:")
    return None if value is None else int(value.split()[0]) * 1024


def estimate_bytes(row: str, n: int, V: int, measured: dict[int, dict]) -> tuple[float, str]:
    """What ``row`` would need at ``V``: its measured peak at the largest smaller V, scaled
    by V (every large array has a V dimension), else the rule of thumb."""
    smaller = [v for v, r in measured.items() if v < V and r.get("status") == "ok"]
    if smaller:
        v = max(smaller)
        return measured[v]["peak_extra_mb"] * 1e6 * V / v, f"scaled from V={v}"
    return RULE_OF_THUMB[row] * n * V * 4, "rule of thumb"


def summarize(runs: list[dict], chunk_size: int | None, row: str) -> dict:
    times = [r["seconds"] for r in runs]
    out = {
        "status": "ok",
        "seconds_median": statistics.median(times),
        "seconds_min": min(times),
        "seconds_all": times,
        "loss": runs[0]["loss"],
        "peak_extra_mb": max(r["peak_extra_mb"] for r in runs),
        "hwm_reset": all(r["hwm_reset"] for r in runs),
        "chunk_size": chunk_size if row.startswith("chunked") else None,
        "runs": runs,
    }
    if "tracemalloc_peak_mb" in runs[0]:
        out["tracemalloc_peak_mb"] = max(r["tracemalloc_peak_mb"] for r in runs)
    return out


def format_table(results: dict, rows: list[str], vocab: list[int], n: int) -> str:
    head = (
        f"{'V':>7}  {'row':<14}{'time s':>9}{'min s':>8}{'x plain':>9}{'peak extra MB':>15}"
        f"{'x plain':>9}{'tracemalloc MB':>16}{'loss':>10}"
    )
    lines = [head, "-" * len(head)]
    for V in vocab:
        plain = results[V].get("plain-numpy", {})
        for row in rows:
            r = results[V][row]
            if r["status"] == "too-big":
                lines.append(
                    f"{V:>7}  {row:<14}not run: would need {r['need_gb']:.1f} GB "
                    f"({r['basis']}; limit {r['limit_gb']:.1f} GB)"
                )
                continue
            if r["status"] != "ok":
                lines.append(f"{V:>7}  {row:<14}{r['status']} ({r['reason']})")
                continue
            t_ratio = m_ratio = "-"
            if plain.get("status") == "ok":
                t_ratio = f"{r['seconds_median'] / plain['seconds_median']:.2f}"
                m_ratio = f"{r['peak_extra_mb'] / plain['peak_extra_mb']:.3f}"
            elif plain.get("status") == "too-big":  # against what plain would need
                m_ratio = f"~{r['peak_extra_mb'] / (plain['need_gb'] * 1e3):.3f}"
            traced = r.get("tracemalloc_peak_mb")
            lines.append(
                f"{V:>7}  {row:<14}{r['seconds_median']:>9.2f}"
                f"{r['seconds_min']:>8.2f}{t_ratio:>9}"
                f"{r['peak_extra_mb']:>15.0f}{m_ratio:>9}"
                f"{'-' if traced is None else f'{traced:.0f}':>16}{r['loss']:>10.4f}"
            )
        logits_mb = n * V * 4 / 1e6
        lines.append(f"{'':>7}  (one N x V float32 array: {logits_mb:.0f} MB)")
    return "\n".join(lines)


def goals(results: dict) -> list[dict]:
    r = results.get(GOAL_V, {})
    plain, chunk = r.get("plain-numpy", {}), r.get("chunked-numpy", {})
    both = plain.get("status") == "ok" and chunk.get("status") == "ok"
    mem = chunk["peak_extra_mb"] / plain["peak_extra_mb"] if both else None
    tim = chunk["seconds_median"] / plain["seconds_median"] if both else None
    return [
        goal(
            f"V={GOAL_V}: chunked-numpy peak extra memory <= {GOAL_MEMORY_RATIO:g} x plain-numpy's",
            mem,
            lambda v: v <= GOAL_MEMORY_RATIO,
        ),
        goal(
            f"V={GOAL_V}: chunked-numpy time <= {GOAL_TIME_RATIO:g} x plain-numpy's",
            tim,
            lambda v: v <= GOAL_TIME_RATIO,
        ),
    ]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Large-vocabulary softmax cross-entropy: materialised logits vs chunks."
    )
    parser.add_argument("--n", type=positive_int, default=8192, help="rows (default: 8192)")
    parser.add_argument("--d", type=positive_int, default=256, help="features (default: 256)")
    parser.add_argument(
        "--vocab",
        type=comma_separated(int),
        default=[32768, 131072, 262144],
        help="comma-separated vocabulary sizes (default: 32768,131072,262144)",
    )
    parser.add_argument(
        "--rows",
        type=comma_separated(str, ROWS),
        default=list(ROWS),
        help=f"comma-separated subset of {','.join(ROWS)} (default: all)",
    )
    parser.add_argument(
        "--repeat",
        type=positive_int,
        default=3,
        help="runs (processes) per row and V; the time is their median (default: 3)",
    )
    parser.add_argument(
        "--chunk-size",
        type=positive_int,
        default=None,
        help="classes per chunk (default: softreg's automatic choice)",
    )
    parser.add_argument(
        "--max-gb",
        type=float,
        default=None,
        help="do not run a row that would need more (default: half of MemAvailable)",
    )
    add_json_option(parser, DEFAULT_JSON)
    parser.add_argument("--worker", choices=ROWS, help=argparse.SUPPRESS)
    return parser


def measure_vocab(V: int, args: argparse.Namespace, plan: dict) -> dict[str, dict]:
    """Every row at vocabulary size ``V``: skipped, too big for the memory limit, failed, or
    its summary. ``plan`` holds the skipped rows, the limit, the chunk size and each row's
    measured summaries by V (updated here)."""
    results: dict[str, dict] = {}
    active = []
    for row in args.rows:
        if row in plan["skipped"]:
            results[row] = plan["skipped"][row]
            continue
        need, basis = estimate_bytes(row, args.n, V, plan["measured"][row])
        if need > plan["limit"]:
            results[row] = {
                "status": "too-big",
                "need_gb": need / 1e9,
                "basis": basis,
                "limit_gb": plan["limit"] / 1e9,
            }
            print(
                f"V={V:<7} {row:<14} not run: would need {need / 1e9:.1f} GB ({basis})",
                file=sys.stderr,
                flush=True,
            )
            continue
        active.append(row)
    options = {"--n": args.n, "--d": args.d, "--vocab": V, "--chunk-size": args.chunk_size}

    def progress(row: str, res: dict) -> str:
        return (
            f"V={V:<7} {row:<14} {res['seconds']:.2f} s  "
            f"peak extra {res['peak_extra_mb']:.0f} MB  loss {res['loss']:.5f}"
        )

    runs, failed = run_rounds(
        active,
        args.repeat,
        lambda row: run_worker(__file__, row, options, measures=()),
        progress,
        label=lambda row: f"{row} at V={V}",
        record_load=True,
    )
    results.update(failed)
    for row in active:
        if row not in results:
            records = [
                {"status": "ok", **{k: v for k, v in r.items() if k != "ok"}} for r in runs[row]
            ]
            results[row] = plan["measured"][row][V] = summarize(records, plan["chunk"], row)
    return results


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.worker:
        V = args.vocab[0]
        print(json.dumps(worker(args.worker, args.n, args.d, V, args.chunk_size)))
        return 0

    import softreg
    from softreg.vocab import auto_chunk_size

    available = mem_available_bytes()
    limit = (
        args.max_gb * 1e9 if args.max_gb is not None else (0.5 * available if available else 8e9)
    )
    rows, vocab = args.rows, sorted(args.vocab)
    chunk = args.chunk_size or auto_chunk_size(args.n)
    warn_if_busy()
    plan = {
        "skipped": missing_libraries(rows, NEEDS),
        "limit": limit,
        "chunk": chunk,
        "measured": {row: {} for row in rows},
    }
    results = {V: measure_vocab(V, args, plan) for V in vocab}

    goal_list = goals(results)
    config = {
        "n": args.n,
        "d": args.d,
        "vocab": vocab,
        "rows": rows,
        "repeat": args.repeat,
        "chunk_size": chunk,
        "limit_gb": limit / 1e9,
        "mem_available_gb": available / 1e9 if available else None,
    }
    report = {
        **report_header("vocab", config),
        "machine": machine_info(),
        "softreg": softreg.__version__,
        "device": "cpu",
        "results": {str(V): results[V] for V in vocab},
        "goals": goal_list,
    }
    write_report(args.json, report)

    print(
        f"\nsoftmax cross-entropy + gradients of h, W, b: N={args.n}, d={args.d}, float32, "
        f"chunk {chunk} classes; median of {args.repeat}; {os.cpu_count()} CPUs, "
        f"numpy {np.__version__}"
    )
    print(format_table(results, rows, vocab, args.n))
    print()
    print_goals(goal_list)
    print(f"results: {args.json}")
    failed = any(r["status"] == "failed" for per_v in results.values() for r in per_v.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
