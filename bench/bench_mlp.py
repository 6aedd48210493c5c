#!/usr/bin/env python
"""Benchmark the lecture's MNIST MLP: softreg against the lecture's own PyTorch program.

Rows, each run in a fresh Python process of its own (this script with ``--worker ROW``):

    lecture-pytorch  the lecture's program as it is written (seed 003): torchvision's MNIST
                     dataset class (uint8 -> PIL image -> ToTensor -> Normalize((0.1307,),
                     (0.3081,)) per example; reproduced here because torchvision's CPU wheel
                     does not exist on this machine), DataLoader(batch 64, shuffle, no
                     workers), an nn.Module 784-512-256-128-64-10 with ReLU,
                     CrossEntropyLoss, torch.optim.SGD(lr 0.01, momentum 0.5), the running
                     loss every 300 batches, test accuracy after every epoch
    softreg-numpy    softreg.fit with the same recipe (TrainConfig(model="mlp", ...)), NumPy
    softreg-torch    the same call with backend="torch"
    softreg-jax      the same call with backend="jax" (compile time reported apart)

``--device cuda`` (or ``gpu``) runs lecture-pytorch (the model and each batch moved to the GPU),
softreg-torch and softreg-jax on the first GPU, and reports softreg-numpy as skipped.

Per row: training seconds (all epochs, including the per-epoch test evaluation), whole-process
seconds, peak RSS and final test accuracy; then the speed-up of each softreg row over the
lecture's program and the accuracy difference. The goal: softreg at least 4x faster than the
lecture at equal test accuracy (within 0.3 percentage points).

    SOFTREG_DATA=../shared/data .venv/bin/python bench/bench_mlp.py
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from _harness import (
    add_data_dir_option,
    add_json_option,
    add_limit_option,
    data_dir,
    machine_info,
    missing_libraries,
    peak_rss_mb,
    positive_int,
    report_header,
    run_rounds,
    run_worker,
    write_report,
)

ROWS = ("lecture-pytorch", "softreg-numpy", "softreg-torch", "softreg-jax")
NEEDS = {"lecture-pytorch": "torch", "softreg-torch": "torch", "softreg-jax": "jax"}
FIT_BACKENDS = {"softreg-numpy": "numpy", "softreg-torch": "torch", "softreg-jax": "jax"}
DEVICE_ROWS = ("lecture-pytorch", "softreg-torch", "softreg-jax")  # the rows a GPU can run
DEVICES = ("cpu", "cuda", "gpu")
RECIPE = {"batch_size": 64, "lr": 0.01, "momentum": 0.5, "hidden": (512, 256, 128, 64)}
GOAL_SPEEDUP = 4.0
GOAL_ACC_PP = 0.3
DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "mlp.json"


def load_mnist(data_dir: str | None, limit: int | None):
    import softreg

    data = softreg.load_dataset("mnist", data_dir=data_dir, download=False)
    return data, slice(0, limit)


def train_lecture(data, rows: slice, epochs: int, device: str = "cpu") -> dict:
    """The lecture's program, line for line where it matters for time and accuracy (on a GPU:
    the model and each batch moved there, ``.to(device)``)."""
    import torch
    import torch.nn.functional as F
    from PIL import Image
    from torch.utils.data import DataLoader, Dataset

    class MNIST(Dataset):
        """torchvision.datasets.MNIST's __getitem__ with transforms.Compose([ToTensor(),
        Normalize((0.1307,), (0.3081,))])."""

        def __init__(self, images, labels):
            self.images = torch.from_numpy(np.array(images, dtype=np.uint8))
            self.labels = torch.from_numpy(np.array(labels, dtype=np.int64))

        def __len__(self):
            return len(self.labels)

        def __getitem__(self, index):
            img, target = self.images[index], int(self.labels[index])
            img = Image.fromarray(img.numpy(), mode="L")
            # ToTensor: PIL -> uint8 tensor (C, H, W) -> float / 255
            pic = torch.from_numpy(np.array(img, np.uint8, copy=True))
            pic = pic.view(img.size[1], img.size[0], 1).permute((2, 0, 1)).contiguous()
            tensor = pic.float().div(255)
            # Normalize
            return (tensor - 0.1307) / 0.3081, target

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.l1 = torch.nn.Linear(784, 512)
            self.l2 = torch.nn.Linear(512, 256)
            self.l3 = torch.nn.Linear(256, 128)
            self.l4 = torch.nn.Linear(128, 64)
            self.l5 = torch.nn.Linear(64, 10)

        def forward(self, x):
            x = x.view(-1, 784)
            x = F.relu(self.l1(x))
            x = F.relu(self.l2(x))
            x = F.relu(self.l3(x))
            x = F.relu(self.l4(x))
            return self.l5(x)

    torch.manual_seed(0)
    train_loader = DataLoader(
        MNIST(data.train_images[rows], data.train_labels[rows]),
        shuffle=True,
        batch_size=RECIPE["batch_size"],
    )
    test_loader = DataLoader(
        MNIST(data.test_images[rows], data.test_labels[rows]),
        shuffle=False,
        batch_size=RECIPE["batch_size"],
    )
    dev = torch.device("cuda" if device in ("cuda", "gpu") else "cpu")
    model = Net().to(dev)
    criterion = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=RECIPE["lr"], momentum=RECIPE["momentum"])

    start = time.perf_counter()
    accuracy = 0.0
    for epoch in range(epochs):
        running_loss = 0.0
        for batch_id, (inputs, target) in enumerate(train_loader, 0):
            inputs, target = inputs.to(dev), target.to(dev)
            optimizer.zero_grad()
            loss = criterion(model(inputs), target)
            loss.backward()
            optimizer.step()
            running_loss += loss.item()
            if batch_id % 300 == 299:
                print(
                    f"[epoch={epoch + 1}, batch={batch_id + 1}] loss: {running_loss / 300:3f}",
                    file=sys.stderr,
                )
        correct = total = 0
        with torch.no_grad():
            for images, labels in test_loader:
                images, labels = images.to(dev), labels.to(dev)
                _, predicted = torch.max(model(images).data, dim=1)
                total += labels.size(0)
                correct += (predicted == labels).sum().item()
        accuracy = correct / total
    return {
        "seconds_train": time.perf_counter() - start,
        "test_acc": accuracy,
        "seconds_compile": 0.0,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "device": str(dev),
    }


def train_softreg(data, rows: slice, epochs: int, backend: str, device: str = "cpu") -> dict:
    import softreg
    from softreg.build import make_model

    config = softreg.TrainConfig(
        dataset="mnist", model="mlp", epochs=epochs, backend=backend, device=device, **RECIPE
    )
    # as softreg train does it: the images stay uint8 (read as ToTensor reads them)
    X, y = data.train_inputs[rows], data.y_train[rows]
    model = make_model(config, X, data.num_classes)
    result = softreg.fit(model, (X, y), (data.test_inputs[rows], data.y_test[rows]), config)
    return {
        "seconds_train": result.seconds_train,
        "test_acc": result.history.final.test_acc,
        "seconds_compile": result.seconds_compile,
        "versions": softreg.backend.versions(backend),
        "device": device,
    }


def worker(row: str, epochs: int, limit: int | None, data_dir: str | None, device: str) -> dict:
    data, rows = load_mnist(data_dir, limit)
    if row == "lecture-pytorch":
        out = train_lecture(data, rows, epochs, device)
    else:
        out = train_softreg(data, rows, epochs, FIT_BACKENDS[row], device)
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def summarize(runs: list[dict]) -> dict:
    return {
        "status": "ok",
        "seconds_train_median": statistics.median(r["seconds_train"] for r in runs),
        "seconds_compile_median": statistics.median(r["seconds_compile"] for r in runs),
        "wall_seconds_median": statistics.median(r["wall_seconds"] for r in runs),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "test_acc": runs[-1]["test_acc"],
        "runs": runs,
    }


def compare(rows: dict) -> dict:
    """Speed-up over the lecture and accuracy difference (percentage points) per softreg row."""
    lecture = rows.get("lecture-pytorch", {})
    out = {}
    for name, row in rows.items():
        if name == "lecture-pytorch" or row.get("status") != "ok":
            continue
        if lecture.get("status") != "ok":
            continue
        speedup = lecture["seconds_train_median"] / row["seconds_train_median"]
        acc_pp = 100 * (row["test_acc"] - lecture["test_acc"])
        out[name] = {
            "speedup": speedup,
            "acc_diff_pp": acc_pp,
            "goal_met": speedup >= GOAL_SPEEDUP and abs(acc_pp) <= GOAL_ACC_PP,
        }
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Benchmark the lecture's MNIST MLP: softreg vs the lecture's program."
    )
    parser.add_argument("--epochs", type=positive_int, default=10)
    add_limit_option(parser)
    parser.add_argument(
        "--rows",
        default=",".join(ROWS),
        help=f"comma-separated subset of {','.join(ROWS)} (default: all)",
    )
    parser.add_argument(
        "--repeat",
        type=positive_int,
        default=1,
        help="runs per row (default: %(default)s; the lecture takes minutes)",
    )
    parser.add_argument(
        "--device",
        choices=DEVICES,
        default="cpu",
        help=f"where {','.join(DEVICE_ROWS)} run (cuda and gpu: the first GPU; the other rows "
        "are skipped off the CPU) (default: %(default)s)",
    )
    add_data_dir_option(parser)
    add_json_option(parser, DEFAULT_JSON)
    parser.add_argument("--worker", choices=ROWS, help=argparse.SUPPRESS)
    return parser


def measure(args: argparse.Namespace, order: list[str]) -> dict[str, dict]:
    """Every row of ``order``: skipped (its library missing), failed, or its summary."""
    rows = missing_libraries(order, NEEDS)
    if args.device != "cpu":
        reason = f"runs on the CPU only, not on --device {args.device}"
        for name in order:
            if name not in DEVICE_ROWS and name not in rows:
                rows[name] = {"status": "skipped", "reason": reason}
    active = [name for name in order if name not in rows]
    options = {
        "--epochs": args.epochs,
        "--limit": args.limit,
        "--data-dir": args.data_dir,
        "--device": args.device,
    }

    def progress(name: str, res: dict) -> str:
        return f"{name:<16} train {res['seconds_train']:.2f} s  test acc {res['test_acc']:.4f}"

    runs, failed = run_rounds(
        active, args.repeat, lambda name: run_worker(__file__, name, options), progress
    )
    rows.update(failed)
    for name in order:
        if name not in rows:
            rows[name] = summarize(runs[name])
    return rows


def print_summary(args: argparse.Namespace, order: list[str], rows: dict, comparison: dict):
    """The table and the comparison with the lecture, on stdout."""
    n = "all" if args.limit is None else f"first {args.limit}"
    print(
        f"\nMNIST MLP 784-512-256-128-64-10 ({n} examples), {args.epochs} epochs, batch 64, "
        f"SGD lr 0.01 momentum 0.5; median of {args.repeat}; {os.cpu_count()} CPUs; "
        f"device {args.device}"
    )
    head = (
        f"{'row':<17}{'train s':>9}{'compile s':>11}{'wall s':>9}{'peak RSS MB':>13}"
        f"{'test acc':>10}"
    )
    print(head + "\n" + "-" * len(head))
    for name in order:
        row = rows[name]
        if row["status"] != "ok":
            print(f"{name:<17}{row['status']} ({row['reason']})")
            continue
        print(
            f"{name:<17}{row['seconds_train_median']:>9.2f}{row['seconds_compile_median']:>11.2f}"
            f"{row['wall_seconds_median']:>9.2f}{row['peak_rss_mb']:>13.0f}"
            f"{row['test_acc']:>10.4f}"
        )
    print()
    for name, c in comparison.items():
        verdict = "met" if c["goal_met"] else "NOT met"
        print(
            f"{name}: {c['speedup']:.2f}x faster than the lecture, test accuracy "
            f"{c['acc_diff_pp']:+.2f} pp; goal (>= {GOAL_SPEEDUP:g}x, within "
            f"{GOAL_ACC_PP:g} pp): {verdict}"
        )
    print(f"results: {args.json}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.data_dir = data_dir(args.data_dir)
    if args.worker:
        result = worker(args.worker, args.epochs, args.limit, args.data_dir, args.device)
        print(json.dumps(result))
        return 0
    order = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = [r for r in order if r not in ROWS]
    if unknown or not order:
        print(f"bench: unknown rows {unknown}; choose from {', '.join(ROWS)}", file=sys.stderr)
        return 2

    rows = measure(args, order)
    comparison = compare(rows)
    config = {
        "dataset": "mnist",
        "epochs": args.epochs,
        "limit": args.limit,
        "repeat": args.repeat,
        "rows": order,
        "device": args.device,
        **RECIPE,
    }
    report = {
        **report_header("mlp", config),
        "machine": machine_info(),
        "rows": rows,
        "vs_lecture": comparison,
    }
    write_report(args.json, report)
    print_summary(args, order, rows, comparison)
    return 1 if any(r["status"] == "failed" for r in rows.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
