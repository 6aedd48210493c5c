#!/usr/bin/env python
"""Benchmark data-parallel training (softreg.distributed): steps per second for 1 and 2
processes, on Fashion-MNIST with the PyTorch backend.

Rows, for each recipe, each run in fresh processes of its own:

    1 process            softreg.fit(..., backend="torch"), no torch.distributed, with
                         torch's default number of threads (one per core)
    1 process 1 thread   the same with OMP_NUM_THREADS=1
    torchrun 1           through torchrun with one rank (one thread): what the collectives
                         and the sharding cost
    torchrun 2           two ranks, each computing half of every global batch; torchrun gives
                         each process one thread (OMP_NUM_THREADS=1), so two cores in all

Recipes: ``book`` (softmax regression, batch 256, lr 0.1) and ``lecture-mlp`` (784-512-256-128-
64-10, batch 64, lr 0.01, momentum 0.5, standardised inputs). The timed loop is training only:
no test evaluation, which every rank would repeat. ``steps/s`` is global optimiser steps over
``FitResult.seconds_train``; each step is one global batch, whatever the number of ranks.

    SOFTREG_DATA=../shared/data .venv/bin/python bench/bench_distributed.py
    ... bench_distributed.py --device cuda      # the NCCL path, on a machine with GPUs
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
from pathlib import Path

from _harness import (
    add_data_dir_option,
    add_json_option,
    data_dir,
    machine_info,
    report_header,
    run_rounds,
    run_worker,
    write_report,
)

RECIPES = {
    "book": {"model": "softmax-regression", "batch_size": 256, "lr": 0.1},
    "lecture-mlp": {"model": "mlp", "batch_size": 64, "lr": 0.01, "momentum": 0.5},
}
EPOCHS = {"book": 5, "lecture-mlp": 1}  # a few seconds of training each
# row -> (ranks under torchrun, 0: none; OMP_NUM_THREADS, None: torch's default)
MODES = {
    "1 process": (0, None),
    "1 process 1 thread": (0, 1),
    "torchrun 1": (1, 1),
    "torchrun 2": (2, 1),
}
DATASET = "fashion-mnist"
DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "distributed.json"


def worker(args: argparse.Namespace) -> dict | None:
    """Train one recipe in this process (one rank of it under torchrun); rank 0 reports."""
    import torch

    from softreg import distributed, load_dataset
    from softreg.build import make_model
    from softreg.config import TrainConfig
    from softreg.train import fit

    config = TrainConfig(
        dataset=DATASET,
        epochs=args.epochs,
        backend="torch",
        device=args.device,
        log_every=0,
        **RECIPES[args.worker],
    )
    communicator = distributed.init(args.device) if args.ranks else None
    data = load_dataset(DATASET, data_dir=args.data_dir, download=False, progress=False)
    X, y = data.X_train[: args.limit], data.y_train[: args.limit]
    model = make_model(config, X, data.num_classes)
    result = fit(model, (X, y), None, config, communicator=communicator)
    if communicator is not None:
        communicator.close()
        if communicator.rank != 0:
            return None
    steps = result.state.step
    return {
        "steps": steps,
        "seconds_train": result.seconds_train,
        "steps_per_second": steps / result.seconds_train,
        "epoch_seconds": result.seconds_train / args.epochs,
        "train_loss": result.history.final.train_loss,
        "torch_threads": torch.get_num_threads(),
        "n_train": int(X.shape[0]),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_row(recipe: str, ranks: int, threads: int | None, args: argparse.Namespace) -> dict:
    """One run of ``recipe`` with ``ranks`` processes under torchrun (0: plainly, no torchrun)
    of ``threads`` threads each (None: torch's default)."""
    launch = [sys.executable]
    if ranks:
        launch += [
            "-m",
            "torch.distributed.run",
            "--nproc-per-node",
            str(ranks),
            "--master-addr",
            "127.0.0.1",
            "--master-port",
            str(free_port()),
        ]
    options = {
        "--ranks": ranks,
        "--epochs": args.epochs or EPOCHS[recipe],
        "--device": args.device,
        "--limit": args.limit,
        "--data-dir": args.data_dir,
    }
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    load_before = os.getloadavg()[0]
    result = run_worker(
        __file__, recipe, options, launch=launch, env=env, measures=("wall_seconds",)
    )
    if result["ok"]:
        result.update(loadavg_1min_before=load_before, loadavg_1min_after=os.getloadavg()[0])
    return result


def summarize(runs: list[dict]) -> dict:
    return {
        "status": "ok",
        "steps_per_second_median": statistics.median(r["steps_per_second"] for r in runs),
        "epoch_seconds_median": statistics.median(r["epoch_seconds"] for r in runs),
        "wall_seconds_median": statistics.median(r["wall_seconds"] for r in runs),
        "torch_threads": runs[-1]["torch_threads"],
        "steps": runs[-1]["steps"],
        "train_loss": runs[-1]["train_loss"],
        "runs": runs,
    }


def format_table(rows: dict) -> str:
    head = (
        f"{'recipe':<13}{'row':<21}{'threads':>8}{'steps/s':>10}{'epoch s':>9}"
        f"{'vs 1 process':>14}{'wall s':>8}{'train loss':>12}"
    )
    lines = [head, "-" * len(head)]
    for recipe, modes in rows.items():
        base = modes.get("1 process", {}).get("steps_per_second_median")
        for mode, row in modes.items():
            if row["status"] != "ok":
                lines.append(f"{recipe:<13}{mode:<21}{row['status']} ({row['reason']})")
                continue
            speed = row["steps_per_second_median"]
            ratio = f"{speed / base:.2f}x" if base else "-"
            lines.append(
                f"{recipe:<13}{mode:<21}{row['torch_threads']:>8}{speed:>10.1f}"
                f"{row['epoch_seconds_median']:>9.2f}{ratio:>14}"
                f"{row['wall_seconds_median']:>8.1f}{row['train_loss']:>12.5f}"
            )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Steps/second of data-parallel training (torchrun, 1 and 2 processes)."
    )
    parser.add_argument(
        "--recipes",
        default=",".join(RECIPES),
        help=f"comma-separated subset of {','.join(RECIPES)} (default: all)",
    )
    parser.add_argument(
        "--rows",
        default=",".join(MODES),
        help=f"comma-separated subset of: {', '.join(MODES)} (default: all)",
    )
    parser.add_argument(
        "--epochs", type=int, default=None, help="epochs per run (default: book 5, lecture-mlp 1)"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=2,
        help="runs per row; the table shows medians (default: %(default)s)",
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        metavar="N",
        help="train on the first N examples only (smoke tests)",
    )
    parser.add_argument(
        "--device",
        default="cpu",
        choices=("cpu", "cuda"),
        help="cpu (gloo) or cuda (NCCL, one GPU per rank) (default: cpu)",
    )
    add_data_dir_option(parser)
    add_json_option(parser, DEFAULT_JSON)
    parser.add_argument("--worker", choices=tuple(RECIPES), help=argparse.SUPPRESS)
    parser.add_argument("--ranks", type=int, default=0, help=argparse.SUPPRESS)
    return parser


def skipped_modes(modes: list[str], device: str, gpus: int) -> dict[str, dict]:
    """One GPU per rank: the rows that need more GPUs than there are, as skipped rows."""
    skipped = {}
    for mode in modes:
        if device == "cuda" and max(MODES[mode][0], 1) > gpus:
            skipped[mode] = {
                "status": "skipped",
                "reason": f"needs {max(MODES[mode][0], 1)} CUDA GPU(s), PyTorch sees {gpus}",
            }
    return skipped


def measure(
    args: argparse.Namespace, recipes: list[str], modes: list[str], skipped: dict[str, dict]
) -> tuple[dict[str, dict], bool]:
    """Every (recipe, mode) row, by recipe; and whether any failed."""
    keys = [(r, m) for r in recipes for m in modes]

    def progress(key: tuple[str, str], res: dict) -> str:
        return (
            f"{key[0]:<12} {key[1]:<20} "
            f"{res['steps_per_second']:8.1f} steps/s  load {res['loadavg_1min_after']:.2f}"
        )

    runs, failed = run_rounds(
        [key for key in keys if key[1] not in skipped],
        args.repeat,
        lambda key: run_row(key[0], *MODES[key[1]], args),
        progress,
    )
    rows: dict[str, dict] = {}
    for recipe, mode in keys:
        row = failed.get((recipe, mode)) or skipped.get(mode) or summarize(runs[(recipe, mode)])
        rows.setdefault(recipe, {})[mode] = row
    return rows, bool(failed)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.data_dir = data_dir(args.data_dir)
    if args.worker:
        report = worker(args)
        if report is not None:
            print(json.dumps(report))
        return 0
    recipes = [r.strip() for r in args.recipes.split(",") if r.strip()]
    modes = [m.strip() for m in args.rows.split(",") if m.strip()]
    unknown = [r for r in recipes if r not in RECIPES] + [m for m in modes if m not in MODES]
    if unknown or not recipes or not modes:
        print(
            f"bench: unknown recipes or rows {unknown}; choose from {', '.join(RECIPES)} "
            f"and {', '.join(MODES)}",
            file=sys.stderr,
        )
        return 2
    import torch

    import softreg

    skipped = skipped_modes(modes, args.device, torch.cuda.device_count())
    load_start = os.getloadavg()
    rows, failed = measure(args, recipes, modes, skipped)
    config = {
        "dataset": DATASET,
        "device": args.device,
        "epochs": args.epochs or EPOCHS,
        "limit": args.limit,
        "repeat": args.repeat,
        "recipes": {r: RECIPES[r] for r in recipes},
    }
    report = {
        **report_header("distributed", config),
        "machine": {
            **machine_info(),
            "torch": torch.__version__,
            "cuda_devices": torch.cuda.device_count(),
        },
        "loadavg_start": load_start,
        "loadavg_end": os.getloadavg(),
        "softreg": softreg.__version__,
        "rows": rows,
    }
    write_report(args.json, report)
    print(
        f"\n{DATASET}, torch {torch.__version__} on {args.device}; median of {args.repeat} "
        f"runs; {os.cpu_count()} CPUs; load average {load_start[0]:.2f} at the start, "
        f"{report['loadavg_end'][0]:.2f} at the end"
    )
    print(format_table(rows))
    print(f"results: {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
