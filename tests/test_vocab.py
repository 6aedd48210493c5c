"""Large vocabularies (softreg.vocab, softreg.sampling): the chunked loss and gradients against
the plain computation on every backend and against PyTorch and JAX autograd, in bounded memory;
the sampled softmax's hand-written gradient and what its estimate is (and is not) unbiased for;
and both as training options of fit."""

from __future__ import annotations

import json
import math
import tracemalloc

import numpy as np
import pytest

from softreg import (
    MLP,
    SoftmaxRegression,
    TrainConfig,
    array_extras,
    backend,
    fit,
    ops,
    sampling,
    vocab,
)
from softreg.data.tokens import make_next_token
from softreg.errors import ConfigError

F32 = {"rtol": 2e-5, "atol": 2e-6}  # float32 agreement (the errors seen are ~3e-7 relative)
V = 60  # classes in the small problems: chunks of 12 divide it, chunks of 7 do not


def host(x):
    return None if x is None else backend.to_numpy(x)


def on(xp, *arrays):
    return [None if a is None else backend.asarray(a, xp) for a in arrays]


def problem(n=24, d=7, num_classes=V, *, scale=1.0, offset=0.0, seed=0):
    """float32 ``h (n, d)``, ``W (d, k)``, ``b (k,)``, labels and per-example weights (one 0)."""
    rng = np.random.default_rng(seed)
    h = (rng.normal(size=(n, d)) * scale).astype(np.float32)
    W = rng.normal(size=(d, num_classes)).astype(np.float32)
    b = (rng.normal(size=num_classes) + offset).astype(np.float32)
    y = rng.integers(0, num_classes, size=n)
    weight = rng.uniform(0.1, 3.0, size=n).astype(np.float32)
    weight[1] = 0.0
    return h, W, b, y, weight


def plain(h, W, b, y, weight, xp):
    """The materialised computation: ops.cross_entropy_with_grad on ``h @ W + b``."""
    logits = h @ W + b if b is not None else h @ W
    losses, dlogits = ops.cross_entropy_with_grad(logits, y, weight=weight, xp=xp)
    return losses, dlogits @ W.T, h.T @ dlogits, xp.sum(dlogits, axis=0)


def assert_close(got, want, **tol):
    names = ("losses", "dh", "dW", "db")[: len(want)]
    for name, g, w in zip(names, got, want, strict=True):
        g, w = host(g), host(w)
        assert g.shape == w.shape and g.dtype == np.float32, name
        np.testing.assert_allclose(g, w, err_msg=name, **(tol or F32))


# --------------------------------------------------------------------------------------------
# Chunked loss and gradients.


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("chunk_size", [1, 7, 12, V, 1000, None])
def test_chunked_matches_plain(xp, chunk_size, weighted):
    h, W, b, y, weight = problem()
    hh, WW, bb, yy, ww = on(xp, h, W, b, y, weight if weighted else None)
    got = vocab.linear_cross_entropy_with_grad(hh, WW, bb, yy, chunk_size=chunk_size, weight=ww)
    assert_close(got, plain(hh, WW, bb, yy, ww, xp))


def test_loss_reductions_and_no_bias(xp):
    h, W, b, y, _ = problem()
    hh, WW, bb, yy = on(xp, h, W, b, y)
    for reduction in ("none", "sum", "mean"):
        want = host(ops.cross_entropy(hh @ WW + bb, yy, reduction=reduction, xp=xp))
        got = host(vocab.linear_cross_entropy(hh, WW, bb, yy, chunk_size=7, reduction=reduction))
        np.testing.assert_allclose(got, want, **F32, err_msg=reduction)
    losses, dh, dW, db = vocab.linear_cross_entropy_with_grad(hh, WW, None, yy, chunk_size=7)
    assert db is None
    assert_close((losses, dh, dW), plain(hh, WW, None, yy, None, xp)[:3])


def test_argmax_and_ties_across_chunks(xp):
    """The streaming arg-max is the logits' arg-max; a tie between chunks goes to the first
    class, as argmax does."""
    h, W, b, y, _ = problem()
    W[:, 50], b[50] = W[:, 3], b[3]  # classes 3 and 50 always tie
    W[:, 3] *= 0.0
    W[:, 50] *= 0.0
    b[3] = b[50] = 100.0  # ... and win every row
    hh, WW, bb = on(xp, h, W, b)
    lse, best = vocab.linear_logsumexp(hh, WW, bb, chunk_size=7)
    assert (host(best) == 3).all()
    h, W, b, y, _ = problem(seed=1)
    hh, WW, bb = on(xp, h, W, b)
    lse, best = vocab.linear_logsumexp(hh, WW, bb, chunk_size=7)
    np.testing.assert_array_equal(host(best), np.argmax(h @ W + b, axis=1))
    np.testing.assert_allclose(host(lse), host(ops.logsumexp(hh @ WW + bb, axis=1)), **F32)


def test_matches_torch_autograd():
    """An independent reference: PyTorch's cross_entropy and autograd, weighted and not."""
    torch = pytest.importorskip("torch")
    h, W, b, y, weight = problem(n=40, d=9, num_classes=101)
    for w in (None, weight):
        th, tW, tb = (torch.tensor(a, requires_grad=True) for a in (h, W, b))
        per_example = torch.nn.functional.cross_entropy(
            th @ tW + tb, torch.tensor(y), reduction="none"
        )
        scaled = per_example if w is None else per_example * torch.tensor(w)
        scaled.mean().backward()
        want = (scaled.detach(), th.grad, tW.grad, tb.grad)
        got = vocab.linear_cross_entropy_with_grad(h, W, b, y, chunk_size=16, weight=w)
        assert_close(got, [t.numpy() for t in want])


def test_matches_jax_grad():
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    h, W, b, y, weight = problem(n=40, d=9, num_classes=101)

    def mean_loss(h, W, b):
        log_probs = jax.nn.log_softmax(h @ W + b, axis=1)
        return jnp.mean(
            -jnp.take_along_axis(log_probs, jnp.asarray(y)[:, None], axis=1)[:, 0] * weight
        )

    want_grads = jax.grad(mean_loss, argnums=(0, 1, 2))(h, W, b)
    _, *grads = vocab.linear_cross_entropy_with_grad(
        *on(jnp, h, W, b, y, weight)[:4], chunk_size=16, weight=jnp.asarray(weight)
    )
    for g, w in zip(grads, want_grads, strict=True):
        np.testing.assert_allclose(host(g), np.asarray(w), **F32)


def test_extreme_logits_stay_finite(xp):
    """Scores around 1e4 apart by hundreds: exp would overflow at 88. Compared with a float64
    computation from the same float32 inputs, to float32's resolution at that size."""
    h, W, b, y, _ = problem(scale=30.0, offset=1e4)
    hh, WW, bb, yy = on(xp, h, W, b, y)
    got = [host(a) for a in vocab.linear_cross_entropy_with_grad(hh, WW, bb, yy, chunk_size=7)]
    assert all(np.isfinite(a).all() for a in got)
    z = h.astype(np.float64) @ W + b
    lse = np.log(np.exp(z - z.max(1, keepdims=True)).sum(1)) + z.max(1)
    p = np.exp(z - lse[:, None])
    p[np.arange(len(y)), y] -= 1
    G = p / len(y)
    want = (lse - z[np.arange(len(y)), y], G @ W.T, h.T @ G, G.sum(0))
    ulp = float(np.spacing(np.float32(1e4 + 1e3)))  # the logits' float32 resolution
    for name, g, w in zip(("losses", "dh", "dW", "db"), got, want, strict=True):
        # A logit off by an ulp changes each probability by that much, relatively.
        tol = 50 * ulp * (1 if name == "losses" else np.abs(w).max())
        np.testing.assert_allclose(g, w, atol=tol, rtol=0, err_msg=name)


def test_bad_input_is_refused():
    h, W, b, y, _ = problem()
    with pytest.raises(ValueError, match="label 60 outside"):
        vocab.linear_cross_entropy_with_grad(h, W, b, np.full(24, V))
    with pytest.raises(ValueError, match="label -1 outside"):
        vocab.linear_cross_entropy(h, W, b, np.full(24, -1))
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="chunk_size must be an integer >= 1"):
            vocab.linear_cross_entropy(h, W, b, y, chunk_size=bad)
    with pytest.raises(ValueError, match="do not fit"):
        vocab.linear_cross_entropy(h, W.T, b, y)
    with pytest.raises(ValueError, match="one entry per class"):
        vocab.linear_cross_entropy(h, W, b[:5], y)
    with pytest.raises(ValueError, match="reduction"):
        vocab.linear_cross_entropy(h, W, b, y, reduction="max")


@pytest.mark.slow
def test_memory_stays_bounded_numpy():
    """At N=2048, V=65536 the logits alone are 512 MiB. The chunked loss and gradients
    allocate a few (N, chunk) blocks and the gradients; the plain log-softmax, measured the
    same way, more than the logits (so the measurement does see large arrays)."""
    n, d, num_classes, chunk = 2048, 16, 65536, 1024
    rng = np.random.default_rng(0)
    h = rng.standard_normal((n, d), dtype=np.float32)
    W = rng.standard_normal((d, num_classes), dtype=np.float32) * np.float32(0.1)
    b = np.zeros(num_classes, dtype=np.float32)
    y = rng.integers(0, num_classes, size=n)
    logits_bytes = n * num_classes * 4

    def peak(fn):
        tracemalloc.start()
        try:
            out = fn()
            return tracemalloc.get_traced_memory()[1], out
        finally:
            tracemalloc.stop()

    chunked_peak, got = peak(
        lambda: vocab.linear_cross_entropy_with_grad(h, W, b, y, chunk_size=chunk)
    )
    block = n * chunk * 4
    assert chunked_peak < logits_bytes / 8, chunked_peak / 2**20
    assert chunked_peak < 4 * block + W.nbytes + 2**20, chunked_peak / 2**20  # O(N * chunk)
    plain_peak, log_probs = peak(lambda: ops.log_softmax(h @ W + b))
    assert plain_peak > logits_bytes, plain_peak / 2**20
    np.testing.assert_allclose(got[0], -log_probs[np.arange(n), y], rtol=2e-5)


# --------------------------------------------------------------------------------------------
# Sampled softmax.


def test_segment_sum_adds_repeated_rows(xp):
    values = np.arange(12, dtype=np.float32).reshape(6, 2)
    index = np.array([3, 0, 3, 3, 4, 0])
    want = np.zeros((5, 2), dtype=np.float32)
    np.add.at(want, index, values)
    got = array_extras.segment_sum(*on(xp, values, index), 5, xp=xp)
    np.testing.assert_array_equal(host(got), want)
    got = array_extras.segment_sum(*on(xp, values[:, 0], index), 5, xp=xp)
    np.testing.assert_array_equal(host(got), want[:, 0])


def sampled_reference(h, W, b, y, sampled, log_q, weight):
    """The sampled softmax by its definition, differentiated by PyTorch, in float64."""
    torch = pytest.importorskip("torch")
    th, tW, tb = (torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (h, W, b))
    ty, ts = torch.tensor(y), torch.tensor(sampled)
    z_true = (th @ tW + tb)[torch.arange(len(y)), ty]
    z = (th @ tW + tb)[:, ts] - (
        torch.tensor(log_q, dtype=torch.float64)[ts] + math.log(len(sampled))
    )
    z = z.masked_fill(ty[:, None] == ts[None, :], -math.inf)
    losses = torch.logsumexp(torch.cat([z_true[:, None], z], dim=1), dim=1) - z_true
    losses = losses * torch.tensor(weight, dtype=torch.float64)
    losses.mean().backward()
    return [t.detach().numpy() for t in (losses, th.grad, tW.grad, tb.grad)]


def test_sampled_softmax_matches_autograd(xp):
    """The hand-written backward, with a class drawn twice and draws that hit labels."""
    h, W, b, y, weight = problem()
    sampled = np.array([5, 17, 5, y[0], 33, y[2], 59])
    log_q = np.log(sampling.log_uniform_probs(V)).astype(np.float32)
    want = sampled_reference(h, W, b, y, sampled, log_q, weight)
    hh, WW, bb, yy, ss, qq = on(xp, h, W, b, y, sampled, log_q)
    got = vocab.sampled_softmax_with_grad(
        hh, WW, bb, yy, vocab.SampledClasses(ss, qq), weight=backend.asarray(weight, xp)
    )
    assert_close(got, [w.astype(np.float32) for w in want], rtol=2e-5, atol=2e-6)
    dW = host(got[2])
    untouched = np.setdiff1d(np.arange(V), np.concatenate([y, sampled]))
    assert (dW[:, untouched] == 0).all()  # dense, but only the label and sampled columns


def exact_and_sampled(num_sampled, draws, *, remove_hits=True, scale=1.0, uniform=False):
    """Exact per-row losses and ``draws`` sampled estimates of them, ``(draws, n)``, with the
    Zipf proposal (or a uniform one)."""
    h, W, b, y, _ = problem(n=6, d=5, num_classes=40, scale=scale)
    b *= np.float32(scale)
    probs = np.full(40, 1 / 40) if uniform else sampling.log_uniform_probs(40)
    log_q = np.log(probs).astype(np.float32)
    rng = np.random.default_rng(0)
    estimates = np.stack(
        [
            vocab.sampled_softmax_with_grad(
                h,
                W,
                b,
                y,
                vocab.SampledClasses(sampling.draw_classes(probs, num_sampled, rng), log_q),
                remove_accidental_hits=remove_hits,
            )[0]
            for _ in range(draws)
        ]
    ).astype(np.float64)
    return vocab.linear_cross_entropy(h, W, b, y, reduction="none"), estimates


def mean_and_error(estimates):
    """Mean of ``exp(estimates)`` per row and its standard error."""
    e = np.exp(estimates)
    return e.mean(0), e.std(0) / math.sqrt(e.shape[0])


def test_sampled_exp_loss_is_unbiased():
    """With replacement and the log-Q correction, exp(sampled loss) averages to exp(exact
    loss), row by row (within 5 standard errors)."""
    exact, estimates = exact_and_sampled(num_sampled=8, draws=4000)
    mean, se = mean_and_error(estimates)
    assert (np.abs(mean - np.exp(exact)) < 5 * se).all(), (mean, np.exp(exact), se)


def test_accidental_hits_bias_the_estimate_by_one():
    """Left in, a draw of the label adds exp(0) / (S q) to the sum, 1 on average. Small
    scores and a uniform proposal keep the spread small enough to see it."""
    exact, removed = exact_and_sampled(num_sampled=8, draws=4000, scale=0.1, uniform=True)
    _, kept = exact_and_sampled(
        num_sampled=8, draws=4000, scale=0.1, uniform=True, remove_hits=False
    )
    mean, se = mean_and_error(removed)
    assert (np.abs(mean - np.exp(exact)) < 5 * se).all()
    mean, se = mean_and_error(kept)
    assert (np.abs(mean - np.exp(exact) - 1) < 5 * se).all()
    assert (se < 0.15).all()  # so the 1 is resolved


def test_sampled_loss_is_biased_low_less_so_with_more_samples():
    gaps = []
    for num_sampled in (4, 32, 256):
        exact, estimates = exact_and_sampled(num_sampled, draws=1000)
        gaps.append(float(np.mean(exact - estimates.mean(0))))
    assert gaps[0] > gaps[1] > gaps[2] > 0, gaps


def test_proposals_and_draws():
    q = sampling.log_uniform_probs(1000)
    assert q.sum() == pytest.approx(1.0) and (np.diff(q) < 0).all()
    draws = sampling.draw_classes(q, 200_000, np.random.default_rng(0))
    assert draws.dtype == np.int64 and draws.min() >= 0 and draws.max() < 1000
    freq = np.bincount(draws, minlength=1000) / draws.size
    np.testing.assert_allclose(freq[:10], q[:10], rtol=0.05)
    u = sampling.unigram_probs(np.array([0, 0, 0, 2]), 4, uniform=0.2)
    np.testing.assert_allclose(u, [0.8 * 3 / 4 + 0.05, 0.05, 0.8 / 4 + 0.05, 0.05])
    assert u.sum() == pytest.approx(1.0)
    assert (
        sampling.draw_classes(np.array([0.0, 1.0, 0.0]), 50, np.random.default_rng(1)).tolist()
        == [1] * 50
    )
    with pytest.raises(ValueError, match="outside"):
        sampling.unigram_probs(np.array([5]), 4)


# --------------------------------------------------------------------------------------------
# Training: the models' chunked and sampled paths, and fit.


@pytest.mark.parametrize("kind", ["softmax-regression", "mlp"])
def test_models_chunked_loss_and_grad_match_plain(xp, blobs, kind):
    X, y, _, _ = blobs
    model = (
        SoftmaxRegression(num_inputs=5, num_outputs=3, sigma=0.5)
        if kind != "mlp"
        else MLP(num_inputs=5, hidden=(8, 4), num_outputs=3)
    )
    params = model.init(np.random.default_rng(0), xp=xp)
    XX, yy, ww = on(xp, X[:50], y[:50], np.linspace(0, 2, 50).astype(np.float32))
    for weight in (None, ww):
        losses, grads, logits = model.loss_and_grad(params, XX, yy, weight=weight)
        got_losses, got_grads, predicted = model.loss_and_grad_chunked(
            params, XX, yy, chunk_size=2, weight=weight
        )
        np.testing.assert_allclose(host(got_losses), host(losses), **F32)
        assert list(got_grads) == list(grads)  # same names, same order
        for name in grads:
            np.testing.assert_allclose(
                host(got_grads[name]), host(grads[name]), **F32, err_msg=name
            )
        np.testing.assert_array_equal(host(predicted), np.argmax(host(logits), axis=1))


def test_config_refuses_what_does_not_combine(blobs):
    for field in ("chunk_size", "sampled"):
        with pytest.raises(ConfigError, match=f"{field} must be an integer >= 0"):
            TrainConfig(**{field: -1})
        with pytest.raises(ConfigError, match="drop softmax=naive"):
            TrainConfig(**{field: 4}, softmax="naive")
    X, y, _, _ = blobs
    with pytest.raises(ConfigError, match="sampled=3 classes per step, but the model has only 3"):
        fit(
            SoftmaxRegression(num_inputs=5, num_outputs=3),
            (X, y),
            None,
            TrainConfig(sampled=3, epochs=1),
        )


@pytest.mark.slow
def test_fit_chunked_trains_the_same_model_on_every_backend(backend_name, backend_device, blobs):
    X, y, X_test, y_test = blobs
    model = MLP(num_inputs=5, hidden=(8,), num_outputs=3)
    config = TrainConfig(
        epochs=2,
        batch_size=64,
        lr=0.1,
        momentum=0.5,
        backend=backend_name,
        device=backend_device,
        log_every=0,
    )
    plain_run = fit(model, (X, y), (X_test, y_test), config)
    chunked = fit(
        model, (X, y), (X_test, y_test), TrainConfig(**{**config.to_dict(), "chunk_size": 2})
    )
    for name, value in plain_run.params.items():
        np.testing.assert_allclose(
            host(chunked.params[name]), host(value), rtol=1e-4, atol=1e-5, err_msg=name
        )
    for a, b in zip(plain_run.history.records, chunked.history.records, strict=True):
        assert a.train_acc == b.train_acc and a.test_acc == b.test_acc
        assert a.train_loss == pytest.approx(b.train_loss, rel=1e-5)
        assert a.test_loss == pytest.approx(b.test_loss, rel=1e-5)


@pytest.mark.slow
def test_book_recipe_chunked_gives_the_same_weights(fashion):
    """Fashion-MNIST, the book's softmax regression, 10 classes in chunks of 4 (the last one
    of 2): the same weights as the plain run within float32 rounding after two epochs."""
    model = SoftmaxRegression(num_inputs=784, num_outputs=10)
    train, test = (fashion.X_train, fashion.y_train), (fashion.X_test, fashion.y_test)
    config = TrainConfig(epochs=2, log_every=0)
    plain_run = fit(model, train, test, config)
    chunked = fit(model, train, test, TrainConfig(epochs=2, log_every=0, chunk_size=4))
    for name in ("W", "b"):
        want = plain_run.params[name]
        np.testing.assert_allclose(
            chunked.params[name], want, rtol=0, atol=1e-4 * np.abs(want).max(), err_msg=name
        )
    assert chunked.history.final.test_acc == pytest.approx(
        plain_run.history.final.test_acc, abs=1e-3
    )


@pytest.fixture(scope="module")
def tokens():
    return make_next_token(4096, 1024, vocab_size=2000, n_features=16, n_clusters=16, seed=3)


def test_next_token_data_has_its_stated_entropies():
    data = make_next_token(100_000, 0, vocab_size=50, n_clusters=5, n_features=5, seed=1)
    assert data.X_train.dtype == np.float32 and data.y_train.dtype == np.int64
    assert data.y_train.max() < 50
    groups = np.unique(data.X_train, axis=0, return_inverse=True)[1].reshape(-1)
    joint = np.zeros((groups.max() + 1, 50))
    np.add.at(joint, (groups, data.y_train), 1)
    p_group = joint.sum(1) / joint.sum()
    p_next = joint / joint.sum(1, keepdims=True)
    logs = np.log(np.where(p_next > 0, p_next, 1))
    conditional = -float(np.sum(p_group[:, None] * p_next * logs))
    marginal = joint.sum(0) / joint.sum()
    unigram = -float(np.sum(marginal[marginal > 0] * np.log(marginal[marginal > 0])))
    assert conditional == pytest.approx(data.entropy_conditional, abs=0.02)
    assert unigram == pytest.approx(data.entropy_unigram, abs=0.02)
    assert data.entropy_conditional < data.entropy_unigram < data.entropy_uniform
    again = make_next_token(100_000, 0, vocab_size=50, n_clusters=5, n_features=5, seed=1)
    np.testing.assert_array_equal(again.y_train, data.y_train)


@pytest.mark.slow
def test_sampled_training_lowers_the_exact_loss(tokens):
    """Next-token softmax regression over 2000 classes: sampled softmax (64 classes a step)
    lowers the exact test loss, below the best loss without the input, close to exact
    training (chunked)."""
    model = SoftmaxRegression(num_inputs=16, num_outputs=tokens.vocab_size, sigma=0.0)
    data = (tokens.X_train, tokens.y_train), (tokens.X_test, tokens.y_test)
    base = {"epochs": 4, "batch_size": 128, "lr": 2.0, "momentum": 0.9, "log_every": 0}
    sampled = fit(model, *data, TrainConfig(**base, sampled=64))
    exact = fit(model, *data, TrainConfig(**base, chunk_size=500))
    losses = sampled.history.column("test_loss")
    assert losses[0] < tokens.entropy_uniform
    assert losses[-1] < min(losses[0], tokens.entropy_unigram), losses
    assert losses[-1] < exact.history.final.test_loss + 0.3, exact.history.column("test_loss")
    train = sampled.history.column("train_loss")  # exact, not the sampled estimate
    assert train[0] == pytest.approx(
        fit(
            model, data[0], None, TrainConfig(**{**base, "epochs": 1}, sampled=64)
        ).history.final.train_loss
    )


def test_fit_sampled_on_every_backend_and_resumes_identically(backend_name, backend_device, tokens):
    """Sampled training compiles on JAX and TensorFlow (the draws are a step argument), and
    the draws depend on (seed, epoch, batch) alone: continuing from the first epoch's state
    gives the uninterrupted run's model."""
    model = SoftmaxRegression(num_inputs=16, num_outputs=tokens.vocab_size, sigma=0.0)
    X, y = tokens.X_train[:512], tokens.y_train[:512]
    config = TrainConfig(
        epochs=2,
        batch_size=128,
        lr=2.0,
        sampled=32,
        log_every=0,
        backend=backend_name,
        device=backend_device,
    )
    full = fit(model, (X, y), None, config)
    first = fit(model, (X, y), None, TrainConfig(**{**config.to_dict(), "epochs": 1}))
    continued = fit(model, (X, y), None, config, state=first.state, history=first.history)
    losses = full.history.column("train_loss")
    assert losses[1] < losses[0] < math.log(tokens.vocab_size) + 1e-3
    for name, value in full.params.items():
        np.testing.assert_array_equal(host(continued.params[name]), host(value), err_msg=name)


def test_cli_flags(tmp_path, offline, capsys):
    from softreg.cli import main

    out = tmp_path / "run"
    common = ["train", "--dataset", "synthetic", "--epochs", "1", "--quiet", "--no-plots"]
    assert main([*common, "--chunk-size", "2", "--out", str(out)]) == 0
    assert json.loads((out / "config.json").read_text())["chunk_size"] == 2
    assert main([*common, "--sampled", "5", "--out", str(tmp_path / "other")]) == 2
    assert "sampled=5 classes per step, but the model has only 3" in capsys.readouterr().err
