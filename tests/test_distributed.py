"""Data-parallel training (softreg.distributed): two ranks on the CPU (gloo, loopback) follow
the trajectory of one process at the same global batch size, only rank 0 writes, a run
continues with --resume, and a rank that dies stops the others with a clear error."""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

try:
    import torch
    import torch.distributed as dist
except ImportError:
    if os.environ.get("CI"):  # CI installs torch: there these tests must run
        raise
    pytest.skip("torch is not installed", allow_module_level=True)

from softreg.build import make_model
from softreg.checkpoint import load_checkpoint
from softreg.cli import main
from softreg.config import TrainConfig
from softreg.data import load_dataset
from softreg.distributed import Communicator, init, launch_from_env
from softreg.errors import ConfigError, DistributedError, ModelFileError
from softreg.run_files import CHECKPOINT_FILE
from softreg.run_options import RunOptions
from softreg.runs import train_run
from softreg.train import fit

# row, so rank 1's shard of it is empty. An MLP with momentum: several tensors to all-reduce.
RECIPE = {
    "dataset": "synthetic",
    "model": "mlp",
    "hidden": (16,),
    "batch_size": 17,
    "lr": 0.1,
    "momentum": 0.5,
    "epochs": 3,
    "log_every": 20,
    "backend": "torch",
}
FLAGS = [
    "--dataset",
    "synthetic",
    "--model",
    "mlp",
    "--hidden",
    "16",
    "--batch-size",
    "17",
    "--lr",
    "0.1",
    "--momentum",
    "0.5",
    "--epochs",
    "3",
    "--log-every",
    "20",
    "--backend",
    "torch",
    "--no-plots",
]
TIMING = (
    "seconds",
    "seconds_train",
    "seconds_compile",
    "seconds_load_data",
    "seconds_total",
    "peak_rss_mb",
    "versions",
    "resumed_from_step",
    "checkpoint_every",
    "processes",
)
LAUNCH_TIMEOUT = 120  # seconds for a whole torchrun launch; they take about 5 here


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--master-addr",
        "127.0.0.1",
        "--master-port",
        str(free_port()),
        "-m",
        "softreg",
        "train",
        "--distributed",
        *args,
    ]
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=LAUNCH_TIMEOUT)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr[-3000:]}"
    return proc


def model_tensors(run_dir: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(run_dir / "model.safetensors"))


def metrics(run_dir: Path) -> dict:
    m = json.loads((run_dir / "metrics.json").read_text())
    m["history"] = [{k: v for k, v in r.items() if k not in TIMING} for r in m["history"]]
    return {k: v for k, v in m.items() if k not in TIMING}


def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return [{k: v for k, v in row.items() if k not in TIMING} for row in csv.DictReader(f)]


def assert_close_numbers(a, b, *, rtol: float, atol: float, where: str = "") -> None:
    """Nested dicts/lists equal, floats within tolerance (strings and ints exactly)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_close_numbers(a[k], b[k], rtol=rtol, atol=atol, where=f"{where}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_close_numbers(x, y, rtol=rtol, atol=atol, where=f"{where}[{i}]")
    elif isinstance(a, float):
        assert b == pytest.approx(a, rel=rtol, abs=atol), where
    else:
        assert a == b, where


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """The recipe trained by 2 ranks under torchrun, uninterrupted."""
    where = tmp_path_factory.mktemp("ddp")
    proc = torchrun(*FLAGS, "--out", "two", "--checkpoint-every", "10", cwd=where)
    return where / "two", proc


@pytest.mark.slow
def test_two_ranks_follow_one_process(two_ranks, tmp_path):
    run_dir, proc = two_ranks
    one = train_run(
        TrainConfig(**RECIPE), tmp_path / "one", options=RunOptions(progress=False, plots=False)
    )
    for name, weights in model_tensors(one.run_dir).items():
        # float32 tolerance: the all-reduce adds the shards' gradients in another order
        np.testing.assert_allclose(
            model_tensors(run_dir)[name], weights, rtol=1e-5, atol=1e-6, err_msg=name
        )
    assert_close_numbers(metrics(run_dir), metrics(one.run_dir), rtol=1e-5, atol=1e-6)
    for name in ("epochs.csv", "steps.csv"):
        a, b = csv_rows(run_dir / name), csv_rows(one.run_dir / name)
        assert_close_numbers(
            [{k: float(v) for k, v in r.items()} for r in a],
            [{k: float(v) for k, v in r.items()} for r in b],
            rtol=1e-5,
            atol=1e-6,
            where=name,
        )
    m = json.loads((run_dir / "metrics.json").read_text())
    assert m["processes"] == 2 and m["steps"] == 3 * 48
    # Only rank 0 wrote and printed: each line once, no temporary files left.
    assert sorted(p.name for p in run_dir.iterdir()) == [
        CHECKPOINT_FILE,
        "config.json",
        "epochs.csv",
        "metrics.json",
        "model.safetensors",
        "steps.csv",
    ]
    assert proc.stdout.count("final: ") == 1 and proc.stdout.count("epoch 3/3") == 1


def rank_process(rank: int, port: int, *args: str, cwd: Path) -> subprocess.Popen:
    """One rank, launched by hand (as a node's launcher would), without torchrun watching."""
    env = {
        **os.environ,
        "RANK": str(rank),
        "LOCAL_RANK": str(rank),
        "WORLD_SIZE": "2",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
        "OMP_NUM_THREADS": "1",
    }  # as torchrun sets it, so the arithmetic is the same
    return subprocess.Popen(
        [sys.executable, "-m", "softreg", "train", "--distributed", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def checkpointed_step(run_dir: Path) -> int:
    try:
        return load_checkpoint(run_dir / CHECKPOINT_FILE).state.step
    except ModelFileError:  # not written yet, or replaced between the reader's two opens
        return -1


@pytest.mark.slow
def test_a_dead_rank_stops_the_other_then_two_ranks_resume_exactly(two_ranks, tmp_path):
    reference, _ = two_ranks
    port = free_port()
    out = tmp_path / "killed"
    # A checkpoint at every step: slow enough to be killed mid-run, and a recent one to resume.
    ranks = [
        rank_process(
            r,
            port,
            *FLAGS,
            "--quiet",
            "--out",
            str(out),
            "--checkpoint-every",
            "1",
            "--dist-timeout",
            "30",
            cwd=tmp_path,
        )
        for r in (0, 1)
    ]
    try:
        deadline = time.monotonic() + LAUNCH_TIMEOUT
        while checkpointed_step(out) < 20:
            assert time.monotonic() < deadline and ranks[0].poll() is None, ranks[0].communicate(
                timeout=10
            )
            time.sleep(0.01)
        ranks[1].send_signal(signal.SIGKILL)
        killed = time.monotonic()
        _, err = ranks[0].communicate(timeout=60)  # well within --dist-timeout's 30 s, too
        stopped_after = time.monotonic() - killed
    finally:
        for proc in ranks:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
    assert ranks[0].returncode == 2, err
    assert stopped_after < 30, stopped_after
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "rank 0 of 2 lost contact with the other ranks" in lines[0], err
    assert not (out / "metrics.json").exists()

    step = load_checkpoint(out / CHECKPOINT_FILE).state.step
    proc = torchrun("--resume", str(out), "--checkpoint-every", "50", cwd=tmp_path)
    assert f"continued from step {step}" in proc.stdout
    # Same ranks, same shards, same sums: the continued run is the uninterrupted one, bit for bit.
    a, b = model_tensors(out), model_tensors(reference)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert metrics(out) == metrics(reference)
    for name in ("epochs.csv", "steps.csv"):
        assert csv_rows(out / name) == csv_rows(reference / name)


# ------------------------------------------------------------------------- in this process


class TwinRank:
    """Rank 1 of 2 whose partner holds the same shard: every sum is twice this rank's."""

    rank, world_size = 1, 2

    def all_reduce_sum(self, tree):
        return {
            k: self.all_reduce_sum(v) if isinstance(v, dict) else v * 2 for k, v in tree.items()
        }

    def agree(self, values):
        pass

    def barrier(self):
        pass


@pytest.fixture
def one_rank(monkeypatch) -> Communicator:
    """A real gloo process group of one rank, in this process."""
    for name, value in {
        "RANK": "0",
        "WORLD_SIZE": "1",
        "LOCAL_RANK": "0",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(free_port()),
    }.items():
        monkeypatch.setenv(name, value)
    communicator = init("cpu", timeout=30)
    yield communicator
    communicator.close()


def test_one_collective_per_step(one_rank, monkeypatch):
    data = load_dataset("synthetic")
    config = TrainConfig(**{**RECIPE, "epochs": 1})
    model = make_model(config, data.X_train, data.num_classes)
    calls = []
    real = dist.all_reduce
    monkeypatch.setattr(dist, "all_reduce", lambda t, **kw: (calls.append(t.dtype), real(t, **kw)))
    sharded = fit(model, (data.X_train, data.y_train), None, config, communicator=one_rank)
    assert len(calls) == 1 + 48  # the start's agreement check, then one per step
    plain = fit(model, (data.X_train, data.y_train), None, config)
    for name, p in plain.params.items():
        np.testing.assert_allclose(sharded.params[name].numpy(), p.numpy(), rtol=1e-5, atol=1e-6)
    assert sharded.history.final.train_acc == plain.history.final.train_acc

    calls.clear()  # a tree of two dtypes: two flat buffers, the structure kept
    tree = {
        "a": {"w": torch.ones(2, 3), "c": torch.tensor(7, dtype=torch.int32)},
        "b": torch.zeros(()),
    }
    summed = one_rank.all_reduce_sum(tree)
    assert calls == [torch.float32, torch.int32]
    assert summed["a"]["w"].shape == (2, 3) and summed["b"].shape == ()
    assert summed["a"]["c"].dtype == torch.int32 and int(summed["a"]["c"]) == 7


def test_ranks_that_start_differently_stop_together(one_rank, monkeypatch):
    """agree() on a simulated second rank whose training data differs."""
    theirs = {"training data": 2.0, "step": 0.0}

    def all_reduce(bounds, op):  # MAX with the other rank's [values, -values]
        other = torch.tensor(list(theirs.values()), dtype=torch.float64)
        bounds.copy_(torch.maximum(bounds, torch.cat([other, -other])))

    monkeypatch.setattr(dist, "all_reduce", all_reduce)
    one_rank.agree({"training data": 2.0, "step": 0.0})  # the same: nothing to say
    theirs["training data"] = 3.0
    with pytest.raises(
        DistributedError,
        match=r"do not start from the same training data "
        r"\(rank 0 has 2\)",
    ):
        one_rank.agree({"training data": 2.0, "step": 0.0})


def test_other_ranks_write_nothing(tmp_path, capsys):
    # Batches of 16 split evenly: TwinRank's partner must hold rows for its sums to be a batch.
    config = TrainConfig(**{**RECIPE, "epochs": 1, "batch_size": 16})
    result = train_run(
        config,
        tmp_path / "run",
        options=RunOptions(progress=True, plots=True, checkpoint_every=5, communicator=TwinRank()),
    )
    assert not (tmp_path / "run").exists()
    assert capsys.readouterr().out == ""
    assert result.metrics["processes"] == 2 and result.metrics["steps"] == 50


def test_a_rank_without_rows_in_the_last_batch_adds_nothing():
    """A last batch smaller than the ranks leaves some with no rows; their mean gradient is
    0/0. Sent as it was, NaN times 0 rows, it made every rank's weights NaN."""
    from softreg.step import sum_over_ranks as _sum_over_ranks

    partner = {
        "grads": {"W": np.full((2, 3), 3.0, np.float32)},
        "loss": np.float32(0.5),
        "correct": np.float32(1),
        "rows": np.float32(1),
    }

    def all_reduce(tree):
        return {
            "grads": {"W": tree["grads"]["W"] + partner["grads"]["W"]},
            **{k: tree[k] + partner[k] for k in ("loss", "correct", "rows")},
        }

    empty = {"W": np.full((2, 3), np.nan, np.float32)}  # the mean over no rows
    grads, loss, correct = _sum_over_ranks(all_reduce, empty, np.float32(0), np.int32(0), 0, xp=np)
    np.testing.assert_array_equal(grads["W"], partner["grads"]["W"])
    assert (float(loss), int(correct)) == (0.5, 1)


def test_cli_refuses_what_cannot_run(capsys, monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    assert main(["train", "--distributed", "--dataset", "synthetic"]) == 2
    assert (
        "--distributed trains through torch.distributed: it needs --backend torch, got "
        "numpy" in capsys.readouterr().err
    )
    assert main(["train", "--distributed", "--backend", "torch", "--dataset", "synthetic"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "needs the environment torchrun sets" in err and "torchrun --nproc-per-node" in err
    with pytest.raises(ConfigError, match="RANK must be in"):
        launch_from_env(
            {
                "RANK": "2",
                "WORLD_SIZE": "2",
                "LOCAL_RANK": "0",
                "MASTER_ADDR": "h",
                "MASTER_PORT": "1",
            }
        )


@pytest.mark.slow
def test_bench_distributed_smoke(tmp_path, data_root):
    """bench/bench_distributed.py runs end to end on a slice of the data (no speed asserted)."""
    out = tmp_path / "distributed.json"
    bench = Path(__file__).resolve().parents[1] / "bench" / "bench_distributed.py"
    proc = subprocess.run(
        [
            sys.executable,
            str(bench),
            "--recipes",
            "book",
            "--rows",
            "1 process 1 thread,torchrun 2",
            "--limit",
            "2000",
            "--epochs",
            "1",
            "--repeat",
            "1",
            "--data-dir",
            str(data_root),
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=2 * LAUNCH_TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(out.read_text())["rows"]["book"]
    assert list(rows) == ["1 process 1 thread", "torchrun 2"]
    for row in rows.values():
        assert row["status"] == "ok" and row["steps"] == 8 and row["steps_per_second_median"] > 0
    # The same training whatever the number of processes.
    losses = [row["train_loss"] for row in rows.values()]
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)
    assert "steps/s" in proc.stdout
