"""One writer per run directory: an OS-level lock held for the run, resume included.

Two ``softreg train --overwrite`` into one ``--out`` at once once left a directory whose
``config.json`` came from one run and ``metrics.json`` and the model from the other, both
exiting 0. Now the second is refused with a line naming the holder, and the directory always
holds one run's files.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _helpers import REPO

from softreg.checkpoint import load_model
from softreg.errors import RunDirError
from softreg.rundir import LOCK_FILE, RunDirectory

HOLDER = r"another softreg process is writing this run directory \(pid \d+ on "


def python() -> str:
    venv = REPO / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def start(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [python(), "-m", "softreg", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
    )


def train_args(out: Path, seed: int, epochs: int = 1000) -> list[str]:
    return [
        "train",
        "--dataset",
        "synthetic",
        "--epochs",
        str(epochs),
        "--seed",
        str(seed),
        "--lr",
        str(0.05 * (seed + 1)),
        "--no-plots",
        "--quiet",
        "--overwrite",
        "--out",
        str(out),
    ]


def assert_one_run(out: Path) -> int:
    """The directory's files all come from one run; returns its seed."""
    config = json.loads((out / "config.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    model = load_model(out / "model.safetensors")
    assert metrics["seed"] == config["seed"] == int(model.metadata["seed"])
    assert metrics["lr"] == config["lr"] and metrics["epochs"] == config["epochs"]
    with open(out / "epochs.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [float(r["train_loss"]) for r in rows] == [r["train_loss"] for r in metrics["history"]]
    assert not (out / LOCK_FILE).exists()
    assert not list(out.glob(".*.tmp"))
    return config["seed"]


@pytest.mark.slow
def test_two_overwriting_runs_at_once_leave_one_runs_files(tmp_path):
    out = tmp_path / "run"
    refused = 0
    for round_ in range(4):
        seeds = (2 * round_, 2 * round_ + 1)
        procs = [start(*train_args(out, seed), cwd=tmp_path) for seed in seeds]
        results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
        finished = [seed for seed, (code, _, _) in zip(seeds, results, strict=True) if code == 0]
        for code, _, err in results:
            assert code in (0, 2), err
            if code == 2:
                refused += 1
                assert err.count("\n") == 1 and "Traceback" not in err, err
                assert f"softreg train: error: {out}: " in err
        assert finished, results
        seed = assert_one_run(out)
        assert seed in finished
    assert refused, "the runs never overlapped: the lock was not exercised"


def test_resume_while_the_run_goes_on_is_refused_and_a_killed_writer_leaves_no_lock(tmp_path):
    out = tmp_path / "run"
    proc = start(*train_args(out, 0, epochs=100_000), "--checkpoint-every", "500", cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while not (out / "checkpoint.safetensors").exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.02)
        second = subprocess.run(
            [python(), "-m", "softreg", "train", "--resume", str(out), "--quiet", "--no-plots"],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
        assert proc.poll() is None, "the run ended before the second process tried"
        assert second.returncode == 2, second.stderr
        assert second.stderr.count("\n") == 1 and re_search(HOLDER, second.stderr)
        assert "softreg train --dataset synthetic" in second.stderr  # the holder's command
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    # The kernel dropped the lock with the process: the file stays, nobody holds it.
    assert (out / LOCK_FILE).exists()
    with RunDirectory(out, ("config.json",), overwrite=True) as directory:
        directory.lock()
        assert f"pid {os.getpid()} " in (out / LOCK_FILE).read_text()
    assert not (out / LOCK_FILE).exists()


def test_a_second_writer_in_one_process_is_refused_naming_the_first(tmp_path):
    first = RunDirectory(tmp_path / "a" / "b", ("x.txt",))
    first.open()
    assert (tmp_path / "a" / "b" / LOCK_FILE).is_file()
    second = RunDirectory(tmp_path / "a" / "b", ("x.txt",), overwrite=True)
    with pytest.raises(RunDirError, match=HOLDER + r".*since .*"):
        second.open()
    first.close()
    assert not (tmp_path / "a" / "b" / LOCK_FILE).exists()
    second.open()  # free again
    second.close()


def test_an_earlier_run_stays_when_the_directory_is_taken(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x.txt").write_text("an earlier run\n")
    holder = RunDirectory(tmp_path / "taken", ("x.txt",), overwrite=True)
    holder.lock()
    with pytest.raises(RunDirError, match="already holds a run"):
        RunDirectory(tmp_path / "taken", ("x.txt",)).open()
    with (
        pytest.raises(RunDirError, match="another softreg process"),
        RunDirectory(tmp_path / "taken", ("x.txt",), overwrite=True) as other,
    ):
        other.open()
    assert (tmp_path / "taken" / "x.txt").read_text() == "an earlier run\n"
    holder.close()


def test_a_failed_run_removes_the_directories_it_created(tmp_path):
    with pytest.raises(RuntimeError), RunDirectory(tmp_path / "p" / "q", ("x",)) as directory:
        directory.open()
        raise RuntimeError("training failed before anything was written")
    assert not (tmp_path / "p").exists()


def re_search(pattern: str, text: str) -> bool:
    import re

    return re.search(pattern, text) is not None


def test_sigterm_stops_a_run_like_ctrl_c(tmp_path):
    """One line, exit status 128 + 15, the lock released and no temporary file left."""
    out = tmp_path / "run"
    proc = start(*train_args(out, 0, epochs=100_000), "--checkpoint-every", "500", cwd=tmp_path)
    deadline = time.monotonic() + 60
    while not (out / "checkpoint.safetensors").exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert err == "softreg train: terminated\n"
    assert not (out / LOCK_FILE).exists()
    assert not list(out.glob(".*.tmp"))
