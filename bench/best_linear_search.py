#!/usr/bin/env python
"""How the best-linear recipe was chosen: a grid on a validation split of the training set.

Softmax regression on raw Fashion-MNIST pixels, each pixel standardised with the training
part's statistics, SGD with momentum 0.9, batch 256; the grid spans the learning rate, its
schedule (constant or cosine), the weight decay and the number of epochs. The last 10,000 of
a seeded shuffle of the 60,000 training images are held out; the test set is never read.
Prints the validation accuracy of every setting and the pick: among the settings within 0.2
points of the best (closer than that is noise at 10,000 examples), the cheapest (fewest
epochs), then the one nearest the middle of the grid.

    SOFTREG_DATA=../shared/data .venv/bin/python bench/best_linear_search.py
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np
from _harness import data_dir, write_report

import softreg
from softreg.recipes import recipe_config

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "best_linear_search.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lr", default="0.01,0.03,0.1")
    parser.add_argument("--lr-schedule", default="constant,cosine")
    parser.add_argument("--weight-decay", default="0.0001,0.001")
    parser.add_argument("--epochs", default="10,20")
    parser.add_argument("--limit", type=int, default=None, help="training rows (smoke tests)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args(argv)
    data = softreg.load_dataset("fashion-mnist", data_dir=data_dir(None), download=False)
    order = np.random.default_rng(123).permutation(len(data.y_train))[: args.limit]
    n_val = len(order) // 6
    train, val = order[:-n_val], order[-n_val:]
    X_train, X_val = data.X_train[train], data.X_train[val]
    grid = list(
        itertools.product(
            _floats(args.lr),
            args.lr_schedule.split(","),
            _floats(args.weight_decay),
            map(int, args.epochs.split(",")),
        )
    )
    results = []
    for lr, schedule, wd, epochs in grid:
        config = recipe_config(
            "best-linear", lr=lr, lr_schedule=schedule, weight_decay=wd, epochs=epochs
        )
        start = time.perf_counter()
        model = softreg.make_model(config, X_train, data.num_classes)  # per-feature statistics
        result = softreg.fit(
            model, (X_train, data.y_train[train]), (X_val, data.y_train[val]), config
        )
        results.append(
            {
                "lr": lr,
                "lr_schedule": schedule,
                "weight_decay": wd,
                "epochs": epochs,
                "val_acc": result.history.final.test_acc,
                "seconds": time.perf_counter() - start,
            }
        )
        print(
            f"lr {lr:<5g} {schedule:<8} weight decay {wd:<7g} epochs {epochs:<3} validation "
            f"accuracy {results[-1]['val_acc']:.4f}  ({results[-1]['seconds']:.1f} s)",
            flush=True,
        )
    best = max(r["val_acc"] for r in results)
    close = [r for r in results if r["val_acc"] >= best - 0.002]
    middle = [np.median(np.log10(_floats(text))) for text in (args.lr, args.weight_decay)]
    pick = min(
        close,
        key=lambda r: (
            r["epochs"],
            abs(np.log10(r["lr"]) - middle[0]) + abs(np.log10(r["weight_decay"]) - middle[1]),
            -r["val_acc"],
        ),
    )
    print(
        f"best validation accuracy {best:.4f}; picked lr {pick['lr']:g} "
        f"({pick['lr_schedule']}), weight decay {pick['weight_decay']:g}, "
        f"{pick['epochs']} epochs ({pick['val_acc']:.4f})"
    )
    write_report(
        args.json,
        {
            "results": results,
            "best": best,
            "pick": pick,
            "n_train": len(train),
            "n_val": len(val),
            "command": [Path(sys.executable).name, *sys.argv],
        },
    )
    print(json.dumps(pick))
    return 0


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",")]


if __name__ == "__main__":
    sys.exit(main())
