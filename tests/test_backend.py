"""The same ops, model, optimiser and training loop on every array backend.

Each test runs once per installed namespace (NumPy, array_api_strict, PyTorch, JAX: the ``xp``
fixture) and compares with a float64 NumPy reference computed here, independently of softreg.
"""

import numpy as np
import pytest

from softreg import _libraries, backend, ops
from softreg.compiled import Compiled
from softreg.config import TrainConfig
from softreg.evaluation import evaluate
from softreg.models import SoftmaxRegression
from softreg.optim import SGD
from softreg.train import fit

F32 = {"rtol": 2e-5, "atol": 2e-6}  # float32 agreement, for values of order 1


def host(x):
    return backend.to_numpy(x)


def logits_cases():
    """Ordinary, huge, tiny and mixed-magnitude scores, float32, with labels."""
    rng = np.random.default_rng(0)
    cases = {
        "normal": rng.normal(size=(16, 10)),
        "scale 1e4": rng.normal(size=(16, 10)) * 1e4,
        "all below -100": -150 + rng.normal(size=(16, 10)),
        "one logit of 100": np.where(np.arange(10) == 3, 100.0, rng.normal(size=(16, 10))),
    }
    y = rng.integers(0, 10, size=16)
    return {name: (x.astype(np.float32), y) for name, x in cases.items()}


def reference_log_softmax(x):
    """float64 log-softmax in plain NumPy, written here from the definition."""
    x = x.astype(np.float64)
    m = x.max(axis=1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=1, keepdims=True))


@pytest.mark.parametrize("case", list(logits_cases()))
def test_softmax_family_matches_float64_reference(xp, case):
    x, y = logits_cases()[case]
    ref_log = reference_log_softmax(x)
    xx, yy = backend.asarray(x, xp), backend.asarray(y, xp)
    log_p = host(ops.log_softmax(xx, xp=xp))
    p = host(ops.softmax(xx, xp=xp))
    assert np.all(np.isfinite(log_p)) and np.all(np.isfinite(p))
    np.testing.assert_allclose(log_p, ref_log, rtol=1e-6, atol=1e-3 * np.abs(x).max() * 1e-4)
    np.testing.assert_allclose(p, np.exp(ref_log), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(host(ops.logsumexp(xx, xp=xp)), (x - ref_log)[:, 0], rtol=1e-6)
    losses = -ref_log[np.arange(len(y)), y]
    for reduction, expected in (("none", losses), ("sum", losses.sum()), ("mean", losses.mean())):
        got = host(ops.cross_entropy(xx, yy, reduction=reduction, xp=xp))
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6, err_msg=reduction)
        nll = host(
            ops.nll_loss(
                backend.asarray(ref_log.astype(np.float32), xp), yy, reduction=reduction, xp=xp
            )
        )
        np.testing.assert_allclose(nll, expected, rtol=1e-5, atol=1e-6, err_msg=reduction)


def test_minus_infinity_scores_give_zero_probability_and_a_finite_loss(xp):
    x = np.array([[0.0, -np.inf, 1.0], [-np.inf, 2.0, -np.inf]], dtype=np.float32)
    y = np.array([2, 1])
    xx, yy = backend.asarray(x, xp), backend.asarray(y, xp)
    p = host(ops.softmax(xx, xp=xp))
    np.testing.assert_allclose(p, [[1 / (1 + np.e), 0, np.e / (1 + np.e)], [0, 1, 0]], rtol=1e-6)
    losses = host(ops.cross_entropy(xx, yy, reduction="none", xp=xp))
    np.testing.assert_allclose(losses, [np.log1p(np.exp(-1.0)), 0.0], rtol=1e-6, atol=1e-7)


def test_loss_gradient_and_accuracy_match_numpy(xp):
    x, y = logits_cases()["normal"]
    xx, yy = backend.asarray(x, xp), backend.asarray(y, xp)
    losses, dlogits = ops.cross_entropy_with_grad(xx, yy, xp=xp)
    ref_log = reference_log_softmax(x)
    onehot = np.eye(10)[y]
    np.testing.assert_allclose(host(losses), -ref_log[np.arange(16), y], **F32)
    np.testing.assert_allclose(host(dlogits), (np.exp(ref_log) - onehot) / 16, **F32)
    correct = int((x.argmax(axis=1) == y).sum())
    assert int(ops.count_correct(xx, yy, xp=xp)) == correct
    assert ops.accuracy(xx, yy, xp=xp) == correct / 16
    with pytest.raises(ValueError, match="label 10 outside"):
        ops.cross_entropy(xx, backend.asarray(np.full(16, 10), xp), xp=xp)


def test_same_seed_same_initial_weights_on_every_backend(xp):
    model = SoftmaxRegression(num_inputs=20, num_outputs=4)
    params = model.init(np.random.default_rng(5), xp=xp)
    reference = model.init(np.random.default_rng(5))
    for name in ("W", "b"):
        np.testing.assert_array_equal(host(params[name]), reference[name])
        assert host(params[name]).dtype == np.float32


def test_model_step_matches_a_float64_reference(xp):
    model = SoftmaxRegression(num_inputs=6, num_outputs=4, sigma=0.5)
    rng = np.random.default_rng(1)
    X = rng.normal(size=(9, 2, 3)).astype(np.float32)  # images: forward flattens them
    y = rng.integers(0, 4, size=9)
    params = model.init(np.random.default_rng(0), xp=xp)
    losses, grads, logits = model.loss_and_grad(
        params, backend.asarray(X, xp), backend.asarray(y, xp)
    )
    W, b = (host(params[k]).astype(np.float64) for k in ("W", "b"))
    X64 = X.reshape(9, 6).astype(np.float64)
    ref_log = reference_log_softmax(X64 @ W + b)
    dlogits = (np.exp(ref_log) - np.eye(4)[y]) / 9
    np.testing.assert_allclose(host(logits), X64 @ W + b, **F32)
    np.testing.assert_allclose(host(losses), -ref_log[np.arange(9), y], **F32)
    np.testing.assert_allclose(host(grads["W"]), X64.T @ dlogits, **F32)
    np.testing.assert_allclose(host(grads["b"]), dlogits.sum(axis=0), **F32)
    new, _ = SGD(0.1).update(params, grads, {})
    np.testing.assert_allclose(host(new["W"]), W - 0.1 * host(grads["W"]), **F32)
    np.testing.assert_allclose(host(params["W"]), W, rtol=0)  # not modified in place


def test_fit_gives_the_numpy_run_on_every_backend(backend_name, blobs):
    X, y, Xt, yt = blobs
    model = SoftmaxRegression(num_inputs=5, num_outputs=3)
    config = TrainConfig(epochs=3, batch_size=32, lr=0.1, seed=4)
    reference = fit(model, (X, y), (Xt, yt), config)
    result = fit(
        model, (X, y), (Xt, yt), TrainConfig(**{**config.to_dict(), "backend": backend_name})
    )
    xp = backend.resolve(backend_name).xp
    assert backend.get_namespace(result.params["W"]) is backend.get_namespace(
        backend.asarray(X[:1], xp)
    )
    for name in ("W", "b"):
        np.testing.assert_allclose(host(result.params[name]), reference.params[name], **F32)
    for got, want in zip(result.history.records, reference.history.records, strict=True):
        assert got.train_acc == pytest.approx(want.train_acc, abs=1 / len(X))
        assert got.test_acc == pytest.approx(want.test_acc, abs=1 / len(Xt))
        assert got.train_loss == pytest.approx(want.train_loss, rel=1e-5)
        assert got.test_loss == pytest.approx(want.test_loss, rel=1e-5)
    final = evaluate(model, result.params, backend.asarray(Xt, xp), backend.asarray(yt, xp))
    assert final.accuracy == result.history.final.test_acc


def test_data_crosses_to_the_device_once(backend_name, backend_device, blobs, monkeypatch):
    """Host-to-device copies: X, y, X_test, y_test and W once, then one permutation per
    epoch; never one per batch."""
    X, y, Xt, yt = blobs
    calls = []
    real = backend.asarray
    monkeypatch.setattr(backend, "asarray", lambda x, *a, **k: calls.append(x) or real(x, *a, **k))
    fit(
        SoftmaxRegression(num_inputs=5, num_outputs=3),
        (X, y),
        (Xt, yt),
        TrainConfig(epochs=3, batch_size=10, backend=backend_name, device=backend_device),
    )
    assert len(calls) == 4 + 1 + 3  # 50 steps per epoch would show as 150 more


@pytest.mark.parametrize("name", ["jax", "tensorflow"])
def test_compiled_backends_report_compile_time_apart(name, blobs):
    import_namespace_or_skip(name)
    X, y, Xt, yt = blobs
    result = fit(
        SoftmaxRegression(num_inputs=5, num_outputs=3),
        (X, y),
        (Xt, yt),
        TrainConfig(epochs=2, batch_size=32, backend=name),
    )
    assert backend.get_namespace(result.params["W"]) is backend.resolve(name).xp
    assert result.seconds_compile > 0
    numpy_run = fit(
        SoftmaxRegression(num_inputs=5, num_outputs=3),
        (X, y),
        (Xt, yt),
        TrainConfig(epochs=2, batch_size=32, kernel="array"),  # the fused step compiles
    )
    assert numpy_run.seconds_compile == 0


def test_compiled_function_compiles_once_per_shape():
    jnp = pytest.importorskip("jax.numpy")
    traced = []

    def double(x):
        traced.append(x.shape)
        return 2 * x

    fn = Compiled(double, pytest.importorskip("jax").jit)
    for n in (3, 3, 4, 3, 4):
        np.testing.assert_array_equal(np.asarray(fn(jnp.ones(n))), np.full(n, 2.0))
    assert traced == [(3,), (4,)] and fn.seconds > 0


@pytest.mark.parametrize(
    ("name", "device", "message"),
    [
        ("numpy", "cuda", "the numpy backend runs on the CPU only"),
        ("tensorflow", "gpu", "the tensorflow backend runs on the CPU only"),
        ("cupy", "cpu", "unknown backend 'cupy'; available: numpy, torch, jax, tensorflow"),
        ("torch", "tpu", "unknown device 'tpu'; available: cpu, cuda, gpu"),
    ],
)
def test_backend_and_device_names_are_checked(name, device, message):
    with pytest.raises(backend.ConfigError, match=message):
        TrainConfig(backend=name, device=device)
        backend.resolve(name, device)


@pytest.mark.parametrize(
    ("name", "device", "message"),
    [
        ("torch", "cuda", "--device cuda: PyTorch sees no CUDA GPU"),
        ("jax", "gpu", "--device gpu: JAX sees no GPU"),
    ],
)
def test_asking_for_a_missing_gpu_says_so(name, device, message):
    pytest.importorskip(_libraries.REQUIREMENTS[name][0])
    if backend.available(name, "cuda"):
        pytest.skip("this machine has a GPU")
    with pytest.raises(backend.ConfigError, match=message):
        backend.resolve(name, device)


# ---- Against each framework's own losses and autograd ------------------------------------


@pytest.mark.parametrize("case", list(logits_cases()))
def test_losses_equal_torch_functional(case):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    xp = backend.resolve("torch").xp
    x, y = logits_cases()[case]
    xt, yt = torch.from_numpy(x.copy()), torch.from_numpy(y)
    for reduction in ("mean", "sum", "none"):
        ours = ops.cross_entropy(xt, yt, reduction=reduction, xp=xp)
        torch.testing.assert_close(ours, F.cross_entropy(xt, yt, reduction=reduction))
        log_p = F.log_softmax(xt, dim=1)
        torch.testing.assert_close(
            ops.nll_loss(log_p, yt, reduction=reduction, xp=xp),
            F.nll_loss(log_p, yt, reduction=reduction),
        )
    torch.testing.assert_close(ops.log_softmax(xt, xp=xp), F.log_softmax(xt, dim=1))
    torch.testing.assert_close(ops.softmax(xt, xp=xp), F.softmax(xt, dim=1))
    torch.testing.assert_close(ops.logsumexp(xt, xp=xp), torch.logsumexp(xt, dim=1))


@pytest.mark.parametrize("scale", [1.0, 30.0])
def test_hand_derived_gradients_equal_torch_autograd(scale):
    torch = pytest.importorskip("torch")
    model = SoftmaxRegression(num_inputs=12, num_outputs=5, sigma=scale)
    rng = np.random.default_rng(7)
    X = torch.from_numpy(rng.random((33, 12), dtype=np.float32))
    y = torch.from_numpy(rng.integers(0, 5, size=33))
    params = model.init(np.random.default_rng(0), xp=backend.resolve("torch").xp)
    losses, grads, _ = model.loss_and_grad(params, X, y)

    leaves = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    loss = torch.nn.functional.cross_entropy(X @ leaves["W"] + leaves["b"], y)
    loss.backward()
    torch.testing.assert_close(losses.mean(), loss.detach())
    for name in ("W", "b"):
        torch.testing.assert_close(grads[name], leaves[name].grad, msg=name)


@pytest.mark.parametrize("case", list(logits_cases()))
def test_losses_equal_jax_nn(case):
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    x, y = (jnp.asarray(a) for a in logits_cases()[case])
    np.testing.assert_allclose(ops.log_softmax(x), jax.nn.log_softmax(x, axis=1), rtol=1e-6)
    np.testing.assert_allclose(ops.softmax(x), jax.nn.softmax(x, axis=1), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(ops.logsumexp(x), jax.nn.logsumexp(x, axis=1), rtol=1e-6)
    reference = -jnp.take_along_axis(jax.nn.log_softmax(x, axis=1), y[:, None], axis=1)[:, 0]
    np.testing.assert_allclose(ops.cross_entropy(x, y, reduction="none"), reference, rtol=1e-6)


@pytest.mark.parametrize("scale", [1.0, 30.0])
def test_hand_derived_gradients_equal_jax_grad(scale):
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    model = SoftmaxRegression(num_inputs=12, num_outputs=5, sigma=scale)
    rng = np.random.default_rng(8)
    X = jnp.asarray(rng.random((33, 12), dtype=np.float32))
    y = jnp.asarray(rng.integers(0, 5, size=33))
    params = model.init(np.random.default_rng(0), xp=jnp)
    losses, grads, _ = model.loss_and_grad(params, X, y)

    def mean_loss(p):  # jax's own log-softmax, not ours
        log_p = jax.nn.log_softmax(X @ p["W"] + p["b"], axis=1)
        return -jnp.mean(jnp.take_along_axis(log_p, y[:, None], axis=1))

    loss, expected = jax.value_and_grad(mean_loss)(params)
    np.testing.assert_allclose(jnp.mean(losses), loss, rtol=1e-6)
    for name in ("W", "b"):
        np.testing.assert_allclose(grads[name], expected[name], rtol=1e-5, atol=1e-7, err_msg=name)
    # jax.grad through our own forward ops agrees with our backward too.
    ours = jax.grad(lambda p: ops.cross_entropy(model.forward(p, X), y))(params)
    np.testing.assert_allclose(grads["W"], ours["W"], rtol=1e-5, atol=1e-7)


# ---- The book's recipe on real Fashion-MNIST ---------------------------------------------


@pytest.fixture(scope="module")
def numpy_recipe(fashion):
    return fit(
        SoftmaxRegression(),
        (fashion.X_train, fashion.y_train),
        (fashion.X_test, fashion.y_test),
        TrainConfig(),
    )


@pytest.mark.parametrize("name", ["torch", "jax", "tensorflow"])
@pytest.mark.slow
def test_book_recipe_agrees_with_numpy(name, fashion, numpy_recipe):
    import_namespace_or_skip(name)
    result = fit(
        SoftmaxRegression(),
        (fashion.X_train, fashion.y_train),
        (fashion.X_test, fashion.y_test),
        TrainConfig(backend=name),
    )
    want = numpy_recipe.history.final
    got = result.history.final
    assert abs(got.test_acc - want.test_acc) <= 0.005  # the bar: within 0.5 pp
    assert got.train_loss == pytest.approx(want.train_loss, rel=1e-3)
    assert got.train_loss < 0.5 and got.test_acc > 0.8


@pytest.mark.slow
def test_cli_records_backend_and_device(tmp_path, data_root):
    import json

    from _helpers import run_cli

    import_namespace_or_skip("jax")
    out = tmp_path / "jax-run"
    proc = run_cli(
        "train",
        "--backend",
        "jax",
        "--device",
        "cpu",
        "--epochs",
        "2",
        "--no-plots",
        "--out",
        str(out),
        data_root=data_root,
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["backend"], metrics["device"]) == ("jax", "cpu:0")
    assert metrics["seconds_compile"] > 0 and "jax" in metrics["versions"]
    assert "final: train loss" in proc.stdout
    # The saved model is plain NumPy: evaluate reads it back (on NumPy) to the same accuracy.
    evaluation = json.loads(
        run_cli("evaluate", str(out / "model.safetensors"), "--json", data_root=data_root).stdout
    )
    assert evaluation["test_acc"] == pytest.approx(metrics["test_acc"], abs=1e-4)


def test_cli_refuses_a_missing_gpu_before_writing(tmp_path, data_root):
    from _helpers import run_cli

    import_namespace_or_skip("torch")
    if backend.available("torch", "cuda"):
        pytest.skip("this machine has a GPU")
    out = tmp_path / "gpu-run"
    proc = run_cli(
        "train",
        "--backend",
        "torch",
        "--device",
        "cuda",
        "--out",
        str(out),
        data_root=data_root,
        check=False,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "--device cuda: PyTorch sees no CUDA GPU" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not out.exists()


def import_namespace_or_skip(name):
    from _helpers import import_namespace

    return import_namespace(name)


@pytest.mark.parametrize("case", list(logits_cases()))
def test_losses_and_gradients_equal_tensorflows(case):
    import_namespace_or_skip("tensorflow")
    import tensorflow as tf

    x, y = logits_cases()[case]
    xt, yt = tf.constant(x), tf.constant(y)
    reference = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=yt, logits=xt)
    np.testing.assert_allclose(
        ops.cross_entropy(xt, yt, reduction="none"), reference, rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(ops.log_softmax(xt), tf.nn.log_softmax(xt), rtol=1e-6)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        mean = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(yt, xt))
    _, dlogits = ops.cross_entropy_with_grad(xt, yt)
    np.testing.assert_allclose(dlogits, tape.gradient(mean, xt), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("dtype", [np.float64, np.int64, np.uint8])
@pytest.mark.slow
def test_features_of_any_real_dtype_train_in_float32_on_every_backend(
    backend_name, backend_device, blobs, dtype
):
    """softreg trains in float32 everywhere: features of another dtype are converted once,
    so every backend gives what float32 features give (not an error on one, float64
    parameters on another). uint8 features are image bytes, read as torchvision's ToTensor
    reads them: divided by 255."""
    X, y, _, _ = blobs
    X = (X * 10 + 128).astype(dtype) if np.issubdtype(dtype, np.integer) else X.astype(dtype)
    config = TrainConfig(epochs=2, batch_size=32, backend=backend_name, device=backend_device)
    model = SoftmaxRegression(num_inputs=5, num_outputs=3)
    got = fit(model, (X, y), None, config)
    features = X.astype(np.float32)
    if dtype == np.uint8:
        features /= np.float32(255)
    want = fit(model, (features, y), None, config)
    for name in ("W", "b"):
        assert host(got.params[name]).dtype == np.float32
        np.testing.assert_array_equal(host(got.params[name]), host(want.params[name]))
