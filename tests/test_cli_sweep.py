"""``softreg sweep`` end to end: one model per value, validated on held-out training data."""

import json

import pytest
from _helpers import run_cli

from softreg.cli import main


@pytest.mark.slow
def test_lr_sweep_writes_table_csv_json_and_figure(tmp_path, data_root):
    out = tmp_path / "sweep"
    proc = run_cli(
        "sweep",
        "--lr",
        "0.05,0.5",
        "--epochs",
        "1",
        "--out",
        str(out),
        "--quiet",
        data_root=data_root,
    )
    assert "lr sweep, equal epochs" in proc.stdout and "best val loss" in proc.stdout
    for suffix in ("csv", "json", "png"):
        assert (out / f"sweep-lr-epochs.{suffix}").is_file()
    report = json.loads((out / "sweep-lr-epochs.json").read_text())
    points = report["points"]
    assert [p["value"] for p in points] == [0.05, 0.5]
    assert all(0 < p["val_acc"] <= 1 and p["n_val"] == 6000 for p in points)


@pytest.mark.slow
def test_batch_size_sweep_at_equal_epochs_and_updates(tmp_path, data_root):
    out = tmp_path / "sweep"
    run_cli(
        "sweep",
        "--batch-size",
        "128,512",
        "--epochs",
        "1",
        "--out",
        str(out),
        "--quiet",
        "--no-plots",
        data_root=data_root,
    )
    epochs = json.loads((out / "sweep-batch_size-epochs.json").read_text())["points"]
    updates = json.loads((out / "sweep-batch_size-updates.json").read_text())["points"]
    assert [p["epochs"] for p in epochs] == [1, 1]
    assert len({p["steps"] for p in updates}) == 1  # the same number of SGD updates


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--epochs", "1"], "give a comma-separated list to exactly one of --lr and --batch-size"),
        (["--lr", "0.1,1", "--batch-size", "16,64"], "exactly one of --lr and --batch-size"),
        (["--lr", "0.1,abc"], "abc"),
        (["--lr", "0.1,1", "--batch-size", "many"], "--batch-size: expected a number"),
    ],
)
def test_sweep_refuses_bad_input_in_one_line(argv, message, capsys, tmp_path):
    code = main(["sweep", *argv, "--out", str(tmp_path / "never")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "never").exists()


def test_an_error_in_a_worker_process_is_one_line(capsys, tmp_path):
    """An error while a worker loads its data reaches the command as it is, not as a broken
    process pool with the workers' tracebacks."""
    code = main(
        [
            "sweep",
            "--lr",
            "0.1,0.2",
            "--dataset",
            "synthetic",
            "--epochs",
            "1",
            "--val-fraction",
            "0.9999",
            "--workers",
            "2",
            "--no-plots",
            "--quiet",
            "--out",
            str(tmp_path / "never"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert "validation fraction 0.9999 of 800 examples" in err
    assert not (tmp_path / "never").exists()


def test_a_diverging_value_is_a_point_of_the_sweep(capsys, tmp_path):
    out = tmp_path / "sweep"
    code = main(
        [
            "sweep",
            "--lr",
            "0.1,1e30",
            "--softmax",
            "naive",
            "--dataset",
            "synthetic",
            "--epochs",
            "1",
            "--workers",
            "2",
            "--no-plots",
            "--quiet",
            "--out",
            str(out),
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "diverged at step" in captured.out and "best val loss" in captured.out
    points = json.loads((out / "sweep-lr-epochs.json").read_text())["points"]
    assert points[1]["val_loss"] is None and points[1]["diverged_at"] >= 1
    assert points[0]["diverged_at"] is None and points[0]["val_loss"] > 0
