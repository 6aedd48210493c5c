"""Properties of softmax, log-softmax, log-sum-exp and the cross-entropies, for any finite input
of any magnitude (Hypothesis), plus the soft-label cross-entropy's agreement with index
picking, label smoothing and PyTorch.

NumPy runs the full set; the ``xp`` fixture repeats a few properties on every namespace with
few examples (each backend call is slow next to NumPy's).
"""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from softreg import backend, ops

SETTINGS = settings(max_examples=60, deadline=None, database=None)
# xp is a function-scoped fixture holding a module: nothing to reset between examples.
XP_SETTINGS = settings(
    max_examples=8,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

# Widest magnitude per dtype. Softmax subtracts the row maximum, and x - max overflows to -inf
# once a row spans more than the dtype's range (max - min > finfo.max): then a finite input
# gives a spurious 0. Keeping |x| <= finfo.max / 2 (exact: a power-of-two scaling) makes every
# difference finite, so "no nan/inf for finite input" is a fair claim over the range tested.
BOUND = {d: float(np.finfo(d).max) / 2 for d in (np.float32, np.float64)}
EPS = {np.float32: float(np.finfo(np.float32).eps), np.float64: float(np.finfo(np.float64).eps)}
TINY32 = float(np.finfo(np.float32).smallest_normal)


def matrices(dtype, bound=None, shape=None):
    """``(n, k)`` arrays of finite ``dtype`` floats in ``[-bound, bound]``: of ``shape``, or of
    any shape with 1 <= n <= 6, 1 <= k <= 12."""
    bound = BOUND[dtype] if bound is None else bound
    elements = st.floats(
        -bound,
        bound,
        allow_nan=False,
        allow_infinity=False,
        width=32 if dtype == np.float32 else 64,
    )
    shapes = st.tuples(st.integers(1, 6), st.integers(1, 12)) if shape is None else shape
    return arrays(dtype, shapes, elements=elements)


def with_labels(mats):
    """``(logits, labels)`` with labels in range for the logits' columns."""
    return mats.flatmap(
        lambda x: st.tuples(
            st.just(x), arrays(np.int64, (x.shape[0],), elements=st.integers(0, x.shape[1] - 1))
        )
    )


any_dtype = st.sampled_from([np.float32, np.float64])
wide = any_dtype.flatmap(matrices)


def ref_softmax64(x):
    """Float64 softmax with NumPy, independent of softreg (shift by the max, then normalise)."""
    x = x.astype(np.float64)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def ref_log_softmax64(x):
    x = x.astype(np.float64)
    shifted = x - x.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


# ---- softmax -----------------------------------------------------------------------------


@SETTINGS
@given(wide)
def test_softmax_rows_are_finite_probabilities_summing_to_one(x):
    p = ops.softmax(x)
    assert p.dtype == x.dtype and p.shape == x.shape
    assert np.all(np.isfinite(p))
    assert np.all((p >= 0) & (p <= 1))
    k = x.shape[1]
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=0, atol=2 * k * EPS[x.dtype.type])
    # The row maximum's entry is the largest probability and at least 1/k.
    rows = np.arange(x.shape[0])
    assert np.all(p[rows, x.argmax(axis=1)] >= (1 - k * EPS[x.dtype.type]) / k)


@SETTINGS
@given(
    any_dtype.flatmap(
        lambda d: st.tuples(matrices(d, bound=1e4), st.floats(-1e4, 1e4, width=32).map(d))
    )
)
def test_softmax_is_shift_invariant(args):
    x, c = args
    shifted = x + c
    # Rounding x + c moves a logit by up to eps * |x + c| (exact for float64 small integers,
    # not in general), and a probability moves by at most 1/4 of a logit's move per logit.
    eps = EPS[x.dtype.type]
    atol = 2 * eps * x.shape[1] * (np.abs(x).max() + abs(float(c)) + 1)
    np.testing.assert_allclose(ops.softmax(shifted), ops.softmax(x), rtol=0, atol=atol)


@SETTINGS
@given(matrices(np.float32))
def test_float32_softmax_agrees_with_a_float64_reference(x):
    # Error sources: x - max rounded in float32 (relative eps/2 * |x - max|, at most ~104 for
    # a probability that is not below the smallest normal), exp and the sum: a few hundred eps.
    # Below the smallest normal float32 keeps no relative precision: atol there.
    np.testing.assert_allclose(
        ops.softmax(x), ref_softmax64(x), rtol=200 * EPS[np.float32], atol=TINY32
    )


# ---- log_softmax and logsumexp -------------------------------------------------------------


@SETTINGS
@given(wide)
def test_log_softmax_is_finite_nonpositive_and_logsumexp_is_bounded(x):
    ls = ops.log_softmax(x)
    assert np.all(np.isfinite(ls)) and np.all(ls <= 0)
    lse = ops.logsumexp(x, axis=1)
    assert np.all(np.isfinite(lse))
    # max(x) <= logsumexp(x) <= max(x) + log(k), up to one rounding at max's magnitude.
    m = x.max(axis=1).astype(np.float64)
    slack = 4 * EPS[x.dtype.type] * (np.abs(m) + math.log(x.shape[1]) + 1)
    assert np.all(lse >= m - slack)
    assert np.all(lse <= m + math.log(x.shape[1]) + slack)


@SETTINGS
@given(wide)
def test_log_softmax_is_log_of_softmax_where_softmax_is_not_tiny(x):
    ls = ops.log_softmax(x)
    with np.errstate(divide="ignore"):
        log_p = np.log(ops.softmax(x))
    # Where p is a normal number both are accurate to a few eps of their magnitude (|log p| <
    # 87 in float32); where p has underflowed, log(p) is -inf or coarse and log_softmax is not.
    normal = ops.softmax(x) >= np.finfo(x.dtype).smallest_normal
    assert normal.any()  # at least the row maximum's entry
    atol = 8 * EPS[x.dtype.type] * (np.abs(ls) + math.log(x.shape[1]) + 1)
    assert np.all(np.abs(ls - log_p)[normal] <= atol[normal])


@SETTINGS
@given(matrices(np.float32))
def test_float32_log_softmax_and_logsumexp_agree_with_a_float64_reference(x):
    eps = EPS[np.float32]
    want = ref_log_softmax64(x)
    # x - max is rounded once in float32 (eps/2 of its size); log of the sum adds a few eps.
    assert np.all(np.abs(ops.log_softmax(x) - want) <= 4 * eps * (np.abs(want) + 1))
    x64 = x.astype(np.float64)
    m = x64.max(axis=1)
    lse_want = m + np.log(np.exp(x64 - m[:, None]).sum(axis=1))
    assert np.all(np.abs(ops.logsumexp(x, axis=1) - lse_want) <= 4 * eps * (np.abs(m) + 1))


# ---- cross_entropy -------------------------------------------------------------------------


@SETTINGS
@given(any_dtype.flatmap(lambda d: with_labels(matrices(d))))
def test_cross_entropy_is_nonnegative_and_minus_log_softmax_at_the_label(args):
    x, y = args
    loss = ops.cross_entropy(x, y, reduction="none")
    assert loss.shape == y.shape and np.all(np.isfinite(loss))
    assert np.all(loss >= 0)
    np.testing.assert_array_equal(loss, -ops.log_softmax(x)[np.arange(len(y)), y])
    # A loss can reach max - min ~ finfo.max: the mean's sum may overflow, here and in ops.
    with np.errstate(over="ignore"):
        np.testing.assert_allclose(ops.cross_entropy(x, y), loss.mean(), rtol=1e-6)


@SETTINGS
@given(with_labels(matrices(np.float32)))
def test_float32_cross_entropy_agrees_with_a_float64_reference(args):
    x, y = args
    want = -ref_log_softmax64(x)[np.arange(len(y)), y]
    got = ops.cross_entropy(x, y, reduction="none")
    assert np.all(np.abs(got - want) <= 4 * EPS[np.float32] * (want + 1))


# ---- cross_entropy_soft: properties ----------------------------------------------------------


def dirichlet_targets(shape, seed):
    """Random probability rows, some entries exactly 0 (as soft labels often have)."""
    rng = np.random.default_rng(seed)
    t = rng.dirichlet(np.full(shape[1], 0.5), size=shape[0])
    t[rng.random(shape) < 0.3] = 0
    t[np.arange(shape[0]), rng.integers(0, shape[1], size=shape[0])] += 0.1  # no all-0 row
    return t / t.sum(axis=1, keepdims=True)


@SETTINGS
@given(any_dtype.flatmap(lambda d: with_labels(matrices(d))))
def test_soft_cross_entropy_of_one_hot_targets_is_index_picking(args):
    x, y = args
    t = ops.one_hot(y, x.shape[1], dtype=x.dtype)
    np.testing.assert_array_equal(
        ops.cross_entropy_soft(x, t, reduction="none"), ops.cross_entropy(x, y, reduction="none")
    )


@SETTINGS
@given(matrices(np.float64, bound=50.0), st.integers(0, 2**32 - 1))
def test_soft_cross_entropy_is_at_least_the_targets_entropy(x, seed):
    # Gibbs' inequality: H(t, softmax(x)) >= H(t), with equality when softmax(x) = t.
    t = dirichlet_targets(x.shape, seed)
    with np.errstate(divide="ignore"):
        log_t = np.log(t)
    entropy = -(t * np.where(t > 0, log_t, 0)).sum(axis=1)
    loss = ops.cross_entropy_soft(x, t, reduction="none")
    assert np.all(loss >= entropy - 1e-9 * (1 + entropy))
    # Logits log(t) (with -inf where t = 0) reproduce t: the loss is the entropy itself.
    np.testing.assert_allclose(
        ops.cross_entropy_soft(log_t, t, reduction="none"), entropy, rtol=1e-12, atol=1e-12
    )


# ---- the same properties on every namespace ------------------------------------------------
# One shape: JAX compiles every operation once per shape, which would dominate the run time.
XP_SHAPE = (4, 6)


@XP_SETTINGS
@given(x=matrices(np.float32, shape=XP_SHAPE))
def test_xp_softmax_rows_are_finite_probabilities(xp, x):
    p = backend.to_numpy(ops.softmax(backend.asarray(x, xp)))
    assert np.all(np.isfinite(p)) and np.all((p >= 0) & (p <= 1))
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=0, atol=2 * x.shape[1] * EPS[np.float32])
    np.testing.assert_allclose(p, ref_softmax64(x), rtol=200 * EPS[np.float32], atol=TINY32)


@XP_SETTINGS
@given(args=with_labels(matrices(np.float32, shape=XP_SHAPE)))
def test_xp_cross_entropies_are_finite_and_agree(xp, args):
    x, y = args
    xx, yy = backend.asarray(x, xp), backend.asarray(y, xp)
    loss = backend.to_numpy(ops.cross_entropy(xx, yy, reduction="none"))
    want = -ref_log_softmax64(x)[np.arange(len(y)), y]
    assert np.all(np.isfinite(loss)) and np.all(loss >= 0)
    assert np.all(np.abs(loss - want) <= 4 * EPS[np.float32] * (want + 1))
    t = ops.one_hot(yy, x.shape[1], dtype=xx.dtype, xp=xp)
    soft = backend.to_numpy(ops.cross_entropy_soft(xx, t, reduction="none"))
    np.testing.assert_allclose(soft, loss, rtol=1e-6, atol=1e-6)


# ---- cross_entropy_soft and smooth_labels: examples ------------------------------------------

F32 = {"rtol": 1e-5, "atol": 1e-6}
REDUCTIONS = ("none", "sum", "mean")


def cases():
    """Ordinary, huge and very negative float32 logits (10 classes) with labels."""
    rng = np.random.default_rng(11)
    base = rng.normal(size=(16, 10))
    logits = {"normal": base, "scale 1e4": base * 1e4, "all below -100": base - 150}
    return {k: v.astype(np.float32) for k, v in logits.items()}, rng.integers(0, 10, size=16)


@pytest.mark.parametrize("case", list(cases()[0]))
def test_soft_one_hot_matches_cross_entropy_on_every_backend(xp, case):
    logits, y = cases()
    xx, yy = backend.asarray(logits[case], xp), backend.asarray(y, xp)
    t = ops.one_hot(yy, 10, dtype=xx.dtype, xp=xp)
    for reduction in REDUCTIONS:
        np.testing.assert_allclose(
            backend.to_numpy(ops.cross_entropy_soft(xx, t, reduction=reduction)),
            backend.to_numpy(ops.cross_entropy(xx, yy, reduction=reduction)),
            **F32,
        )


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.5, 1.0])
@pytest.mark.parametrize("case", list(cases()[0]))
def test_smoothed_targets_match_label_smoothing_on_every_backend(xp, case, smoothing):
    logits, y = cases()
    xx, yy = backend.asarray(logits[case], xp), backend.asarray(y, xp)
    t = ops.smooth_labels(yy, 10, smoothing, dtype=xx.dtype, xp=xp)
    for reduction in REDUCTIONS:
        want = ops.cross_entropy(xx, yy, label_smoothing=smoothing, reduction=reduction)
        np.testing.assert_allclose(
            backend.to_numpy(ops.cross_entropy_soft(xx, t, reduction=reduction)),
            backend.to_numpy(want),
            **F32,
        )


@pytest.mark.parametrize("case", list(cases()[0]))
def test_soft_cross_entropy_matches_torch_probability_targets(case):
    torch = pytest.importorskip("torch")
    logits, y = cases()
    x = logits[case]
    t = dirichlet_targets(x.shape, seed=5).astype(np.float32)
    for reduction in REDUCTIONS:
        want = torch.nn.functional.cross_entropy(
            torch.from_numpy(x), torch.from_numpy(t), reduction=reduction
        ).numpy()
        np.testing.assert_allclose(ops.cross_entropy_soft(x, t, reduction=reduction), want, **F32)


def test_zero_target_against_minus_inf_logit_contributes_nothing():
    # 0 * log 0 = 0 by the definition's convention (torch gives nan here).
    x = np.array([[-np.inf, 1.0, 2.0]], dtype=np.float32)
    loss = ops.cross_entropy_soft(x, np.array([[0.0, 0.25, 0.75]], dtype=np.float32))
    want = -(0.25 * ops.log_softmax(x)[0, 1] + 0.75 * ops.log_softmax(x)[0, 2])
    assert np.isfinite(loss) and loss == pytest.approx(want, rel=1e-6)
    # A positive target on a -inf logit is a certain miss: infinite loss.
    assert ops.cross_entropy_soft(x, np.array([[0.5, 0.5, 0.0]], dtype=np.float32)) == np.inf


def test_smooth_labels_values():
    y = np.array([2, 0])
    np.testing.assert_array_equal(ops.smooth_labels(y, 3, 0.0), ops.one_hot(y, 3))
    t = ops.smooth_labels(y, 4, 0.2, dtype=np.float64)
    assert t.dtype == np.float64
    np.testing.assert_allclose(t, [[0.05, 0.05, 0.85, 0.05], [0.85, 0.05, 0.05, 0.05]])
    np.testing.assert_allclose(ops.smooth_labels(y, 4, 1.0), 0.25)
    assert ops.smooth_labels(y, 4, 0.1).dtype == np.float32


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        (np.full((2, 4), 1 / 4), "shape"),
        (np.full((3,), 1 / 3), "shape"),
        (np.array([[1.2, -0.2, 0.0], [0.0, 0.0, 1.0]]), "non-negative"),
        (np.array([[0.5, 0.4, 0.0], [0.0, 0.0, 1.0]]), "sum to 1"),
        (np.array([[np.nan, 0.5, 0.5], [0.0, 0.0, 1.0]]), "finite"),
    ],
)
def test_soft_targets_are_validated(targets, message):
    logits = np.zeros((2, 3), dtype=np.float32)
    with pytest.raises(ValueError, match=message):
        ops.cross_entropy_soft(logits, targets.astype(np.float32))


def test_soft_cross_entropy_and_smooth_labels_refuse_bad_arguments():
    logits = np.zeros((2, 3))
    with pytest.raises(ValueError, match="reduction"):
        ops.cross_entropy_soft(logits, np.full((2, 3), 1 / 3), reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing"):
        ops.smooth_labels(np.array([0, 1]), 3, 1.5)
    with pytest.raises(ValueError, match="outside"):
        ops.smooth_labels(np.array([0, 3]), 3, 0.1)
    # Rounding is not a mistake: float32 rows off by a few eps are accepted.
    t = np.full((2, 3), 1 / 3, dtype=np.float32)
    assert np.isclose(ops.cross_entropy_soft(logits.astype(np.float32), t), math.log(3))
