"""Checkpoint and resume: a run continued from any step, in this process or after a SIGKILL,
ends bit-identical to a run that never stopped."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from softreg import backend
from softreg.callbacks import Callback
from softreg.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from softreg.config import TrainConfig
from softreg.errors import ConfigError, ModelFileError, RunDirError
from softreg.history import History
from softreg.models import MLP, SoftmaxRegression
from softreg.run_files import CHECKPOINT_FILE
from softreg.run_options import RunOptions
from softreg.runs import resume_run, train_run
from softreg.train import fit

TIMING = {"seconds"}  # EpochRecord fields that measure time, not training


class Snapshots(Callback):
    """Every state fit offers: mid-epoch checkpoints and epoch ends, with the history then."""

    def __init__(self):
        self.taken = []

    def on_checkpoint(self, state, history):
        self.taken.append((state, History(list(history.records), list(history.steps))))


def records(history):
    return [
        {k: v for k, v in dataclasses.asdict(r).items() if k not in TIMING} for r in history.records
    ]


def host(params):
    return {k: backend.to_numpy(v) for k, v in params.items()}


def assert_same_params(a, b):
    a, b = host(a), host(b)
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].dtype == b[name].dtype
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


@pytest.mark.parametrize(
    ("model_kind", "lr_schedule"),
    [("softmax-regression", "constant"), ("softmax-regression", "cosine"), ("mlp", "constant")],
)
@pytest.mark.slow
def test_fit_continued_from_any_checkpoint_is_bit_identical(
    backend_name, backend_device, blobs, model_kind, lr_schedule
):
    if backend_name == "array-api-strict":
        pytest.skip("not a training backend")
    X, y, X_test, y_test = blobs
    config = TrainConfig(
        epochs=3,
        batch_size=64,
        lr=0.1,
        momentum=0.5,
        log_every=3,
        backend=backend_name,
        device=backend_device,
        model=model_kind,
        hidden=(8,),
        lr_schedule=lr_schedule,
    )
    model = (
        SoftmaxRegression(num_inputs=5, num_outputs=3)
        if model_kind != "mlp"
        else MLP(num_inputs=5, hidden=(8,), num_outputs=3)
    )
    snapshots = Snapshots()
    # 8 batches per epoch: checkpoints every 5 steps land mid-epoch and on an epoch's last step.
    full = fit(model, (X, y), (X_test, y_test), config, callbacks=[snapshots], checkpoint_every=5)
    plain = fit(model, (X, y), (X_test, y_test), config)
    assert_same_params(full.params, plain.params)  # checkpointing changes nothing
    assert [s.batch for s, _ in snapshots.taken][:4] == [5, 2, 7, 4]
    # Compiling backends compile once per fit: try the interesting positions, not all of them.
    for state, history in snapshots.taken[:4] + snapshots.taken[-1:]:
        continued = fit(model, (X, y), (X_test, y_test), config, state=state, history=history)
        assert_same_params(continued.params, full.params)
        assert_same_params(continued.state.opt_state["momentum"], full.state.opt_state["momentum"])
        assert records(continued.history) == records(full.history)
        assert continued.history.steps == full.history.steps
        assert continued.state.step == full.state.step


def test_checkpoint_file_round_trip(tmp_path, blobs):
    X, y, _, _ = blobs
    model = SoftmaxRegression(num_inputs=5, num_outputs=3)
    config = TrainConfig(epochs=2, batch_size=64, momentum=0.9, log_every=2)
    snapshots = Snapshots()
    full = fit(model, (X, y), None, config, callbacks=[snapshots], checkpoint_every=3)
    state, history = snapshots.taken[1]
    path = save_checkpoint(
        tmp_path / "c.safetensors",
        Checkpoint(
            model,
            state,
            history,
            config=config,
            class_names=("a", "b", "c"),
            data_order=np.arange(5),
            checkpoint_every=3,
        ),
    )
    loaded = load_checkpoint(path)
    assert loaded.model == model and loaded.config == config
    assert (loaded.state.epoch, loaded.state.step, loaded.state.batch) == (0, 6, 6)
    assert loaded.state.logged == state.logged and loaded.history == history
    np.testing.assert_array_equal(loaded.data_order, np.arange(5))
    assert loaded.checkpoint_every == 3
    continued = fit(model, (X, y), None, config, state=loaded.state, history=loaded.history)
    assert_same_params(continued.params, full.params)

    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 10])
    with pytest.raises(ModelFileError, match="not a readable"):
        load_checkpoint(path)
    tampered = bytearray(data)
    tampered[-1] ^= 1
    path.write_bytes(bytes(tampered))
    with pytest.raises(ModelFileError, match="checksum"):
        load_checkpoint(path)


def test_state_from_another_configuration_is_refused(blobs):
    X, y, _, _ = blobs
    model = SoftmaxRegression(num_inputs=5, num_outputs=3)
    snapshots = Snapshots()
    fit(
        model,
        (X, y),
        None,
        TrainConfig(epochs=1, batch_size=16),
        callbacks=[snapshots],
        checkpoint_every=20,
    )
    state, history = snapshots.taken[0]  # batch 20 of 32
    with pytest.raises(ConfigError, match="batch 20 of an epoch of 8 batches"):
        fit(model, (X, y), None, TrainConfig(epochs=1, batch_size=64), state=state)


# ---------------------------------------------------------------- the run directory and CLI


def comparable_metrics(run_dir: Path) -> dict:
    m = json.loads((run_dir / "metrics.json").read_text())
    for key in list(m):
        if key.startswith("seconds") or key in (
            "peak_rss_mb",
            "resumed_from_step",
            "checkpoint_every",
            "versions",
        ):
            del m[key]
    m["history"] = [{k: v for k, v in r.items() if k not in TIMING} for r in m["history"]]
    return m


def csv_without_timing(path: Path) -> list[list[str]]:
    rows = [line.split(",") for line in path.read_text().splitlines()]
    keep = [i for i, name in enumerate(rows[0]) if name not in TIMING]
    return [[row[i] for i in keep] for row in rows]


def model_tensors(run_dir: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(run_dir / "model.safetensors"))


def assert_same_run(a: Path, b: Path) -> None:
    ta, tb = model_tensors(a), model_tensors(b)
    assert ta.keys() == tb.keys()
    for name in ta:
        np.testing.assert_array_equal(ta[name], tb[name], err_msg=name)
    assert comparable_metrics(a) == comparable_metrics(b)
    for name in ("epochs.csv", "steps.csv"):
        assert (a / name).exists() == (b / name).exists(), name
        if (a / name).exists():
            assert csv_without_timing(a / name) == csv_without_timing(b / name)


@pytest.mark.slow
def test_resume_run_in_process(tmp_path, data_root):
    config = TrainConfig(epochs=2, batch_size=128, momentum=0.5, log_every=100)
    ref = train_run(
        config,
        tmp_path / "ref",
        options=RunOptions(data_dir=data_root, progress=False, plots=False),
    )

    class Stop(Callback):  # stands in for a crash in the middle of the second epoch
        def on_step_end(self, step, epoch):
            if step == 700:
                raise KeyboardInterrupt

    out = tmp_path / "stopped"
    with pytest.raises(KeyboardInterrupt):
        train_run(
            config,
            out,
            options=RunOptions(
                data_dir=data_root,
                progress=False,
                plots=False,
                callbacks=(Stop(),),
                checkpoint_every=64,
            ),
        )
    assert load_checkpoint(out / CHECKPOINT_FILE).state.step == 640
    assert not (out / "metrics.json").exists()
    result = resume_run(out, options=RunOptions(data_dir=data_root, progress=False, plots=False))
    assert result.metrics["resumed_from_step"] == 640
    assert result.metrics["checkpoint_every"] == 64  # the run's own, from its checkpoint
    assert_same_run(ref.run_dir, out)
    assert (
        resume_run(out, options=RunOptions(data_dir=data_root)) is None
    )  # finished: nothing to do


def test_resume_refuses_what_it_cannot_continue(tmp_path, data_root, monkeypatch):
    with pytest.raises(RunDirError, match="no run to resume"):
        resume_run(tmp_path / "nothing", options=RunOptions(data_dir=data_root))
    config = TrainConfig(epochs=1, batch_size=1000)
    out = tmp_path / "run"
    train_run(
        config,
        out,
        options=RunOptions(data_dir=data_root, progress=False, plots=False, checkpoint_every=5),
    )
    (out / "metrics.json").unlink()
    (out / "config.json").write_text(json.dumps({**config.to_dict(), "lr": 0.5}))
    with pytest.raises(RunDirError, match="another configuration"):
        resume_run(out, options=RunOptions(data_dir=data_root, plots=False))
    (out / "config.json").write_text(json.dumps(config.to_dict()))
    # A checkpoint mid-epoch whose stored data order is not what this NumPy computes.
    import softreg.run_files

    monkeypatch.setattr(
        softreg.run_files, "epoch_permutation", lambda n, *, seed, epoch: np.arange(n)[::-1]
    )
    saved = load_checkpoint(out / CHECKPOINT_FILE)
    state = dataclasses.replace(
        saved.state,
        epoch=0,
        batch=3,
        step=3,
        epoch_sums={"loss": np.float32(1), "correct": np.int32(1)},
    )
    save_checkpoint(
        out / CHECKPOINT_FILE,
        Checkpoint(
            saved.model,
            state,
            History(),
            config=saved.config,
            class_names=saved.class_names,
            data_order=np.arange(60000),
        ),
    )
    with pytest.raises(RunDirError, match="data order differs"):
        resume_run(out, options=RunOptions(data_dir=data_root, plots=False))


def test_resume_without_a_checkpoint_starts_again(tmp_path, data_root):
    config = TrainConfig(epochs=1, batch_size=1000)
    ref = train_run(
        config,
        tmp_path / "ref",
        options=RunOptions(data_dir=data_root, progress=False, plots=False),
    )
    out = tmp_path / "early"
    out.mkdir()
    (out / "config.json").write_text(json.dumps(config.to_dict()))
    (out / ".epochs.csv.abc123.tmp").write_text("half")  # what a killed writer leaves
    resume_run(out, options=RunOptions(data_dir=data_root, progress=False, plots=False))
    assert_same_run(ref.run_dir, out)
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*.tmp"))


def softreg_process(*args: str, data_root: Path) -> subprocess.Popen:
    env = {**os.environ, "SOFTREG_DATA": str(data_root)}
    return subprocess.Popen(
        [sys.executable, "-m", "softreg", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen) -> None:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{out}\n{err}"


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_is_bit_identical(tmp_path, data_root):
    """Kill -9 at random moments, resume each time, compare with a run that was never
    interrupted. The seed of the moments is in the failure message."""
    seed = int(os.environ.get("SOFTREG_KILL_SEED", random.randrange(10**6)))
    rng = random.Random(seed)
    recipe = [
        "--epochs",
        "2",
        "--batch-size",
        "64",
        "--momentum",
        "0.5",
        "--log-every",
        "100",
        "--no-plots",
        "--quiet",
    ]
    started = time.perf_counter()
    finish(softreg_process("train", *recipe, "--out", str(tmp_path / "ref"), data_root=data_root))
    lifetime = time.perf_counter() - started  # a whole run, start-up and writing included

    out = tmp_path / "killed"
    proc = softreg_process(
        "train", *recipe, "--out", str(out), "--checkpoint-every", "10", data_root=data_root
    )
    while not (out / CHECKPOINT_FILE).exists():  # from here on, --resume has a run to continue
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.01)
    moments, reached = [], []
    for _ in range(4):  # kill, resume; the first kill lands in training, later ones anywhere
        moments.append(rng.uniform(0, lifetime if moments else 1.0))
        time.sleep(moments[-1])
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        reached.append(load_checkpoint(out / CHECKPOINT_FILE).state.step)
        proc = softreg_process(
            "train", "--resume", str(out), "--quiet", "--no-plots", data_root=data_root
        )
    finish(proc)
    context = (
        f"kill seed {seed}: killed after {[round(m, 2) for m in moments]} s, "
        f"at checkpointed steps {reached}"
    )
    print(context)  # shown with pytest -s
    try:
        assert_same_run(tmp_path / "ref", out)
    except AssertionError as exc:
        raise AssertionError(f"{context}: {exc}") from None
    assert not list(out.glob(".*.tmp")), context
    assert json.loads((out / "metrics.json").read_text())["status"] == "finished"
