#!/usr/bin/env python
"""How the best-linear recipe was chosen: a grid on a validation split of the training set.

Softmax regression on raw Fashion-MNIST pixels, each pixel standardised with the training
part's statistics, SGD with momentum 0.9, 20 epochs, batch 256. The last 10,000 of a seeded
shuffle of the 60,000 training images are held out; the test set is never read. Prints the
validation accuracy of every (lr, weight decay) pair and the pick: the simplest setting
within 0.2 points of the best (the differences below that are noise at 10,000 examples).

    SOFTREG_DATA=../shared/data .venv/bin/python bench/best_linear_search.py
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

import softreg
from softreg.recipes import recipe_config
from softreg.runs import write_json
from softreg.standardise import feature_stats, standardise

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "best_linear_search.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lr", default="0.003,0.01,0.03")
    parser.add_argument("--weight-decay", default="0.0001,0.001,0.003")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--limit", type=int, default=None, help="training rows (smoke tests)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args(argv)
    data = softreg.load_dataset("fashion-mnist", data_dir=os.environ.get("SOFTREG_DATA"),
                                download=False)
    order = np.random.default_rng(123).permutation(len(data.y_train))[: args.limit]
    n_val = len(order) // 6
    train, val = order[:-n_val], order[-n_val:]
    mean, scale = feature_stats(data.X_train[train])
    X_train = standardise(data.X_train[train], mean, scale)
    X_val = standardise(data.X_train[val], mean, scale)
    results = []
    for lr, wd in itertools.product(*(map(float, s.split(",")) for s in
                                      (args.lr, args.weight_decay))):
        config = recipe_config("best-linear", lr=lr, weight_decay=wd, epochs=args.epochs)
        model = softreg.SoftmaxRegression()
        start = time.perf_counter()
        result = softreg.fit(model, (X_train, data.y_train[train]),
                             (X_val, data.y_train[val]), config)
        results.append({"lr": lr, "weight_decay": wd, "val_acc": result.history.final.test_acc,
                        "seconds": time.perf_counter() - start})
        print(f"lr {lr:<6g} weight decay {wd:<7g} validation accuracy "
              f"{results[-1]['val_acc']:.4f}  ({results[-1]['seconds']:.1f} s)", flush=True)
    best = max(r["val_acc"] for r in results)
    # Simplest: the fewest non-round choices; here, the middle of the grid when it is close.
    close = [r for r in results if r["val_acc"] >= best - 0.002]
    pick = min(close, key=lambda r: (abs(np.log10(r["lr"]) + 2), abs(np.log10(r["weight_decay"])
                                                                      + 3)))
    print(f"best validation accuracy {best:.4f}; picked lr {pick['lr']:g}, weight decay "
          f"{pick['weight_decay']:g} ({pick['val_acc']:.4f})")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.json, {"results": results, "best": best, "pick": pick,
                           "n_train": len(train), "n_val": len(val), "epochs": args.epochs,
                           "command": [Path(sys.executable).name, *sys.argv]})
    print(json.dumps(pick))
    return 0


if __name__ == "__main__":
    sys.exit(main())
