"""SoftmaxRegression, SGD and the training loop on small generated data."""

import time

import numpy as np
import pytest

from softreg import ops
from softreg.callbacks import Callback
from softreg.config import TrainConfig
from softreg.errors import ConfigError, DataValueError
from softreg.evaluation import evaluate
from softreg.models import SoftmaxRegression
from softreg.optim import SGD
from softreg.train import fit


def float64_params(model, seed=0):
    params = model.init(np.random.default_rng(seed))
    return {k: v.astype(np.float64) for k, v in params.items()}


def test_init_follows_the_book():
    model = SoftmaxRegression()
    params = model.init(np.random.default_rng(0))
    assert params["W"].shape == (784, 10) and params["W"].dtype == np.float32
    assert params["b"].shape == (10,) and params["b"].dtype == np.float32
    assert not params["b"].any()
    assert abs(params["W"].std() - 0.01) < 0.0005 and abs(params["W"].mean()) < 0.0005
    again = model.init(np.random.default_rng(0))
    np.testing.assert_array_equal(params["W"], again["W"])
    assert not np.array_equal(params["W"], model.init(np.random.default_rng(1))["W"])


def test_forward_flattens_images_and_probabilities_sum_to_one():
    model = SoftmaxRegression(num_inputs=12, num_outputs=4, sigma=1.0)
    params = model.init(np.random.default_rng(0))
    X = np.random.default_rng(1).random((5, 3, 4), dtype=np.float32)
    logits = model.forward(params, X)
    assert logits.shape == (5, 4)
    np.testing.assert_allclose(logits, X.reshape(5, 12) @ params["W"] + params["b"], rtol=1e-6)
    np.testing.assert_allclose(model.predict_proba(params, X).sum(axis=1), 1.0, rtol=1e-6)


def test_backward_matches_finite_differences():
    model = SoftmaxRegression(num_inputs=6, num_outputs=4, sigma=0.5)
    params = float64_params(model)
    rng = np.random.default_rng(2)
    X = rng.normal(size=(9, 6))
    y = rng.integers(0, 4, size=9)
    losses, grads, logits = model.loss_and_grad(params, X, y)
    np.testing.assert_allclose(losses, ops.cross_entropy(logits, y, reduction="none"))

    def mean_loss(p):
        return float(ops.cross_entropy(model.forward(p, X), y))

    eps = 1e-6
    for name, value in params.items():
        numeric = np.zeros_like(value)
        for i in np.ndindex(*value.shape):
            plus = {**params, name: value.copy()}
            minus = {**params, name: value.copy()}
            plus[name][i] += eps
            minus[name][i] -= eps
            numeric[i] = (mean_loss(plus) - mean_loss(minus)) / (2 * eps)
        np.testing.assert_allclose(grads[name], numeric, rtol=1e-6, atol=1e-9, err_msg=name)


def test_sgd_is_the_books_update_and_does_not_modify_inputs():
    rng = np.random.default_rng(3)
    params = {"W": rng.normal(size=(3, 2)), "b": rng.normal(size=2)}
    grads = {"W": rng.normal(size=(3, 2)), "b": rng.normal(size=2)}
    before = {k: v.copy() for k, v in params.items()}
    batch_size = 4
    # The book: sum-loss gradients, then param -= lr * grad / batch_size.
    summed = {k: g * batch_size for k, g in grads.items()}
    new, state = SGD(0.1).update(params, grads, SGD(0.1).init(params))
    for k in params:
        np.testing.assert_allclose(new[k], before[k] - 0.1 * summed[k] / batch_size)
        np.testing.assert_array_equal(params[k], before[k])
    assert state == {}


@pytest.mark.parametrize("lr", [0, -0.1, float("nan"), float("inf"), "0.1"])
def test_sgd_refuses_nonsense_learning_rates(lr):
    with pytest.raises(ConfigError, match="learning rate"):
        SGD(lr)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("epochs", 0),
        ("batch_size", 0),
        ("batch_size", -5),
        ("batch_size", 2.5),
        ("seed", -1),
        ("lr", 0.0),
        ("lr", float("nan")),
        ("sigma", -1.0),
        ("eval_batch_size", 0),
        ("epochs", True),
    ],
)
def test_train_config_refuses_nonsense(field, value):
    with pytest.raises(ConfigError, match=field.replace("lr", "learning rate")):
        TrainConfig(**{field: value})


def test_fit_learns_blobs_and_reports_the_books_metrics(blobs):
    X, y, Xt, yt = blobs
    model = SoftmaxRegression(num_inputs=5, num_outputs=3)
    result = fit(model, (X, y), (Xt, yt), TrainConfig(epochs=5, batch_size=32, lr=0.1))
    records = result.history.records
    assert [r.epoch for r in records] == [1, 2, 3, 4, 5]
    assert records[-1].train_loss < records[0].train_loss
    assert records[-1].test_acc > 0.9 and records[-1].train_acc > 0.9
    assert result.state.epoch == 5 and result.state.step == 5 * 16  # ceil(500 / 32) = 16
    # The reported test accuracy is what evaluate() says of the final parameters.
    final = evaluate(model, result.params, Xt, yt)
    assert (records[-1].test_acc, records[-1].test_loss) == (final.accuracy, final.loss)
    assert result.seconds_train > 0 and records[-1].seconds <= result.seconds_train


def test_train_metrics_are_accumulated_during_the_epoch_as_the_book_does(blobs):
    """One epoch of one batch: the accumulated loss is the loss *before* the update."""
    X, y, _, _ = blobs
    model = SoftmaxRegression(num_inputs=5, num_outputs=3, sigma=0.5)
    config = TrainConfig(epochs=1, batch_size=len(X), lr=0.5)
    result = fit(model, (X, y), None, config)
    initial = model.init(np.random.default_rng(config.seed))
    before = evaluate(model, initial, X, y)
    record = result.history.final
    assert record.train_loss == pytest.approx(before.loss, rel=1e-5)
    assert record.train_acc == before.accuracy
    assert record.test_acc is None and record.test_loss is None


def test_same_seed_same_run_and_different_seed_different_run(blobs):
    X, y, Xt, yt = blobs
    model = SoftmaxRegression(num_inputs=5, num_outputs=3)
    runs = [
        fit(model, (X, y), (Xt, yt), TrainConfig(epochs=3, batch_size=16, seed=s))
        for s in (7, 7, 8)
    ]
    for k in ("W", "b"):
        np.testing.assert_array_equal(runs[0].params[k], runs[1].params[k])
    assert not np.array_equal(runs[0].params["W"], runs[2].params["W"])
    strip = [[(r.train_loss, r.train_acc, r.test_acc) for r in run.history.records] for run in runs]
    assert strip[0] == strip[1] != strip[2]


def test_continuing_from_a_state_equals_one_uninterrupted_run(blobs):
    X, y, Xt, yt = blobs
    model = SoftmaxRegression(num_inputs=5, num_outputs=3)
    full = fit(model, (X, y), (Xt, yt), TrainConfig(epochs=4, batch_size=24, seed=3))
    half = fit(model, (X, y), (Xt, yt), TrainConfig(epochs=2, batch_size=24, seed=3))
    rest = fit(
        model, (X, y), (Xt, yt), TrainConfig(epochs=4, batch_size=24, seed=3), state=half.state
    )
    np.testing.assert_array_equal(full.params["W"], rest.params["W"])
    assert [r.epoch for r in rest.history.records] == [3, 4]
    assert rest.history.final.test_acc == full.history.final.test_acc


def test_last_partial_batch_is_used(blobs):
    X, y, _, _ = blobs
    calls = []

    class Count(Callback):
        def on_step_end(self, step, epoch):
            calls.append((step, epoch))

    model = SoftmaxRegression(num_inputs=5, num_outputs=3)
    fit(model, (X[:10], y[:10]), None, TrainConfig(epochs=2, batch_size=4), callbacks=[Count()])
    assert calls == [(1, 0), (2, 0), (3, 0), (4, 1), (5, 1), (6, 1)]


def test_callback_time_is_not_training_time(blobs):
    X, y, _, _ = blobs

    class Slow(Callback):
        def on_epoch_end(self, record, history, state):
            time.sleep(0.25)

    model = SoftmaxRegression(num_inputs=5, num_outputs=3)
    result = fit(model, (X, y), None, TrainConfig(epochs=2), callbacks=[Slow()])
    assert result.seconds_train < 0.25


def test_fit_refuses_mismatched_or_empty_data(blobs):
    X, y, _, _ = blobs
    model = SoftmaxRegression(num_inputs=5, num_outputs=3)
    with pytest.raises(DataValueError, match="500 examples but 499 labels"):
        fit(model, (X, y[:-1]), None, TrainConfig(epochs=1))
    with pytest.raises(DataValueError, match="empty"):
        fit(model, (X[:0], y[:0]), None, TrainConfig(epochs=1))


def test_evaluate_does_not_depend_on_chunk_size(blobs):
    X, y, _, _ = blobs
    model = SoftmaxRegression(num_inputs=5, num_outputs=3, sigma=1.0)
    params = model.init(np.random.default_rng(0))
    whole = evaluate(model, params, X, y, batch_size=10_000)
    chunked = evaluate(model, params, X, y, batch_size=7)
    assert whole.accuracy == chunked.accuracy and whole.n == 500
    assert whole.loss == pytest.approx(chunked.loss, rel=1e-5)
    assert whole.loss == pytest.approx(
        float(ops.cross_entropy(model.forward(params, X), y)), rel=1e-5
    )


def test_numpy_scalars_in_a_config_are_the_numbers_they_hold():
    """A config built from NumPy values (a grid, say) is JSON like any other."""
    import json

    config = TrainConfig(
        epochs=np.int64(3),
        batch_size=np.uint16(64),
        lr=np.float32(0.5),
        seed=np.uint64(7),
        hidden=[np.int64(8)],
    )
    plain = TrainConfig(epochs=3, batch_size=64, lr=float(np.float32(0.5)), seed=7, hidden=(8,))
    assert config == plain
    assert json.loads(json.dumps(config.to_dict())) == json.loads(json.dumps(plain.to_dict()))
    assert all(type(v) in (int, float) for v in (config.epochs, config.lr, config.seed))
