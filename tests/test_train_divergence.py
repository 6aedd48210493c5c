"""Divergence: a non-finite loss stops training at that very step, says what to change, and
keeps the model from before the step."""

from __future__ import annotations

import json

import numpy as np
import pytest

from softreg import backend
from softreg.callbacks import Callback
from softreg.checkpoint import load_model
from softreg.cli import main
from softreg.config import TrainConfig
from softreg.data.batching import epoch_permutation
from softreg.errors import DivergenceError
from softreg.models import SoftmaxRegression
from softreg.train import fit

N = 6000  # enough of Fashion-MNIST to diverge many times over


class EveryStep(Callback):
    def __init__(self):
        self.params = {}

    def on_checkpoint(self, state, history):
        self.params[state.step] = {k: backend.to_numpy(v) for k, v in state.params.items()}


def book_loop_until_nan(X, y, lr, batch_size=256, sigma=0.01, seed=0):
    """The book's from-scratch loop (naive softmax, -log p_y, minibatch SGD) in plain NumPy,
    written independently of softreg: the first step whose loss is not finite, and the
    weights before it."""
    W = np.random.default_rng(seed).normal(0, sigma, size=(784, 10)).astype(np.float32)
    b = np.zeros(10, dtype=np.float32)
    order = epoch_permutation(len(y), seed=seed, epoch=0)
    with np.errstate(all="ignore"):
        for step, start in enumerate(range(0, len(y), batch_size), start=1):
            idx = order[start : start + batch_size]
            Xb, yb = X[idx], y[idx]
            e = np.exp(Xb @ W + b)
            p = e / e.sum(axis=1, keepdims=True)
            if not np.isfinite(-np.log(p[np.arange(len(yb)), yb]).sum()):
                return step, W, b
            g = p.copy()
            g[np.arange(len(yb)), yb] -= 1
            g /= len(yb)
            W -= lr * (Xb.T @ g)
            b -= lr * g.sum(axis=0)
    raise AssertionError("the book's loop did not diverge")


@pytest.fixture(scope="module")
def subset(fashion):
    return fashion.X_train[:N], fashion.y_train[:N]


def test_naive_softmax_at_lr_100_stops_at_the_first_nan_step(subset):
    X, y = subset
    first, W, b = book_loop_until_nan(X, y, lr=100.0)
    every = EveryStep()
    config = TrainConfig(epochs=3, lr=100.0, softmax="naive")
    with pytest.raises(DivergenceError, match=rf"diverged at step {first} .*try lr=10 or less"):
        fit(SoftmaxRegression(), (X, y), None, config, callbacks=[every], checkpoint_every=1)
    assert max(every.params) == first - 1  # no step after the bad one was offered
    try:
        fit(SoftmaxRegression(), (X, y), None, config)
    except DivergenceError as exc:
        kept = exc.state
    assert (kept.step, kept.epoch, kept.batch) == (first - 1, 0, first - 1)
    np.testing.assert_array_equal(kept.params["W"], every.params[first - 1]["W"])
    np.testing.assert_allclose(kept.params["W"], W, rtol=1e-5, atol=1e-6)  # the book's loop
    np.testing.assert_allclose(kept.params["b"], b, rtol=1e-5, atol=1e-6)
    assert all(np.isfinite(p).all() for p in kept.params.values())
    # The stable softmax takes the same learning rate without a non-finite loss.
    fit(SoftmaxRegression(), (X, y), None, TrainConfig(epochs=1, lr=100.0))


def test_every_backend_detects_it_at_the_same_step(backend_name, backend_device, subset):
    if backend_name == "array-api-strict":
        pytest.skip("not a training backend")
    X, y = subset
    first, _, _ = book_loop_until_nan(X, y, lr=100.0)
    with pytest.raises(DivergenceError) as caught:
        fit(
            SoftmaxRegression(),
            (X, y),
            None,
            TrainConfig(
                epochs=1, lr=100.0, softmax="naive", backend=backend_name, device=backend_device
            ),
        )
    assert caught.value.step == first
    assert all(np.isfinite(backend.to_numpy(p)).all() for p in caught.value.state.params.values())


def test_stable_loss_overflowing_weights_are_caught_too(subset):
    X, y = subset
    with pytest.raises(DivergenceError, match="the loss became (nan|inf)") as caught:
        fit(SoftmaxRegression(), (X, y), None, TrainConfig(epochs=1, lr=1e36, momentum=0.9))
    kept = caught.value.state
    assert all(np.isfinite(p).all() for p in kept.params.values())
    assert all(np.isfinite(m).all() for m in kept.opt_state["momentum"].values())


def test_the_kept_state_trains_on_as_the_message_suggests(subset, fashion):
    X, y = subset
    with pytest.raises(DivergenceError) as caught:
        fit(SoftmaxRegression(), (X, y), None, TrainConfig(epochs=1, lr=100.0, softmax="naive"))
    kept = caught.value.state
    assert kept.batch > 0 and kept.epoch_sums is not None  # it stopped mid-epoch
    result = fit(
        SoftmaxRegression(),
        (X, y),
        (fashion.X_test, fashion.y_test),
        TrainConfig(epochs=2, lr=0.1, softmax="stable"),
        state=kept,
        history=caught.value.history,
    )
    assert np.isfinite(result.history.final.train_loss)


def test_cli_reports_one_line_and_keeps_the_last_good_model(tmp_path, data_root, capsys):
    out = tmp_path / "run"
    code = main(
        [
            "train",
            "--data-dir",
            str(data_root),
            "--lr",
            "100",
            "--softmax",
            "naive",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("softreg train: error: training diverged at step ")
    assert "try lr=10 or less" in err and "softmax=stable" in err
    assert str(out / "model.safetensors") in err
    loaded = load_model(out / "model.safetensors")
    assert all(np.isfinite(p).all() for p in loaded.params.values())
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "diverged" and metrics["diverged_at_step"] > 1
    assert not list(out.glob(".*.tmp"))
    # The kept model is a working classifier (its scores, not its naive loss, are fine).
    assert (
        main(
            ["evaluate", str(out / "model.safetensors"), "--data-dir", str(data_root), "--no-plots"]
        )
        == 0
    )


def test_weights_that_overflow_in_the_last_steps_stop_the_run(tmp_path):
    """No later loss says so: the epoch's end does (the test loss, or the weights, are no
    longer finite). No good state is known, so no model is kept, and metrics.json stays
    valid JSON."""
    from softreg.fileio import parse_json
    from softreg.run_options import RunOptions
    from softreg.runs import train_run

    config = TrainConfig(dataset="synthetic", epochs=1, batch_size=1000, lr=1e38)
    with pytest.raises(
        DivergenceError,
        match="the model's scores on the test data overflow "
        r"\(test loss inf\)",
    ) as caught:
        train_run(config, tmp_path / "run", options=RunOptions(progress=False, plots=False))
    assert caught.value.state is None
    metrics = parse_json((tmp_path / "run" / "metrics.json").read_bytes(), "metrics.json")
    assert metrics["status"] == "diverged" and metrics["model_file"] is None
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_a_kept_state_whose_weights_overflowed_earlier_is_not_saved(tmp_path):
    """lr=1e308 makes the first update infinite while its loss was finite: the step that
    stops training keeps weights that no model file may hold."""
    from softreg.run_options import RunOptions
    from softreg.runs import train_run

    config = TrainConfig(dataset="synthetic", epochs=2, batch_size=100, lr=1e308)
    with pytest.raises(
        DivergenceError,
        match="no model was kept: the weights from before that step had already overflowed",
    ):
        train_run(config, tmp_path / "run", options=RunOptions(progress=False, plots=False))
    assert not (tmp_path / "run" / "model.safetensors").exists()
