"""Sweeps (exercise 5): a held-out part of the training set scores each value; small data."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math

import numpy as np
import pytest

from softreg import sweep
from softreg.config import TrainConfig
from softreg.data.split import validation_split
from softreg.errors import ConfigError
from softreg.sweep import (
    SweepPlan,
    best_point,
    parse_values,
    run_sweep,
    run_sweep_dataset,
    sweep_main,
    write_sweep,
)

BASE = TrainConfig(dataset="synthetic", epochs=2, batch_size=32, lr=0.1, log_every=0)


def numbers(points):
    """Everything a point reports except its timing."""
    return [{k: v for k, v in p.row().items() if k != "seconds"} for p in points]


# --- validation_split ----------------------------------------------------------------------


def test_validation_split_is_disjoint_complete_sized_and_seeded():
    X = np.arange(200, dtype=np.float32).reshape(100, 2)
    y = np.arange(100) % 3
    X_fit, y_fit, X_val, y_val = validation_split(X, y, fraction=0.2, seed=1)
    assert (len(X_fit), len(X_val)) == (80, 20)
    rows_fit, rows_val = set(X_fit[:, 0] // 2), set(X_val[:, 0] // 2)
    assert rows_fit.isdisjoint(rows_val) and rows_fit | rows_val == set(range(100))
    np.testing.assert_array_equal(y_val, (X_val[:, 0] // 2).astype(int) % 3)  # rows kept whole
    again = validation_split(X, y, fraction=0.2, seed=1)
    np.testing.assert_array_equal(again[2], X_val)
    other = validation_split(X, y, fraction=0.2, seed=2)
    assert not np.array_equal(other[2], X_val)
    assert not np.array_equal(X_val[:, 0], np.arange(160, 200, 2))  # not simply the tail


@pytest.mark.parametrize(
    ("n", "fraction"),
    [(10, 0), (10, 1), (10, 1.5), (10, -0.1), (10, 0.01), (10, 0.99), (10, "0.1")],
)
def test_validation_split_refuses_fractions_that_leave_a_part_empty(n, fraction):
    with pytest.raises(ConfigError, match="fraction"):
        validation_split(np.zeros((n, 2)), np.zeros(n, dtype=int), fraction=fraction)


# --- run_sweep -----------------------------------------------------------------------------


def test_lr_sweep_scores_each_value_on_held_out_training_rows(blobs):
    X, y, _, _ = blobs
    points = run_sweep(SweepPlan(BASE, "lr", [1e-4, 0.1]), X, y, workers=1)
    assert [p.value for p in points] == [1e-4, 0.1]
    assert [p.config.lr for p in points] == [1e-4, 0.1]
    assert all(math.isfinite(p.val_loss) and math.isfinite(p.train_loss) for p in points)
    assert all((p.n_fit, p.n_val) == (450, 50) for p in points)
    assert all(p.steps == 2 * math.ceil(450 / 32) for p in points)
    tiny, good = points
    assert tiny.val_loss > good.val_loss + 0.3
    assert good.val_acc > 0.9


def test_points_do_not_depend_on_the_number_of_workers(blobs, monkeypatch):
    X, y, _, _ = blobs
    calls = []
    values = [0.01, 0.3, 3.0]  # a large lr amplifies any difference in rounding
    alone = run_sweep(SweepPlan(BASE, "lr", values), X, y, workers=1)
    # Points finishing out of order still come back in the order of the values.
    monkeypatch.setattr(sweep.pool, "as_completed", lambda futures: reversed(list(futures)))
    pooled = run_sweep(
        SweepPlan(BASE, "lr", values),
        X,
        y,
        workers=2,
        progress=lambda done, total, point: calls.append((done, total)),
    )
    assert numbers(pooled) == numbers(alone)
    assert sorted(calls) == [(1, 3), (2, 3), (3, 3)]


def blas_threads(threadpoolctl):
    return {
        pool["num_threads"]
        for pool in threadpoolctl.threadpool_info()
        if pool["user_api"] == "blas"
    }


def test_points_train_on_one_blas_thread_in_this_process(blobs, monkeypatch):
    """Two BLAS threads can round differently from one (on Fashion-MNIST at lr=1 the
    validation loss differed in the first digit): every point runs on one."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    X, y, _, _ = blobs
    before, seen = blas_threads(threadpoolctl), []
    real = sweep.pool.train_point

    def spy(*args, **kwargs):
        seen.append(blas_threads(threadpoolctl))
        return real(*args, **kwargs)

    monkeypatch.setattr(sweep.pool, "train_point", spy)
    run_sweep(SweepPlan(BASE, "lr", [0.01, 0.1]), X, y, workers=1)
    assert seen == [{1}, {1}]
    assert blas_threads(threadpoolctl) == before  # and the cap is lifted afterwards


def test_a_worker_keeps_one_blas_thread_and_its_data(blobs, monkeypatch):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    X, y, _, _ = blobs
    for var in sweep.THREAD_VARS:  # restored after the test
        monkeypatch.setenv(var, "")
    data = sweep.SplitData(*validation_split(X, y), num_classes=3)
    try:
        sweep.pool._init_worker(data)
        assert blas_threads(threadpoolctl) == {1}
        assert sweep.pool._WORKER["data"] is data
        point = sweep.pool._run_in_worker(SweepPlan(BASE, "lr", [0.1]), 0.1)
        assert point.value == 0.1 and point.n_val == 50
    finally:
        sweep.pool._WORKER.pop("limits").__exit__(None, None, None)
        sweep.pool._WORKER.pop("data", None)


def test_equal_updates_makes_the_same_number_of_steps_at_every_batch_size(blobs):
    X, y, _, _ = blobs
    sizes = [4, 32, 64, 1000]  # 1000 > n_fit = 450: full batch
    budget = 2 * math.ceil(450 / 32)  # what BASE itself makes: 30
    points = run_sweep(SweepPlan(BASE, "batch_size", sizes, equal="updates"), X, y, workers=1)
    assert [p.steps for p in points] == [budget] * 4
    assert points[0].epochs == pytest.approx(budget * 4 / 450)  # a partial first epoch
    assert points[2].epochs == pytest.approx(3 + 6 * 64 / 450)  # 3 whole epochs + 6 steps
    assert points[3].epochs == budget and points[3].full_batch
    assert not any(p.full_batch for p in points[:3])

    by_epochs = run_sweep(SweepPlan(BASE, "batch_size", sizes, equal="epochs"), X, y, workers=1)
    assert [p.epochs for p in by_epochs] == [2] * 4
    assert [p.steps for p in by_epochs] == [2 * math.ceil(450 / min(b, 450)) for b in sizes]
    # BASE's own batch size makes a whole number of epochs either way: the same model.
    assert numbers(points)[1] | {"equal": "epochs"} == numbers(by_epochs)[1]


def test_equal_updates_takes_an_explicit_budget(blobs):
    X, y, _, _ = blobs
    plan = SweepPlan(BASE, "batch_size", [8, 64], equal="updates", updates=7)
    points = run_sweep(plan, X, y, workers=1)
    assert [p.steps for p in points] == [7, 7]
    assert [p.config.epochs for p in points] == [1, 1]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"field": "momentum"}, "can sweep lr, batch_size only"),
        ({"values": []}, "no values"),
        ({"values": [0.1, -1.0]}, "learning rate"),
        ({"equal": "steps"}, "equal must be one of epochs, updates"),
        ({"equal": "updates"}, "batch_size sweeps only"),
        ({"workers": 0}, "workers"),
    ],
)
def test_run_sweep_refuses_what_cannot_run(blobs, kwargs, match):
    X, y, _, _ = blobs
    args = {"field": "lr", "values": [0.01, 0.1], **kwargs}
    workers = args.pop("workers", None)
    with pytest.raises(ConfigError, match=match):
        run_sweep(SweepPlan(BASE, **args), X, y, workers=workers)


def test_batch_size_sweep_refuses_full_batch_gradient_descent(blobs):
    X, y, _, _ = blobs
    with pytest.raises(ConfigError, match="optimizer='sgd'"):
        run_sweep(SweepPlan(dataclasses.replace(BASE, optimizer="gd"), "batch_size", [8, 64]), X, y)


class _TrainOnly:
    """A dataset whose test half fails the test if anything reads it."""

    def __init__(self, X, y):
        self.X_train, self.y_train, self.num_classes = X, y, 3

    def _touched(self):
        raise AssertionError("the sweep read the test set")

    X_test = y_test = test_images = test_labels = property(_touched)


def test_run_sweep_dataset_never_reads_the_test_set(blobs, monkeypatch):
    X, y, _, _ = blobs
    loads = []

    def fake_load(name, **kwargs):
        loads.append((name, kwargs))
        return _TrainOnly(X, y)

    with pytest.raises(AssertionError):  # the guard works
        _ = _TrainOnly(X, y).X_test
    monkeypatch.setattr(sweep.split, "load_dataset", fake_load)
    points = run_sweep_dataset(SweepPlan(BASE, "lr", [0.01, 0.1]), workers=1)
    assert len(points) == 2 and all(p.n_fit + p.n_val == len(X) for p in points)
    assert loads == [("synthetic", {"data_dir": None, "download": False, "progress": False})]
    assert numbers(points) == numbers(
        run_sweep(SweepPlan(BASE, "lr", [0.01, 0.1]), X, y, workers=1)
    )


# --- results -------------------------------------------------------------------------------


@pytest.fixture
def points(blobs):
    X, y, _, _ = blobs
    return run_sweep(SweepPlan(BASE, "lr", [1e-3, 0.1, 1.0]), X, y, workers=1)


def test_best_point_picks_by_metric_and_never_a_diverged_point(points):
    assert best_point(points) is min(points, key=lambda p: p.val_loss)
    assert best_point(points, "val_acc").val_acc == max(p.val_acc for p in points)
    diverged = dataclasses.replace(points[0], val_loss=math.nan)
    assert best_point([diverged, points[0]]) is points[0]
    with pytest.raises(ConfigError, match="finite"):
        best_point([diverged])
    with pytest.raises(ConfigError, match="val_loss"):
        best_point(points, "test_acc")


def test_write_sweep_writes_csv_json_png_atomically(points, tmp_path):
    diverged = dataclasses.replace(points[2], val_loss=math.inf, train_loss=math.nan)
    rows_in = [*points[:2], diverged]
    files = write_sweep(rows_in, tmp_path / "out", "lr", "epochs")
    stem = tmp_path / "out" / "sweep-lr-epochs"
    assert files == [stem.with_suffix(".csv"), stem.with_suffix(".json"), stem.with_suffix(".png")]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(f.name for f in files)
    with open(files[0], newline="") as f:
        rows = list(csv.DictReader(f))
    assert [float(r["lr"]) for r in rows] == [1e-3, 0.1, 1.0]
    assert [float(r["val_loss"]) for r in rows[:2]] == [p.val_loss for p in points[:2]]

    def no_nan(name):
        raise AssertionError(f"{name} is not JSON")

    summary = json.loads(files[1].read_text(), parse_constant=no_nan)
    assert summary["field"] == "lr" and summary["equal"] == "epochs"
    assert summary["split"]["n_val"] == 50 and "training set" in summary["split"]["from"]
    assert summary["base_config"]["batch_size"] == 32 and "lr" not in summary["base_config"]
    assert summary["points"][2]["val_loss"] is None
    assert summary["best_by_val_loss"] == best_point(points[:2]).value
    assert summary["created"].startswith("20")
    assert files[2].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- the command's pieces ------------------------------------------------------------------


def test_parse_values_sorts_and_drops_duplicates():
    assert parse_values("lr", " 0.3, 0.01,1e-1,0.3") == [0.01, 0.1, 0.3]
    assert parse_values("batch-size", "256,1,60000") == [1, 256, 60000]


@pytest.mark.parametrize(
    ("field", "text", "match"),
    [
        ("lr", "0.1", "at least 2 distinct"),
        ("lr", "0.1,0.10", "at least 2 distinct"),
        ("lr", "0.1,,1", "empty value"),
        ("lr", "0.1,fast", "'fast' is not a number"),
        ("lr", "0,0.1", "> 0"),
        ("lr", "nan,0.1", "finite"),
        ("lr", "0.1,inf", "finite"),
        ("batch_size", "1,2.5", "'2.5' is not a whole number"),
        ("batch_size", "0,16", ">= 1"),
        ("batch_size", "-4,16", ">= 1"),
        ("epochs", "1,2", "can sweep lr, batch_size only"),
    ],
)
def test_parse_values_says_what_is_wrong(field, text, match):
    with pytest.raises(ConfigError, match=match):
        parse_values(field, text)


def test_sweep_main_runs_both_budgets_and_prints_tables(tmp_path):
    base = dataclasses.replace(BASE, epochs=1)  # the synthetic set: 800 rows, 720 fit
    out = io.StringIO()
    files = sweep_main(
        SweepPlan(base, "batch_size", [16, 1000], equal="both"),
        out_dir=tmp_path,
        workers=1,
        stream=out,
        progress=False,
    )
    assert sorted(f.name for f in files) == sorted(
        f"sweep-batch_size-{e}.{s}" for e in ("epochs", "updates") for s in ("csv", "json", "png")
    )
    assert all(f.is_file() for f in files)
    text = out.getvalue()
    assert "equal epochs" in text and "equal updates" in text
    assert text.count("full batch (720)") == 2 and text.count("best val loss") == 2
    updates = json.loads((tmp_path / "sweep-batch_size-updates.json").read_text())
    assert [p["steps"] for p in updates["points"]] == [23, 23]  # BASE's: ceil(720 / 32)


def test_sweep_main_checks_every_budget_before_running(tmp_path):
    with pytest.raises(ConfigError, match="batch_size sweeps only"):
        sweep_main(
            SweepPlan(BASE, "lr", [0.1, 1.0], equal="both"), out_dir=tmp_path / "x", workers=1
        )
    assert not (tmp_path / "x").exists()


def test_fashion_mnist_lr_sweep(data_root):
    """Real data, kept short (2 values, 1 epoch, ~2 s): the split is 54000/6000 and even one
    epoch of the book's recipe beats a ten times smaller learning rate."""
    base = TrainConfig(epochs=1, log_every=0)
    points = run_sweep_dataset(SweepPlan(base, "lr", [0.01, 0.1]), data_dir=data_root, workers=1)
    assert [(p.n_fit, p.n_val, p.steps) for p in points] == [(54000, 6000, 211)] * 2
    assert points[1].val_loss < points[0].val_loss and points[1].val_acc > 0.7


def test_a_diverging_point_is_recorded_and_never_wins(blobs):
    X, y, _, _ = blobs
    from softreg.sweep import SweepPlan, best_point, format_table, run_sweep

    base = TrainConfig(epochs=1, batch_size=32, softmax="naive")
    points = run_sweep(SweepPlan(base, "lr", [0.1, 1e30]), X, y, workers=1)
    good, bad = points
    assert bad.diverged_at is not None and bad.val_loss == float("inf")
    assert good.diverged_at is None and best_point(points) is good
    assert f"diverged at step {bad.diverged_at}" in format_table(points)
