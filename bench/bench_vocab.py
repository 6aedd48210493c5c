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
import datetime
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
from bench_recipe import machine_info, positive_int

from softreg.fileio import write_json

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
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


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
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def estimate_bytes(row: str, n: int, V: int, measured: dict[int, dict]) -> tuple[float, str]:
    """What ``row`` would need at ``V``: its measured peak at the largest smaller V, scaled
    by V (every large array has a V dimension), else the rule of thumb."""
    smaller = [v for v, r in measured.items() if v < V and r.get("status") == "ok"]
    if smaller:
        v = max(smaller)
        return measured[v]["peak_extra_mb"] * 1e6 * V / v, f"scaled from V={v}"
    return RULE_OF_THUMB[row] * n * V * 4, "rule of thumb"


def run_worker(row: str, V: int, args: argparse.Namespace) -> dict:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        row,
        "--n",
        str(args.n),
        "--d",
        str(args.d),
        "--vocab",
        str(V),
    ]
    if args.chunk_size is not None:
        cmd += ["--chunk-size", str(args.chunk_size)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return {
            "status": "failed",
            "reason": f"exit status {proc.returncode}",
            "stderr_tail": proc.stderr[-2000:],
        }
    return {"status": "ok", **json.loads(proc.stdout.strip().splitlines()[-1])}


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
        {
            "goal": f"V={GOAL_V}: chunked-numpy peak extra memory <= {GOAL_MEMORY_RATIO:g} x "
            "plain-numpy's",
            "value": mem,
            "met": None if mem is None else mem <= GOAL_MEMORY_RATIO,
        },
        {
            "goal": f"V={GOAL_V}: chunked-numpy time <= {GOAL_TIME_RATIO:g} x plain-numpy's",
            "value": tim,
            "met": None if tim is None else tim <= GOAL_TIME_RATIO,
        },
    ]


def parse_list(kind, choices=None):
    def parse(text: str):
        values = [kind(v.strip()) for v in text.split(",") if v.strip()]
        if not values or (choices and any(v not in choices for v in values)):
            raise argparse.ArgumentTypeError(
                f"expected a comma-separated subset of "
                f"{','.join(map(str, choices or ()))}, got {text!r}"
            )
        return list(dict.fromkeys(values))

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Large-vocabulary softmax cross-entropy: materialised logits vs chunks."
    )
    parser.add_argument("--n", type=positive_int, default=8192, help="rows (default: 8192)")
    parser.add_argument("--d", type=positive_int, default=256, help="features (default: 256)")
    parser.add_argument(
        "--vocab",
        type=parse_list(int),
        default=[32768, 131072, 262144],
        help="comma-separated vocabulary sizes (default: 32768,131072,262144)",
    )
    parser.add_argument(
        "--rows",
        type=parse_list(str, ROWS),
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
    parser.add_argument(
        "--json",
        type=Path,
        default=DEFAULT_JSON,
        help="where to write the results (default: bench/results/vocab.json)",
    )
    parser.add_argument("--worker", choices=ROWS, help=argparse.SUPPRESS)
    return parser


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
    load = os.getloadavg()
    if load[0] > 0.5 * (os.cpu_count() or 1):
        print(
            f"bench: warning: the machine is busy (load average {load[0]:.2f}); "
            "timings will be noisy",
            file=sys.stderr,
        )
    results: dict[int, dict] = {V: {} for V in vocab}
    measured: dict[str, dict[int, dict]] = {row: {} for row in rows}
    for V in vocab:
        active = []
        for row in rows:
            if row in NEEDS and importlib.util.find_spec(NEEDS[row]) is None:
                results[V][row] = {"status": "skipped", "reason": f"{NEEDS[row]} not installed"}
                continue
            need, basis = estimate_bytes(row, args.n, V, measured[row])
            if need > limit:
                results[V][row] = {
                    "status": "too-big",
                    "need_gb": need / 1e9,
                    "basis": basis,
                    "limit_gb": limit / 1e9,
                }
                print(
                    f"V={V:<7} {row:<14} not run: would need {need / 1e9:.1f} GB ({basis})",
                    file=sys.stderr,
                    flush=True,
                )
                continue
            active.append(row)
        runs: dict[str, list[dict]] = {row: [] for row in active}
        for rep in range(args.repeat):  # round-robin: load changes hit every row alike
            for row in active:
                if row in results[V]:  # failed earlier
                    continue
                res = run_worker(row, V, args)
                if res["status"] != "ok":
                    results[V][row] = res
                    print(f"bench: {row} at V={V} failed:\n{res['stderr_tail']}", file=sys.stderr)
                    continue
                res["loadavg_1min_after"] = os.getloadavg()[0]
                runs[row].append(res)
                print(
                    f"[{rep + 1}/{args.repeat}] V={V:<7} {row:<14} {res['seconds']:.2f} s  "
                    f"peak extra {res['peak_extra_mb']:.0f} MB  loss {res['loss']:.5f}",
                    file=sys.stderr,
                    flush=True,
                )
        for row in active:
            if row not in results[V]:
                results[V][row] = measured[row][V] = summarize(runs[row], chunk, row)

    goal_list = goals(results)
    report = {
        "benchmark": "vocab",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": [Path(sys.executable).name, *sys.argv],
        "config": {
            "n": args.n,
            "d": args.d,
            "vocab": vocab,
            "rows": rows,
            "repeat": args.repeat,
            "chunk_size": chunk,
            "limit_gb": limit / 1e9,
            "mem_available_gb": available / 1e9 if available else None,
        },
        "machine": machine_info(),
        "softreg": softreg.__version__,
        "device": "cpu",
        "results": {str(V): results[V] for V in vocab},
        "goals": goal_list,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.json, report)

    print(
        f"\nsoftmax cross-entropy + gradients of h, W, b: N={args.n}, d={args.d}, float32, "
        f"chunk {chunk} classes; median of {args.repeat}; {os.cpu_count()} CPUs, "
        f"numpy {np.__version__}"
    )
    print(format_table(results, rows, vocab, args.n))
    print()
    for g in goal_list:
        verdict = {True: "met", False: "NOT met", None: "not measured"}[g["met"]]
        value = "" if g["value"] is None else f" ({g['value']:.3f})"
        print(f"goal: {g['goal']}: {verdict}{value}")
    print(f"results: {args.json}")
    failed = any(r["status"] == "failed" for per_v in results.values() for r in per_v.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
