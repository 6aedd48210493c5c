"""The fused step (softreg.fused) against the array-API step it stands in for.

The two compute the same float32 arithmetic but sum ``x @ W`` in different orders (BLAS's
blocks, possibly with fused multiply-adds, against the kernel's vector lanes with them),
so a logit differs by a few units in its last place; over an epoch of SGD at lr <= 0.1 those
differences are carried along, not amplified. The weights are compared to 1e-5 of their
largest entry (a hundredfold margin over what an epoch of Fashion-MNIST shows, 4e-7), the
batch losses to 1e-5 relative, and the correct counts exactly. The update itself, given the
same gradient, is bit-identical to SGD.update.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

pytest.importorskip("numba")

from softreg import _fused_kernels as kernels
from softreg import backend, fused
from softreg.config import TrainConfig
from softreg.data.batching import epoch_permutation
from softreg.errors import ConfigError
from softreg.models import MLP, SoftmaxRegression
from softreg.optim import SGD, scheduled_lr
from softreg.prepare import prepare
from softreg.step import Carry, NonFiniteLoss, StepInputs, StepRules, train_step
from softreg.train import fit

NUMPY = backend.resolve("numpy")


def zero_totals():
    return {"loss": np.zeros((), np.float32), "correct": np.zeros((), np.int32)}


def run_epoch(step, rules, X, y, *, batch, weight=None, schedule=False, params=None, seed=0):
    """One epoch of ``step`` from ``params`` (default: the model's seeded draw).

    Returns the final carry and every step's (batch loss, correct count)."""
    model, optimizer = rules.model, rules.optimizer
    params = params or model.init(np.random.default_rng(seed))
    carry = Carry(params, optimizer.init(params), zero_totals())
    order, n = epoch_permutation(len(y), seed=seed, epoch=0), len(y)
    per_step = []
    for k, begin in enumerate(range(0, n, batch)):
        lr = scheduled_lr(optimizer.lr, "cosine", k, -(-n // batch)) if schedule else None
        inputs = StepInputs(weight=weight, lr=None if lr is None else np.float32(lr))
        before = carry.totals
        carry = step(rules, carry, X, y, order[begin : begin + batch], inputs)
        per_step.append(
            (
                float(carry.totals["loss"] - before["loss"]),
                int(carry.totals["correct"] - before["correct"]),
            )
        )
        carry = carry._replace(totals=zero_totals())
    return carry, per_step


def assert_agree(array, fused_, tolerance=1e-5):
    (carry_a, steps_a), (carry_f, steps_f) = array, fused_
    for name in ("W", "b"):
        want, got = carry_a.params[name], carry_f.params[name]
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=0, atol=tolerance * np.abs(want).max())
    for name, buf in carry_a.opt_state.get("momentum", {}).items():
        got = carry_f.opt_state["momentum"][name]
        np.testing.assert_allclose(got, buf, rtol=0, atol=tolerance * np.abs(buf).max())
    np.testing.assert_allclose([s[0] for s in steps_f], [s[0] for s in steps_a], rtol=1e-5)
    assert [s[1] for s in steps_f] == [s[1] for s in steps_a]


def digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return (X / 16).astype(np.float32), y  # 1797 rows: batches of 64 leave 5


def generated(n=1000, d=37, k=5):
    rng = np.random.default_rng(3)
    centers = rng.normal(0, 1, size=(k, d))
    y = rng.integers(0, k, size=n)
    return (centers[y] + rng.normal(0, 2, size=(n, d))).astype(np.float32), y


def images(n=700):
    """uint8 "images": class-dependent brightness in a band of pixels, noise elsewhere."""
    rng = np.random.default_rng(5)
    y = rng.integers(0, 10, size=n)
    X = rng.integers(0, 120, size=(n, 784))
    for c in range(10):
        X[y == c, c * 70 : c * 70 + 70] += 120
    return X.astype(np.uint8), y


OPTIMIZERS = {
    "sgd": SGD(0.1),
    "momentum": SGD(0.05, momentum=0.9),
    "nesterov": SGD(0.05, momentum=0.9, nesterov=True),
    "weight-decay": SGD(0.1, momentum=0.5, weight_decay=1e-3),
}


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("data", ["digits", "generated"])
def test_an_epoch_agrees_with_the_array_step(data, optimizer):
    X, y = digits() if data == "digits" else generated()
    model = SoftmaxRegression(num_inputs=X.shape[1], num_outputs=int(y.max()) + 1, sigma=0.1)
    rules = StepRules(model, OPTIMIZERS[optimizer], check_loss=True)
    batch = 64 if data == "digits" else 96  # a last batch smaller than the others
    assert len(y) % batch
    array = run_epoch(train_step, rules, X, y, batch=batch)
    assert_agree(array, run_epoch(fused.fused_step, rules, X, y, batch=batch))


@pytest.mark.parametrize("schedule", [False, True])
def test_sample_weights_and_a_schedule_agree_with_the_array_step(schedule):
    X, y = generated()
    weight = np.random.default_rng(1).uniform(0, 2, size=len(y)).astype(np.float32)
    weight /= weight.mean()
    rules = StepRules(SoftmaxRegression(num_inputs=37, num_outputs=5), SGD(0.1), check_loss=True)
    kwargs = {"batch": 128, "weight": weight, "schedule": schedule}
    array = run_epoch(train_step, rules, X, y, **kwargs)
    assert_agree(array, run_epoch(fused.fused_step, rules, X, y, **kwargs))
    unweighted = run_epoch(fused.fused_step, rules, X, y, batch=128, schedule=schedule)
    assert not np.allclose(unweighted[0].params["W"], array[0].params["W"], atol=1e-4)


@pytest.mark.parametrize("scaling", ["none", "scalar", "per-feature"])
def test_uint8_rows_are_converted_and_standardised_as_the_array_step_does(scaling):
    X, y = images()
    Xf = X.astype(np.float32) / np.float32(255)  # what uint8 images read as (ToTensor)
    mean, scale = {
        "none": (0.0, 1.0),
        "scalar": (float(Xf.mean()), float(Xf.std())),
        "per-feature": (Xf.mean(axis=0), Xf.std(axis=0) + 0.05),
    }[scaling]
    model = SoftmaxRegression(input_mean=mean, input_scale=scale)
    assert model.input_scaling == scaling
    rules = StepRules(model, SGD(0.1), check_loss=True)
    # The array step on the float32 features: scale_inputs then computes (x - mean) / scale
    # in float32; the fused step reads the uint8 rows as x / 255 and does the same.
    array = run_epoch(train_step, rules, Xf, y, batch=256)
    assert_agree(array, run_epoch(fused.fused_step, rules, X, y, batch=256))


@pytest.mark.parametrize("scaling", ["none", "per-feature"])
def test_bytes_divided_by_255_read_as_the_byte_table_looked_up(scaling, monkeypatch):
    X, y = images()
    assert fused._byte_divisor() == 255  # the table holds float32(b) / 255 exactly
    mean = X.mean(axis=0) / 255 if scaling == "per-feature" else 0.0
    model = SoftmaxRegression(input_mean=mean, input_scale=1.0 if scaling == "none" else 0.3)
    rules = StepRules(model, SGD(0.1), check_loss=True)
    divided = run_epoch(fused.fused_step, rules, X, y, batch=256)
    monkeypatch.setattr(fused, "_byte_divisor", lambda: np.float32(0))
    monkeypatch.setattr(fused, "_READINGS", {})
    looked_up = run_epoch(fused.fused_step, rules, X, y, batch=256)
    for name in ("W", "b"):
        np.testing.assert_array_equal(divided[0].params[name], looked_up[0].params[name])
    assert divided[1] == looked_up[1]


def test_ties_take_the_first_class_as_count_correct_does():
    X, y = generated()
    model = SoftmaxRegression(num_inputs=37, num_outputs=5)
    zeros = {"W": np.zeros((37, 5), np.float32), "b": np.zeros(5, np.float32)}
    rules = StepRules(model, SGD(0.1), check_loss=True)
    idx = np.arange(200)
    for step in (train_step, fused.fused_step):
        params = {k: v.copy() for k, v in zeros.items()}
        out = step(rules, Carry(params, {}, zero_totals()), X, y, idx, StepInputs())
        assert int(out.totals["correct"]) == int(np.sum(y[idx] == 0))  # every logit ties at 0


def test_a_non_finite_loss_raises_before_anything_changes():
    X, y = generated()
    X[7] = 3e38  # its logits overflow
    model = SoftmaxRegression(num_inputs=37, num_outputs=5, sigma=1.0)
    rules = StepRules(model, SGD(0.1, momentum=0.9), check_loss=True)
    params = model.init(np.random.default_rng(0))
    state = rules.optimizer.init(params)
    state["momentum"]["W"] += 0.5  # not zeros: a change would show
    before = ({k: v.copy() for k, v in params.items()}, state["momentum"]["W"].copy())
    carry = Carry(params, state, zero_totals())
    for step in (train_step, fused.fused_step):  # the array step too: the reference
        with pytest.raises(NonFiniteLoss) as exc, np.errstate(over="ignore", invalid="ignore"):
            step(rules, carry, X, y, np.arange(64), StepInputs())
        assert not np.isfinite(exc.value.loss)
    for name in ("W", "b"):
        np.testing.assert_array_equal(params[name], before[0][name])
    np.testing.assert_array_equal(state["momentum"]["W"], before[1])


def test_reruns_are_bit_identical_on_any_number_of_threads():
    import numba

    X, y = images()
    model = SoftmaxRegression(input_mean=100.0, input_scale=60.0)
    rules = StepRules(model, SGD(0.1), check_loss=True)
    threads = numba.get_num_threads()
    runs = []
    try:
        for n in sorted({1, threads}) * 2:
            numba.set_num_threads(n)
            runs.append(run_epoch(fused.fused_step, rules, X, y, batch=256))
    finally:
        numba.set_num_threads(threads)
    for carry, steps in runs[1:]:
        for name in ("W", "b"):
            np.testing.assert_array_equal(carry.params[name], runs[0][0].params[name])
        assert steps == runs[0][1]


def test_the_update_is_sgd_update_bit_for_bit():
    rng = np.random.default_rng(0)
    for optimizer in OPTIMIZERS.values():
        p = rng.normal(size=(20, 7)).astype(np.float32)
        parts = rng.normal(size=(3, 7, 20)).astype(np.float32)  # transposed, as the kernel's
        grad = parts[0] + parts[1] + parts[2]
        state = optimizer.init({"W": p})
        if state:
            state["momentum"]["W"][:] = rng.normal(size=p.shape)
        want_p, want_state = optimizer.update(
            {"W": p.copy()},
            {"W": grad.T.copy()},
            {"momentum": {"W": state["momentum"]["W"].copy()}} if state else {},
            donate=True,
            lr=np.float32(0.03),
        )
        buf = state["momentum"]["W"].T if state else np.empty((0, 1), np.float32)
        kernels.sgd_update(p.T, parts, buf, np.float32(0.03), *constants(optimizer))
        np.testing.assert_array_equal(p, want_p["W"])
        if state:
            np.testing.assert_array_equal(state["momentum"]["W"], want_state["momentum"]["W"])


def constants(optimizer):
    return (
        np.float32(optimizer.weight_decay),
        np.float32(optimizer.momentum),
        optimizer.nesterov,
    )


# ---- Which step trains: TrainConfig.kernel ---------------------------------------------------


def step_of(config, model, data, communicator=None):
    X, y = data
    loop = prepare(model, (X, y), None, config, sample_weight=None, communicator=communicator)
    return loop.step_fn.fn.func


def test_auto_takes_the_fused_step_where_it_applies(blobs):
    X, y, _, _ = blobs
    model = SoftmaxRegression(num_inputs=5, num_outputs=3)
    assert step_of(TrainConfig(), model, (X, y)) is fused.fused_step
    assert step_of(TrainConfig(kernel="fused", optimizer="gd"), model, (X, y)) is fused.fused_step
    assert step_of(TrainConfig(kernel="array"), model, (X, y)) is train_step
    for config in (TrainConfig(softmax="naive"), TrainConfig(chunk_size=2)):
        assert step_of(config, model, (X, y)) is train_step
    mlp = MLP(num_inputs=5, hidden=(4,), num_outputs=3)
    assert step_of(TrainConfig(model="mlp"), mlp, (X, y)) is train_step
    assert step_of(TrainConfig(), mlp, (X, y)) is train_step  # the model given, not its name


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"model": "mlp"}, "softmax regression only"),
        ({"softmax": "naive"}, "stable softmax only"),
        ({"backend": "torch"}, "NumPy only"),
        ({"chunk_size": 2}, "every class at once"),
        ({"sampled": 2}, "every class at once"),
    ],
)
def test_fused_is_refused_where_it_cannot_train(fields, says):
    with pytest.raises(ConfigError, match=f"kernel='fused' cannot train this run: .*{says}"):
        TrainConfig(kernel="fused", **fields)
    TrainConfig(kernel="auto", **fields)  # auto takes the array path
    with pytest.raises(ConfigError, match="kernel"):
        TrainConfig(kernel="numba")


def test_fused_is_refused_for_another_model_a_communicator_or_without_numba(blobs, monkeypatch):
    X, y, _, _ = blobs
    config = TrainConfig(kernel="fused")
    mlp = MLP(num_inputs=5, hidden=(4,), num_outputs=3)
    with pytest.raises(ConfigError, match="softmax regression only, not MLP"):
        step_of(config, mlp, (X, y))
    rules = StepRules(SoftmaxRegression(num_inputs=5, num_outputs=3), SGD())
    with pytest.raises(ConfigError, match="data-parallel"):
        fused.step_function(config, rules, NUMPY, communicator=object())
    monkeypatch.setitem(sys.modules, "numba", None)  # import numba raises ImportError
    with pytest.raises(ConfigError, match=r"numba is not installed .*'softreg\[fast\]'"):
        fused.step_function(config, rules, NUMPY, None)
    step = fused.step_function(TrainConfig(), rules, NUMPY, None)
    assert step.fn.func is train_step


def test_the_kernel_is_part_of_how_a_run_trains():
    assert not TrainConfig(kernel="array").trains_like(TrainConfig())
    assert TrainConfig(kernel="fused").to_dict()["kernel"] == "fused"


# ---- Through fit ---------------------------------------------------------------------------


def test_fit_fused_agrees_with_array_and_counts_the_first_call_as_compiling(blobs):
    X, y, X_test, y_test = blobs
    model = SoftmaxRegression(num_inputs=5, num_outputs=3)
    results = {
        kernel: fit(model, (X, y), (X_test, y_test), TrainConfig(epochs=3, kernel=kernel))
        for kernel in ("array", "fused")
    }
    array, fused_ = results["array"], results["fused"]
    np.testing.assert_allclose(fused_.params["W"], array.params["W"], rtol=0, atol=1e-6)
    for got, want in zip(fused_.history.records, array.history.records, strict=True):
        assert got.train_loss == pytest.approx(want.train_loss, rel=1e-5)
        assert (got.train_acc, got.test_acc) == (want.train_acc, want.test_acc)
    assert fused_.seconds_compile > 0  # the fused step's first call: compiling or loading


def test_fit_fused_resumed_mid_epoch_is_bit_identical(blobs):
    from test_resume import Snapshots, assert_same_params, records

    X, y, X_test, y_test = blobs
    config = TrainConfig(epochs=2, batch_size=64, momentum=0.5, log_every=3, kernel="fused")
    model = SoftmaxRegression(num_inputs=5, num_outputs=3)
    snapshots = Snapshots()
    full = fit(model, (X, y), (X_test, y_test), config, callbacks=[snapshots], checkpoint_every=5)
    assert [s.batch for s, _ in snapshots.taken][:2] == [5, 2]  # mid-epoch, both epochs
    for state, history in snapshots.taken[:2]:
        continued = fit(model, (X, y), (X_test, y_test), config, state=state, history=history)
        assert_same_params(continued.params, full.params)
        assert_same_params(continued.state.opt_state["momentum"], full.state.opt_state["momentum"])
        assert records(continued.history) == records(full.history)


@pytest.mark.slow
def test_the_books_recipe_with_the_fused_step(fashion):
    result = fit(
        SoftmaxRegression(),
        (fashion.X_train, fashion.y_train),
        (fashion.X_test, fashion.y_test),
        TrainConfig(kernel="fused"),
    )
    final = result.history.final
    assert len(result.history.records) == 10
    # The array path's (and the book's) 0.8319; the bars of d2l's train_ch3 as well.
    assert round(final.test_acc, 4) == 0.8319
    assert final.train_loss < 0.5 and final.train_acc > 0.7


def test_beside_the_fused_step_the_evaluation_runs_on_one_blas_thread():
    from threadpoolctl import threadpool_info

    from softreg.compiled import Compiled

    def blas_threads(*args):
        return {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}

    rules = StepRules(SoftmaxRegression(num_inputs=5, num_outputs=3), SGD())
    eval_fn, before = Compiled(blas_threads, None), blas_threads()
    array_step = fused.step_function(TrainConfig(kernel="array"), rules, NUMPY, None)
    assert fused.evaluation_function(array_step, eval_fn) is eval_fn
    fused_step = fused.step_function(TrainConfig(kernel="fused"), rules, NUMPY, None)
    assert fused.evaluation_function(fused_step, eval_fn)() == {1}
    assert blas_threads() == before  # lifted afterwards
