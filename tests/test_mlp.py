"""The lecture's model and optimiser: an MLP with hand-written backprop, SGD with momentum and
weight decay, input standardisation, the running loss every N batches, and full-batch
gradient descent on the seed's synthetic data."""

import json

import numpy as np
import pytest

from softreg import backend
from softreg.build import make_model
from softreg.config import TrainConfig
from softreg.errors import ConfigError
from softreg.evaluation import evaluate
from softreg.models import MLP
from softreg.optim import SGD
from softreg.standardise import input_stats
from softreg.train import fit


def float64_params(model, seed=0):
    return {k: v.astype(np.float64) for k, v in model.init(np.random.default_rng(seed)).items()}


def test_init_is_pytorchs_linear_default():
    model = MLP(num_inputs=784, hidden=(512, 256), num_outputs=10)
    params = model.init(np.random.default_rng(0))
    assert list(params) == ["W1", "b1", "W2", "b2", "W3", "b3"]
    assert {k: v.shape for k, v in params.items()} == model.param_shapes()
    for i, fan_in in ((1, 784), (2, 512), (3, 256)):
        bound = 1 / np.sqrt(fan_in)
        for name in (f"W{i}", f"b{i}"):
            p = params[name]
            assert p.dtype == np.float32 and np.abs(p).max() <= bound
        # U(-bound, bound) has standard deviation bound / sqrt(3).
        assert params[f"W{i}"].std() == pytest.approx(bound / np.sqrt(3), rel=0.02)


def test_backward_matches_finite_differences():
    model = MLP(num_inputs=6, hidden=(5, 4), num_outputs=3, input_mean=0.2, input_scale=1.5)
    params = float64_params(model)
    rng = np.random.default_rng(1)
    X = rng.normal(size=(7, 2, 3))  # images: flattened by the model
    y = rng.integers(0, 3, size=7)
    _, grads, _ = model.loss_and_grad(params, X, y)

    def mean_loss(p):
        losses, _, _ = model.loss_and_grad(p, X, y)
        return float(losses.mean())

    eps = 1e-6
    for name, value in params.items():
        numeric = np.zeros_like(value)
        for i in np.ndindex(*value.shape):
            plus, minus = {**params, name: value.copy()}, {**params, name: value.copy()}
            plus[name][i] += eps
            minus[name][i] -= eps
            numeric[i] = (mean_loss(plus) - mean_loss(minus)) / (2 * eps)
        np.testing.assert_allclose(grads[name], numeric, rtol=1e-5, atol=1e-8, err_msg=name)


def test_lecture_network_gradients_equal_torch_autograd():
    torch = pytest.importorskip("torch")
    model = MLP(input_mean=0.1307, input_scale=0.3081)  # 784-512-256-128-64-10
    params = model.init(np.random.default_rng(0))
    rng = np.random.default_rng(2)
    X = rng.random((64, 784), dtype=np.float32)
    y = rng.integers(0, 10, size=64)
    losses, grads, logits = model.loss_and_grad(params, X, y)

    leaves = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    h = (torch.from_numpy(X) - 0.1307) / 0.3081
    for i in range(1, 6):
        h = h @ leaves[f"W{i}"] + leaves[f"b{i}"]
        if i < 5:
            h = torch.relu(h)
    loss = torch.nn.CrossEntropyLoss()(h, torch.from_numpy(y))
    loss.backward()
    np.testing.assert_allclose(logits, h.detach().numpy(), rtol=1e-5, atol=1e-6)
    assert losses.mean() == pytest.approx(loss.item(), rel=1e-6)
    for name, leaf in leaves.items():
        np.testing.assert_allclose(
            grads[name], leaf.grad.numpy(), rtol=1e-4, atol=1e-7, err_msg=name
        )


def test_mlp_step_is_the_same_on_every_backend(xp):
    model = MLP(num_inputs=12, hidden=(8, 6), num_outputs=4, input_mean=0.5, input_scale=2.0)
    rng = np.random.default_rng(3)
    X = rng.random((10, 12), dtype=np.float32)
    y = rng.integers(0, 4, size=10)
    reference = model.loss_and_grad(model.init(np.random.default_rng(0)), X, y)
    params = model.init(np.random.default_rng(0), xp=xp)
    got = model.loss_and_grad(params, backend.asarray(X, xp), backend.asarray(y, xp))
    np.testing.assert_allclose(backend.to_numpy(got[0]), reference[0], rtol=2e-5, atol=1e-6)
    for name in params:
        np.testing.assert_allclose(
            backend.to_numpy(got[1][name]), reference[1][name], rtol=2e-5, atol=1e-6, err_msg=name
        )


@pytest.mark.parametrize(
    ("momentum", "weight_decay", "nesterov"),
    [(0.5, 0.0, False), (0.9, 1e-2, False), (0.9, 1e-3, True), (0.0, 0.1, False)],
)
def test_sgd_follows_torch_optim_sgd(momentum, weight_decay, nesterov):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    params = {"W": rng.normal(size=(3, 2)), "b": rng.normal(size=2)}
    grads_per_step = [{k: rng.normal(size=v.shape) for k, v in params.items()} for _ in range(4)]
    opt = SGD(0.1, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)
    state = opt.init(params)
    ours = params
    leaves = [torch.tensor(params[k]) for k in ("W", "b")]
    reference = torch.optim.SGD(
        leaves, lr=0.1, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov
    )
    for grads in grads_per_step:
        ours, state = opt.update(ours, grads, state)
        for leaf, name in zip(leaves, ("W", "b"), strict=True):
            leaf.grad = torch.tensor(grads[name])
        reference.step()
    for leaf, name in zip(leaves, ("W", "b"), strict=True):
        np.testing.assert_allclose(ours[name], leaf.numpy(), rtol=1e-12, err_msg=name)


@pytest.mark.parametrize("nesterov", [False, True])
def test_donated_update_is_the_same_update_in_place(nesterov):
    rng = np.random.default_rng(5)
    params = {"W": rng.normal(size=(4, 3)).astype(np.float32), "b": np.ones(3, np.float32)}
    grads = {k: rng.normal(size=v.shape).astype(np.float32) for k, v in params.items()}
    opt = SGD(0.1, momentum=0.9, weight_decay=0.01, nesterov=nesterov)
    state = opt.init(params)
    expected = (params, state)
    for _ in range(3):
        expected = opt.update(*expected[:1], grads, expected[1])
    owned = {k: v.copy() for k, v in params.items()}
    got = (owned, opt.init(owned))
    for _ in range(3):
        got = opt.update(got[0], grads, got[1], donate=True)
    for name in params:
        np.testing.assert_array_equal(got[0][name], expected[0][name])
        np.testing.assert_array_equal(got[1]["momentum"][name], expected[1]["momentum"][name])
    assert got[0]["W"] is owned["W"]  # updated in place: no new arrays


def test_fit_never_changes_the_arrays_it_was_given_or_handed_out(blobs):
    """fit updates its own copies in place; states passed in or handed out stay as they are."""
    from softreg.callbacks import Callback

    X, y, _, _ = blobs
    config = TrainConfig(model="mlp", hidden=(6,), epochs=3, batch_size=50, lr=0.1, momentum=0.9)
    model = make_model(config, X, 3)
    first = fit(model, (X, y), None, TrainConfig(**{**config.to_dict(), "epochs": 1}))
    given = {k: v.copy() for k, v in first.params.items()}
    seen = []

    class Keep(Callback):
        def on_epoch_end(self, record, history, state):
            seen.append((state, {k: v.copy() for k, v in state.params.items()}))

    fit(model, (X, y), None, config, state=first.state, callbacks=[Keep()])
    for name in given:
        np.testing.assert_array_equal(first.params[name], given[name])
    for state, copied in seen:  # every snapshot still holds its own epoch's weights
        for name in copied:
            np.testing.assert_array_equal(state.params[name], copied[name])
    assert not np.array_equal(seen[0][0].params["W1"], seen[1][0].params["W1"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"momentum": -0.1}, "momentum must be a finite number >= 0"),
        ({"momentum": 1.0}, "momentum must be below 1"),
        ({"weight_decay": float("nan")}, "weight_decay must be a finite number >= 0"),
        ({"nesterov": True}, "nesterov momentum needs momentum > 0"),
    ],
)
def test_sgd_refuses_nonsense(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        SGD(0.1, **kwargs)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("model", "cnn", "model must be one of softmax-regression, mlp"),
        ("hidden", (512, 0), "hidden layer size must be an integer >= 1"),
        ("optimizer", "adam", "optimizer must be one of sgd, gd"),
        ("normalize", "maybe", "normalize must be one of auto, yes, no"),
        ("log_every", -1, "log_every must be an integer >= 0"),
        ("momentum", 2.0, "momentum must be below 1"),
    ],
)
def test_train_config_refuses_nonsense(field, value, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**{field: value})


def test_input_stats_are_the_lectures_on_mnist(data_root):
    from softreg.data import load_dataset

    mnist = load_dataset("mnist", data_dir=data_root, download=False, progress=False)
    mean, std = input_stats(mnist.X_train)
    assert (round(mean, 4), round(std, 4)) == (0.1307, 0.3081)  # transforms.Normalize's
    X64 = mnist.X_train[:5000].astype(np.float64)
    assert input_stats(mnist.X_train[:5000], chunk_rows=777) == pytest.approx(
        (X64.mean(), X64.std()), rel=1e-10
    )


def test_make_model_standardises_the_mlp_only_by_default(blobs):
    X, _, _, _ = blobs
    mlp = make_model(TrainConfig(model="mlp", hidden=(7,)), X, 3)
    assert isinstance(mlp, MLP) and mlp.hidden == (7,) and mlp.num_inputs == 5
    mean, std = input_stats(X)
    assert mlp.input_scaling == "scalar" and mlp.input_mean.shape == ()
    assert (float(mlp.input_mean), float(mlp.input_scale)) == (np.float32(mean), np.float32(std))
    plain = make_model(TrainConfig(), X, 3)
    assert plain.input_scaling == "none"
    assert (float(plain.input_mean), float(plain.input_scale)) == (0.0, 1.0)
    forced = make_model(TrainConfig(normalize="yes"), X, 3)
    assert float(forced.input_scale) == pytest.approx(float(X.std()), rel=1e-5)
    assert make_model(TrainConfig(model="mlp", normalize="no"), X, 3).input_scaling == "none"
    per_feature = make_model(TrainConfig(normalize="per-feature"), X, 3)
    assert per_feature.input_scaling == "per-feature" and per_feature.input_scale.shape == (5,)


def test_running_loss_windows_tile_the_epoch(blobs):
    X, y, _, _ = blobs
    X, y = X[:480], y[:480]  # 15 batches of 32: three reports of 5 batches each
    config = TrainConfig(
        model="mlp", hidden=(6,), epochs=2, batch_size=32, lr=0.05, momentum=0.5, log_every=5
    )
    result = fit(make_model(config, X, 3), (X, y), None, config)
    steps = result.history.steps
    assert [(s.epoch, s.batch, s.step) for s in steps] == [
        (1, 5, 5),
        (1, 10, 10),
        (1, 15, 15),
        (2, 5, 20),
        (2, 10, 25),
        (2, 15, 30),
    ]
    for epoch in (1, 2):
        windows = [s.running_loss for s in steps if s.epoch == epoch]
        epoch_loss = result.history.records[epoch - 1].train_loss
        assert np.mean(windows) == pytest.approx(epoch_loss, rel=1e-5)
    assert steps[-1].running_loss < steps[0].running_loss
    assert (
        fit(
            make_model(config, X, 3),
            (X, y),
            None,
            TrainConfig(**{**config.to_dict(), "log_every": 0}),
        ).history.steps
        == []
    )


def test_full_batch_gradient_descent_on_the_seeds_synthetic_data():
    from softreg.data import load_dataset

    data = load_dataset("synthetic")
    assert data.X_train.shape == (800, 2) and data.X_test.shape == (200, 2)
    assert load_dataset("synthetic").X_train.tobytes() == data.X_train.tobytes()  # fixed data
    config = TrainConfig(dataset="synthetic", optimizer="gd", epochs=300, lr=0.5)
    model = make_model(config, data.X_train, data.num_classes)
    result = fit(model, (data.X_train, data.y_train), (data.X_test, data.y_test), config)
    assert result.state.step == 300  # one step per iteration: the whole training set
    assert result.history.final.test_acc > 0.8  # chance is 1/3
    # Full batches in a fixed order: no shuffling, so any seed gives the same result.
    other = fit(
        model,
        (data.X_train, data.y_train),
        None,
        TrainConfig(**{**config.to_dict(), "seed": 0, "epochs": 3}),
    )
    again = fit(
        model,
        (data.X_train, data.y_train),
        None,
        TrainConfig(**{**config.to_dict(), "seed": 0, "epochs": 3}),
    )
    np.testing.assert_array_equal(other.params["W"], again.params["W"])
    # Plain NumPy full-batch descent with the one-hot built correctly, as a reference.
    W = np.random.default_rng(0).normal(0, 0.01, size=(2, 3)).astype(np.float32)
    b = np.zeros(3, np.float32)
    onehot = (data.y_train[:, None] == np.arange(3)[None, :]).astype(np.float32)
    for _ in range(3):
        z = data.X_train @ W + b
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        d = (p - onehot) / len(p)
        W, b = W - 0.5 * data.X_train.T @ d, b - 0.5 * d.sum(axis=0)
    np.testing.assert_allclose(other.params["W"], W, rtol=1e-5, atol=1e-7)


@pytest.mark.slow
def test_lecture_mlp_recipe_on_mnist(data_root):
    """The lecture's program: 784-512-256-128-64-10, batch 64, SGD lr 0.01 momentum 0.5,
    inputs standardised, 10 epochs: at least 97.5 % test accuracy (the lecture: 97.6)."""
    from softreg.data import load_dataset

    mnist = load_dataset("mnist", data_dir=data_root, download=False, progress=False)
    config = TrainConfig(
        dataset="mnist", model="mlp", batch_size=64, lr=0.01, momentum=0.5, epochs=10
    )
    model = make_model(config, mnist.X_train, mnist.num_classes)
    result = fit(model, (mnist.X_train, mnist.y_train), (mnist.X_test, mnist.y_test), config)
    assert result.history.final.test_acc >= 0.975
    assert len(result.history.steps) == 10 * 3  # batches 300, 600, 900 of 938 per epoch
    final = evaluate(model, result.params, mnist.X_test, mnist.y_test)
    assert final.accuracy == result.history.final.test_acc


@pytest.mark.slow
def test_cli_trains_an_mlp_and_reports_the_running_loss(tmp_path, data_root):
    from _helpers import run_cli

    out = tmp_path / "mlp"
    proc = run_cli(
        "train",
        "--model",
        "mlp",
        "--dataset",
        "mnist",
        "--hidden",
        "32,16",
        "--batch-size",
        "64",
        "--lr",
        "0.05",
        "--momentum",
        "0.5",
        "--epochs",
        "1",
        "--log-every",
        "300",
        "--no-plots",
        "--out",
        str(out),
        data_root=data_root,
    )
    assert "[epoch=1, batch=300] loss: " in proc.stdout
    assert "[epoch=1, batch=900] loss: " in proc.stdout
    assert "book's bars" not in proc.stdout
    rows = (out / "steps.csv").read_text().splitlines()
    assert rows[0] == "epoch,batch,step,running_loss" and len(rows) == 4
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"] == "mlp" and metrics["model_config"]["hidden"] == [32, 16]
    assert metrics["model_config"]["input_mean"] == pytest.approx(0.1307, abs=1e-4)
    assert metrics["test_acc"] > 0.9 and len(metrics["running_loss"]) == 3
    # The model file carries the standardisation: evaluate gets the same accuracy.
    evaluation = json.loads(
        run_cli("evaluate", str(out / "model.safetensors"), "--json", data_root=data_root).stdout
    )
    assert evaluation["test_acc"] == pytest.approx(metrics["test_acc"], abs=1e-4)
    predicted = run_cli(
        "predict", str(out / "model.safetensors"), "--index", "0", data_root=data_root
    )
    assert "true: 7" in predicted.stdout


def test_cli_synthetic_gradient_descent_has_no_image_grids(tmp_path, data_root):
    from _helpers import run_cli

    out = tmp_path / "gd"
    proc = run_cli(
        "train",
        "--dataset",
        "synthetic",
        "--optimizer",
        "gd",
        "--epochs",
        "200",
        "--lr",
        "0.5",
        "--out",
        str(out),
        data_root=data_root,
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 200 and metrics["test_acc"] > 0.8
    assert (out / "curves.png").exists() and not (out / "predictions.png").exists()
    assert "predictions.png" not in proc.stdout


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--hidden", "512,x"], "expected comma-separated integers"),
        (["--hidden", "512,0"], "layer sizes must be >= 1"),
        (["--momentum", "1.5"], "momentum must be below 1"),
        (["--model", "cnn"], "invalid choice: 'cnn'"),
        (["--optimizer", "adam"], "invalid choice: 'adam'"),
    ],
)
def test_cli_refuses_bad_model_flags(argv, message, capsys):
    from softreg.cli import main

    try:
        code = main(["train", *argv])
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
