"""Segments: fit comes back to Python only where something is due, reads nothing from the
device in between, and trains uint8 images as bytes with the numbers of their features."""

from __future__ import annotations

import numpy as np
import pytest

import softreg.prepare
import softreg.segment
import softreg.train
from softreg import backend
from softreg.build import make_model
from softreg.callbacks import Callback
from softreg.config import TrainConfig
from softreg.data.labelled import to_features
from softreg.models import SoftmaxRegression
from softreg.train import fit


def host(tree):
    return {k: backend.to_numpy(v) for k, v in tree.items()}


def images(n=240, side=6, classes=4, seed=0):
    """uint8 "images" whose mean brightness in a few pixels tells the class."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, size=n)
    X = rng.integers(0, 120, size=(n, side, side))
    X[:, 0, :classes] += 100 * (np.arange(classes) == y[:, None])
    return X.astype(np.uint8), y


@pytest.mark.parametrize("normalize", ["no", "yes", "per-feature"])
def test_uint8_images_train_bit_identically_to_their_float_features(
    backend_name, backend_device, normalize
):
    """Bytes on the device, converted batch by batch in the step, give exactly the numbers
    of the float32 features converted up front (as data.X_train holds them)."""
    X, y = images()
    Xt, yt = images(n=60, seed=1)
    config = TrainConfig(
        epochs=2,
        batch_size=32,
        normalize=normalize,
        backend=backend_name,
        device=backend_device,
    )
    runs = []
    for train_X, test_X in ((X, Xt), (to_features(X), to_features(Xt))):
        model = make_model(config, train_X, 4)
        runs.append((model, fit(model, (train_X, y), (test_X, yt), config)))
    (bytes_model, from_bytes), (float_model, from_floats) = runs
    assert bytes_model == float_model
    for name, value in host(from_floats.params).items():
        np.testing.assert_array_equal(host(from_bytes.params)[name], value)
    assert from_bytes.history.records == [
        r.__class__(**{**r.__dict__, "seconds": b.seconds})
        for r, b in zip(from_floats.history.records, from_bytes.history.records, strict=True)
    ]


def test_segments_end_where_something_is_due(monkeypatch, blobs):
    """Runs of steps end at every report, checkpoint, progress update and epoch end, and
    nowhere else."""
    X, y, _, _ = blobs  # 500 examples: 10 steps of 50 an epoch
    calls = []
    real = softreg.train.run_segment
    monkeypatch.setattr(
        softreg.train,
        "run_segment",
        lambda loop, carry, plan, first, last: (
            calls.append((first, last)) or real(loop, carry, plan, first, last)
        ),
    )

    class Progress(Callback):
        progress_every = 7

    fit(
        SoftmaxRegression(num_inputs=5, num_outputs=3),
        (X, y),
        config=TrainConfig(epochs=2, batch_size=50, log_every=4),
        callbacks=[Progress()],
        checkpoint_every=6,
    )
    # epoch 1: reports after batches 4, 8; checkpoint at step 6; progress at step 7; end 10
    # epoch 2 (steps 11-20): reports after batches 4, 8 (steps 14, 18); checkpoints at steps
    # 12, 18; progress at step 14; end 20
    assert calls == [(1, 4), (5, 6), (6 + 1, 7), (8, 8), (9, 10)] + [
        (1, 2),
        (3, 4),
        (5, 8),
        (9, 10),
    ]


def test_a_step_hook_gets_every_step_and_progress_gets_runs_of_steps(blobs):
    X, y, _, _ = blobs

    class Hooks(Callback):
        def __init__(self):
            self.steps, self.progress = [], []

        def on_train_begin(self, config, steps_per_epoch, state):
            self.progress_every = 3

        def on_step_end(self, step, epoch):
            self.steps.append(step)

        def on_progress(self, step, epoch):
            self.progress.append(step)

    hooks = Hooks()
    fit(
        SoftmaxRegression(num_inputs=5, num_outputs=3),
        (X, y),
        config=TrainConfig(epochs=2, batch_size=50),
        callbacks=[hooks],
    )
    assert hooks.steps == list(range(1, 21))
    assert hooks.progress == list(range(1, 21))  # segments of one step: progress each time

    steps = []
    on_instance = Callback()
    on_instance.on_step_end = lambda step, epoch: steps.append(step)  # not on the class
    fit(
        SoftmaxRegression(num_inputs=5, num_outputs=3),
        (X, y),
        config=TrainConfig(epochs=2, batch_size=50),
        callbacks=[on_instance],
    )
    assert steps == list(range(1, 21))

    class Progress(Callback):
        def __init__(self):
            self.progress = []

        def on_train_begin(self, config, steps_per_epoch, state):
            self.progress_every = 3

        def on_progress(self, step, epoch):
            self.progress.append(step)

    progress = Progress()
    fit(
        SoftmaxRegression(num_inputs=5, num_outputs=3),
        (X, y),
        config=TrainConfig(epochs=2, batch_size=50),
        callbacks=[progress],
    )
    assert progress.progress == [3, 6, 9, 10, 12, 15, 18, 20]


@pytest.mark.parametrize("name", ["jax", "tensorflow"])
def test_compiled_backends_run_a_segment_without_python_per_step(name, blobs, monkeypatch):
    """The steps of a segment are one compiled loop: Python's train_step runs only while
    the loop is traced, however many steps there are."""
    pytest.importorskip(name)
    X, y, _, _ = blobs
    calls = []
    real = softreg.segment.train_step
    monkeypatch.setattr(softreg.segment, "train_step", lambda *a: calls.append(1) or real(*a))
    result = fit(
        SoftmaxRegression(num_inputs=5, num_outputs=3),
        (X, y),
        config=TrainConfig(epochs=3, batch_size=10, backend=name),  # 150 steps
    )
    assert result.state.step == 150
    assert 1 <= len(calls) <= 4  # traced once (TensorFlow may trace a loop body twice)


def test_torch_reads_nothing_from_the_device_per_step(blobs, monkeypatch):
    """PyTorch's steps on a GPU run eagerly, but divergence is recorded on the device: the
    host reads a few numbers per segment and epoch, the same with 10 steps an epoch as with
    50. (On the CPU, where a read costs nothing, the step reads its loss: the GPU's way is
    forced here.)"""
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(softreg.prepare, "reads_loss_on_host", lambda be: False)
    X, y, Xt, yt = blobs
    reads = []
    for method in ("__float__", "__int__", "__bool__", "item", "tolist", "numpy"):
        real = getattr(torch.Tensor, method)
        monkeypatch.setattr(
            torch.Tensor,
            method,
            lambda self, *a, _real=real, **k: reads.append(1) or _real(self, *a, **k),
        )
    counts = []
    for batch_size in (50, 10):
        reads.clear()
        fit(
            SoftmaxRegression(num_inputs=5, num_outputs=3),
            (X, y),
            (Xt, yt),
            TrainConfig(epochs=3, batch_size=batch_size, backend="torch"),
        )
        counts.append(len(reads))
    assert counts[0] == counts[1]
    assert counts[1] < 150 / 5  # far fewer than the steps


def test_divergence_mid_segment_keeps_the_state_before_that_step(backend_name, backend_device):
    """A loss that stops being finite in the middle of a compiled run of steps: training
    stops there, with the state of the step before, as a one-step loop would."""
    from softreg.errors import DivergenceError

    rng = np.random.default_rng(0)
    X = rng.normal(0, 1, size=(400, 6)).astype(np.float32)
    X[:, 0] *= 3  # the naive softmax overflows after a few updates at lr=10
    y = rng.integers(0, 3, size=400)
    model = SoftmaxRegression(num_inputs=6, num_outputs=3)
    states = {}

    class Every(Callback):
        def on_step_end(self, step, epoch):
            pass

        def on_checkpoint(self, state, history):
            states[state.step] = host(state.params)

    base = {"epochs": 2, "batch_size": 20, "lr": 10.0, "softmax": "naive", "normalize": "no"}
    errors = []
    for callbacks, every in (([Every()], 1), ([], 0)):  # one-step segments, then whole epochs
        config = TrainConfig(**base, backend=backend_name, device=backend_device)
        with pytest.raises(DivergenceError) as info:
            fit(model, (X, y), config=config, callbacks=callbacks, checkpoint_every=every)
        errors.append(info.value)
    one_step, segmented = errors
    assert segmented.step == one_step.step > 1
    for name, value in host(segmented.state.params).items():
        np.testing.assert_array_equal(value, host(one_step.state.params)[name])
        np.testing.assert_array_equal(value, states[one_step.step - 1][name])
    assert str(segmented) == str(one_step)


def test_torch_freezing_on_the_device_stops_where_reading_the_loss_does(monkeypatch):
    """PyTorch's GPU way (freeze on the device, one read a segment), forced on the CPU, stops
    at the same step with the same state as its CPU way (read the loss every step)."""
    pytest.importorskip("torch")
    from softreg.errors import DivergenceError

    rng = np.random.default_rng(0)
    X = rng.normal(0, 1, size=(400, 6)).astype(np.float32)
    X[:, 0] *= 3
    y = rng.integers(0, 3, size=400)
    model = SoftmaxRegression(num_inputs=6, num_outputs=3)
    config = TrainConfig(epochs=2, batch_size=20, lr=10.0, softmax="naive", normalize="no")
    config = TrainConfig(**{**config.to_dict(), "backend": "torch"})
    errors = []
    for reads in (True, False):
        monkeypatch.setattr(softreg.prepare, "reads_loss_on_host", lambda be, r=reads: r)
        with pytest.raises(DivergenceError) as info:
            fit(model, (X, y), config=config)
        errors.append(info.value)
    read, frozen = errors
    assert frozen.step == read.step > 1 and str(frozen) == str(read)
    for name, value in host(frozen.state.params).items():
        np.testing.assert_array_equal(value, host(read.state.params)[name])
