"""The chapter's math against the book's printed numbers, an exact decimal reference and
finite differences."""

from decimal import Decimal, getcontext

import numpy as np
import pytest

from softreg import ops

# SPEC §1 sample: y_hat and y from the book.
Y_HAT = np.array([[0.1, 0.3, 0.6], [0.3, 0.2, 0.5]], dtype=np.float32)
Y = np.array([0, 2])


def decimal_softmax(row):
    """Softmax of one row in 50-digit decimal arithmetic: an independent reference."""
    getcontext().prec = 50
    exps = [Decimal(float(v)).exp() for v in row]
    total = sum(exps)
    return np.array([float(e / total) for e in exps])


def decimal_logsumexp(row):
    getcontext().prec = 50
    return float(sum(Decimal(float(v)).exp() for v in row).ln())


def test_book_sample_values():
    np.testing.assert_allclose(ops.pick(Y_HAT, Y), [0.1, 0.5], rtol=1e-7)
    losses = ops.cross_entropy_naive(Y_HAT, Y)
    assert losses.dtype == np.float32
    np.testing.assert_allclose(np.round(losses, 4), [2.3026, 0.6931])
    assert round(float(losses.mean()), 4) == 1.4979
    assert ops.accuracy(Y_HAT, Y) == 0.5
    assert int(ops.count_correct(Y_HAT, Y)) == 1


def test_lecture_numpy_value_to_the_last_digit():
    z = np.array([[0.2, 0.1, -0.1]])
    y = np.array([0])
    # The lecture computes softmax naively, then the loss from its definition.
    assert float(ops.cross_entropy_naive(ops.softmax_naive(z), y)[0]) == 0.9729189131256584
    # Through log-sum-exp the float64 result agrees to within one unit in the last place.
    assert float(ops.cross_entropy(z, y)) == pytest.approx(0.9729189131256584, rel=3e-16)
    assert round(float(ops.cross_entropy(z.astype(np.float32), y)), 4) == 0.9729


@pytest.mark.parametrize(
    ("logits", "expected"),
    [
        ([[0.1, 0.2, 0.9], [1.1, 0.1, 0.2], [0.2, 2.1, 0.1]], 0.4966),
        ([[0.8, 0.2, 0.3], [0.2, 0.3, 0.5], [0.2, 0.2, 0.5]], 1.2389),
    ],
)
def test_lecture_batch_values(logits, expected):
    loss = ops.cross_entropy(np.array(logits, dtype=np.float32), np.array([2, 0, 1]))
    assert round(float(loss), 4) == expected


def test_softmax_rows_are_probabilities():
    rng = np.random.default_rng(0)
    for scale in (1e-3, 1, 30, 1e4):
        x = (rng.normal(size=(64, 10)) * scale).astype(np.float32)
        p = ops.softmax(x)
        assert p.dtype == np.float32
        assert np.all(p >= 0) and np.all(np.isfinite(p))
        np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)


@pytest.mark.parametrize(
    "row",
    [
        [100.0, 0.0, -1.0],
        [-1000.0, -1001.0, -1003.0],
        [1e4, 1e4 - 2, 0.0],
        [-150.0, -120.0, -101.0],
    ],
)
def test_stable_softmax_where_naive_fails(row):
    x = np.array([row], dtype=np.float32)
    reference = decimal_softmax(row)
    with np.errstate(all="ignore"):
        naive = ops.softmax_naive(x)[0]
    # The book's version overflows to nan, underflows to 0/0, or silently loses a probability.
    assert not np.allclose(naive, reference, rtol=1e-3, atol=0)
    np.testing.assert_allclose(ops.softmax(x)[0], reference, rtol=1e-6, atol=1e-30)
    # log_softmax is x - logsumexp(x): exact up to the float32 spacing of the inputs' magnitude.
    log_reference = np.array(row) - decimal_logsumexp(row)
    spacing = float(np.spacing(np.float32(np.max(np.abs(row)))))
    np.testing.assert_allclose(ops.log_softmax(x)[0], log_reference, rtol=1e-6, atol=2 * spacing)


def test_naive_softmax_agrees_on_moderate_input():
    x = np.random.default_rng(1).normal(size=(8, 5)).astype(np.float32)
    np.testing.assert_allclose(ops.softmax_naive(x), ops.softmax(x), rtol=1e-6)


def test_logsumexp_matches_decimal_and_handles_infinities():
    rows = [[100.0, 0.0, -1.0], [-1000.0, -1001.0, -1003.0], [1e4, 1e4, 0.0]]
    x = np.array(rows)
    for got, row in zip(ops.logsumexp(x, axis=1), rows, strict=True):
        assert got == pytest.approx(decimal_logsumexp(row), rel=1e-15)
    special = np.array([[-np.inf, -np.inf], [np.inf, 0.0], [np.nan, 0.0]])
    with np.errstate(all="ignore"):
        out = ops.logsumexp(special, axis=1)
    assert out[0] == -np.inf and out[1] == np.inf and np.isnan(out[2])
    assert ops.logsumexp(x, axis=1, keepdims=True).shape == (3, 1)


def test_cross_entropy_of_extreme_logits_is_finite_where_the_book_loss_is_not():
    logits = np.array([[0.0, 200.0], [-500.0, 500.0]], dtype=np.float32)
    y = np.array([0, 0])
    with np.errstate(all="ignore"):
        book = ops.cross_entropy_naive(ops.softmax_naive(logits), y)
    assert not np.all(np.isfinite(book))
    np.testing.assert_allclose(ops.cross_entropy(logits, y, reduction="none"), [200.0, 1000.0])


def test_reductions_and_nll_loss_semantics():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(7, 4)).astype(np.float32)
    y = rng.integers(0, 4, size=7)
    per_example = ops.cross_entropy(logits, y, reduction="none")
    assert per_example.shape == (7,)
    np.testing.assert_allclose(
        ops.cross_entropy(logits, y, reduction="sum"), per_example.sum(), rtol=1e-6
    )
    np.testing.assert_allclose(ops.cross_entropy(logits, y), per_example.mean(), rtol=1e-6)
    # nll_loss takes log-probabilities: cross_entropy = nll_loss(log_softmax(.)).
    np.testing.assert_allclose(
        ops.nll_loss(ops.log_softmax(logits), y), ops.cross_entropy(logits, y)
    )
    # ... and nll_loss of raw values just negates the picked entries (PyTorch semantics).
    np.testing.assert_allclose(ops.nll_loss(logits, y, reduction="none"), -logits[np.arange(7), y])
    with pytest.raises(ValueError, match="reduction"):
        ops.cross_entropy(logits, y, reduction="avg")


@pytest.mark.parametrize("bad", [[0, 4], [-1, 0]])
def test_labels_out_of_range_are_refused(bad):
    logits = np.zeros((2, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="outside"):
        ops.cross_entropy(logits, np.array(bad))
    with pytest.raises(ValueError, match="outside"):
        ops.cross_entropy_naive(ops.softmax(logits), np.array(bad))


def test_one_hot():
    out = ops.one_hot(np.array([2, 0]), 3)
    np.testing.assert_array_equal(out, [[0, 0, 1], [1, 0, 0]])
    assert out.dtype == np.float32
    assert ops.one_hot(np.array([1]), 2, dtype=np.float64).dtype == np.float64


def test_accuracy_of_empty_batch_is_an_error():
    with pytest.raises(ValueError, match="empty"):
        ops.accuracy(np.zeros((0, 3)), np.zeros(0, dtype=np.int64))


def test_cross_entropy_with_grad_matches_loss_and_finite_differences():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(6, 5)) * 3
    y = rng.integers(0, 5, size=6)
    losses, dlogits = ops.cross_entropy_with_grad(logits, y)
    np.testing.assert_allclose(losses, ops.cross_entropy(logits, y, reduction="none"), rtol=1e-12)
    # Analytic form (softmax - onehot) / n ...
    np.testing.assert_allclose(
        dlogits, (ops.softmax(logits) - ops.one_hot(y, 5, dtype=float)) / 6, rtol=1e-12
    )
    # ... and central finite differences of the mean loss, in float64.
    eps = 1e-6
    numeric = np.zeros_like(logits)
    for i in np.ndindex(*logits.shape):
        plus, minus = logits.copy(), logits.copy()
        plus[i] += eps
        minus[i] -= eps
        numeric[i] = (ops.cross_entropy(plus, y) - ops.cross_entropy(minus, y)) / (2 * eps)
    np.testing.assert_allclose(dlogits, numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_with_grad_indexed_path_equals_one_hot_form(weighted):
    """NumPy (and PyTorch) pick each row's label by index and form the gradient in place;
    namespaces without that indexing use a one-hot matrix. The one-hot form, written out
    here on the same (column-major) layout, gives the same float32 numbers bit for bit."""
    rng = np.random.default_rng(5)
    logits = (rng.normal(size=(257, 10)) * 4).astype(np.float32)
    y = rng.integers(0, 10, size=257)
    weight = rng.uniform(0, 2, size=257).astype(np.float32) if weighted else None
    losses, dlogits = ops.cross_entropy_with_grad(logits, y, weight=weight)

    shifted = np.asfortranarray(logits) - np.asfortranarray(logits).max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    sum_exp = exp.sum(axis=1, keepdims=True)
    one_hot = (y[:, None] == np.arange(10)).astype(np.float32)
    want_losses = np.log(sum_exp[:, 0]) - (shifted * one_hot).sum(axis=1)
    want_grad = exp / sum_exp - one_hot
    if weighted:
        want_losses, want_grad = want_losses * weight, want_grad * (weight[:, None] / 257)
    else:
        want_grad = want_grad / 257
    assert losses.dtype == dlogits.dtype == np.float32
    np.testing.assert_array_equal(losses, want_losses)
    np.testing.assert_array_equal(dlogits, want_grad)


def test_cross_entropy_with_grad_stays_finite_for_huge_logits():
    logits = np.array([[1e4, -1e4, 0.0], [-1e30, 0.0, 1e30]], dtype=np.float32)
    losses, dlogits = ops.cross_entropy_with_grad(logits, np.array([1, 2]))
    assert np.all(np.isfinite(losses)) and np.all(np.isfinite(dlogits))
    np.testing.assert_allclose(losses, [2e4, 0.0])
