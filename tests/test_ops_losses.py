"""softreg's losses against PyTorch's: class weights, label smoothing and every reduction.

Each comparison runs once per array namespace (the ``xp`` fixture); the PyTorch reference is
computed from the same float32 NumPy data with ``torch.nn.functional`` (and its modules).
"""

import math

import numpy as np
import pytest

from softreg import backend, ops

F32 = {"rtol": 1e-5, "atol": 1e-6}  # float32 agreement; the errors seen are ~3e-7 relative
REDUCTIONS = ("none", "sum", "mean")
SMOOTHINGS = (0.0, 0.1, 0.5, 1.0)
NUM_CLASSES = 10


def host(x):
    return backend.to_numpy(x)


def cases():
    """Random, huge and very negative float32 logits, with labels and class weights."""
    rng = np.random.default_rng(7)
    logits = {
        "normal": rng.normal(size=(16, NUM_CLASSES)),
        "scale 1e4": rng.normal(size=(16, NUM_CLASSES)) * 1e4,
        "all below -100": -150 + rng.normal(size=(16, NUM_CLASSES)),
    }
    y = rng.integers(0, NUM_CLASSES, size=16)
    weight = rng.uniform(0.1, 3.0, size=NUM_CLASSES).astype(np.float32)
    return {name: x.astype(np.float32) for name, x in logits.items()}, y, weight


CASES = list(cases()[0])


def torch_ref(fn, x, y, weight=None, **kwargs):
    """``fn`` (a torch.nn.functional loss) on float32 NumPy inputs, as a NumPy result."""
    torch = pytest.importorskip("torch")
    w = None if weight is None else torch.from_numpy(weight)
    return fn(torch.from_numpy(x), torch.from_numpy(y), weight=w, **kwargs).numpy()


def on(xp, *arrays):
    return [None if a is None else backend.asarray(a, xp) for a in arrays]


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("label_smoothing", SMOOTHINGS)
@pytest.mark.parametrize("case", CASES)
def test_cross_entropy_matches_torch(xp, case, label_smoothing, weighted):
    torch = pytest.importorskip("torch")
    logits, y, weight = cases()
    x, w = logits[case], weight if weighted else None
    xx, yy, ww = on(xp, x, y, w)
    for reduction in REDUCTIONS:
        want = torch_ref(
            torch.nn.functional.cross_entropy,
            x,
            y,
            w,
            label_smoothing=label_smoothing,
            reduction=reduction,
        )
        got = host(
            ops.cross_entropy(
                xx, yy, weight=ww, label_smoothing=label_smoothing, reduction=reduction, xp=xp
            )
        )
        assert got.shape == want.shape and got.dtype == np.float32, reduction
        np.testing.assert_allclose(got, want, **F32, err_msg=reduction)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("case", CASES)
def test_nll_loss_matches_torch(xp, case, weighted):
    torch = pytest.importorskip("torch")
    logits, y, weight = cases()
    w = weight if weighted else None
    log_probs = torch.log_softmax(torch.from_numpy(logits[case]), dim=1).numpy()
    # nll_loss only picks and weighs: raw scores are as good an input as log-probabilities.
    for name, x in (("log-probabilities", log_probs), ("raw scores", logits[case])):
        xx, yy, ww = on(xp, x, y, w)
        for reduction in REDUCTIONS:
            want = torch_ref(torch.nn.functional.nll_loss, x, y, w, reduction=reduction)
            got = host(ops.nll_loss(xx, yy, weight=ww, reduction=reduction, xp=xp))
            assert got.shape == want.shape and got.dtype == np.float32
            np.testing.assert_allclose(got, want, **F32, err_msg=f"{name}, {reduction}")


def test_loss_modules_agree(xp):
    """The modules (CrossEntropyLoss, NLLLoss) hold the same semantics as the functions."""
    torch = pytest.importorskip("torch")
    logits, y, weight = cases()
    x = logits["normal"]
    xx, yy, ww = on(xp, x, y, weight)
    tx, ty, tw = torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(weight)
    for reduction in REDUCTIONS:
        module = torch.nn.CrossEntropyLoss(weight=tw, label_smoothing=0.1, reduction=reduction)
        got = ops.cross_entropy(xx, yy, weight=ww, label_smoothing=0.1, reduction=reduction, xp=xp)
        np.testing.assert_allclose(host(got), module(tx, ty).numpy(), **F32, err_msg=reduction)
        module = torch.nn.NLLLoss(weight=tw, reduction=reduction)
        got = ops.nll_loss(ops.log_softmax(xx, xp=xp), yy, weight=ww, reduction=reduction, xp=xp)
        want = module(torch.log_softmax(tx, dim=1), ty).numpy()
        np.testing.assert_allclose(host(got), want, **F32, err_msg=reduction)


def test_semantics_written_out():
    """The formulas, in NumPy float64, independently of PyTorch: what the comparisons pin."""
    logits, y, w = cases()
    x = logits["normal"].astype(np.float64)
    w = w.astype(np.float64)
    lp = x - x.max(1, keepdims=True)
    lp -= np.log(np.exp(lp).sum(1, keepdims=True))
    n = np.arange(len(y))
    nll = -w[y] * lp[n, y]
    smooth = -(lp * w).sum(1)
    s, k = 0.3, NUM_CLASSES
    # "mean" with weights divides by the labels' total weight, not by n ...
    assert float(ops.nll_loss(lp, y, weight=w)) == pytest.approx(nll.sum() / w[y].sum(), 1e-13)
    # ... in the smoothing term too, although that term weighs every class, not the label.
    got = float(ops.cross_entropy(x, y, weight=w, label_smoothing=s))
    want = (1 - s) * nll.sum() / w[y].sum() + s / k * smooth.sum() / w[y].sum()
    assert got == pytest.approx(want, rel=1e-13)
    per_example = ops.cross_entropy(x, y, weight=w, label_smoothing=s, reduction="none")
    np.testing.assert_allclose(per_example, (1 - s) * nll + s / k * smooth, rtol=1e-13)
    # So with weights, "mean" is not the mean of "none".
    assert got != pytest.approx(float(per_example.mean()), rel=1e-3)


def test_weighted_mean_is_scale_invariant_and_uniform_weights_change_nothing(xp):
    logits, y, weight = cases()
    xx, yy = on(xp, logits["normal"], y)
    plain = float(ops.cross_entropy(xx, yy, xp=xp))
    ones = backend.asarray(np.ones(NUM_CLASSES, dtype=np.float32), xp)
    assert float(ops.cross_entropy(xx, yy, weight=ones, xp=xp)) == pytest.approx(plain, 1e-6)
    w = backend.asarray(weight, xp)
    w7 = backend.asarray(weight * 7, xp)
    for s in SMOOTHINGS:
        a = float(ops.cross_entropy(xx, yy, weight=w, label_smoothing=s, xp=xp))
        b = float(ops.cross_entropy(xx, yy, weight=w7, label_smoothing=s, xp=xp))
        assert a == pytest.approx(b, rel=1e-5)
    # "sum" is not normalised: it scales with the weights.
    a = float(ops.cross_entropy(xx, yy, weight=w, reduction="sum", xp=xp))
    b = float(ops.cross_entropy(xx, yy, weight=w7, reduction="sum", xp=xp))
    assert b == pytest.approx(7 * a, rel=1e-5)


def test_defaults_return_exactly_the_unchecked_loss(xp):
    """The new keywords at their defaults (or spelled out) leave the old path bit for bit."""
    logits, y, _ = cases()
    xx, yy = on(xp, logits["normal"], y)
    per_example = host(ops.cross_entropy_unchecked(xx, yy, xp=xp))
    for kwargs in ({}, {"label_smoothing": 0.0}, {"label_smoothing": 0}, {"weight": None}):
        got = host(ops.cross_entropy(xx, yy, reduction="none", xp=xp, **kwargs))
        np.testing.assert_array_equal(got, per_example)
        mean = ops.cross_entropy(xx, yy, xp=xp, **kwargs)
        assert host(mean) == host(xp.mean(ops.cross_entropy_unchecked(xx, yy, xp=xp)))


def test_lecture_value_in_float64(xp):
    z = backend.asarray(np.array([[0.2, 0.1, -0.1]]), xp)
    if host(z).dtype != np.float64:
        pytest.skip(f"{xp.__name__} keeps float64 input as {host(z).dtype} (JAX without x64)")
    loss = float(ops.cross_entropy(z, backend.asarray(np.array([0]), xp), xp=xp))
    assert loss == pytest.approx(0.9729189131256584, rel=3e-16)


@pytest.mark.parametrize(
    ("logits", "expected"),
    [
        ([[0.1, 0.2, 0.9], [1.1, 0.1, 0.2], [0.2, 2.1, 0.1]], 0.4966),
        ([[0.8, 0.2, 0.3], [0.2, 0.3, 0.5], [0.2, 0.2, 0.5]], 1.2389),
    ],
)
def test_lecture_batch_values(xp, logits, expected):
    xx, yy = on(xp, np.array(logits, dtype=np.float32), np.array([2, 0, 1]))
    assert round(float(ops.cross_entropy(xx, yy, xp=xp)), 4) == expected
    # Uniform weights (any scale) keep the lecture's number.
    w = backend.asarray(np.full(3, 2.5, dtype=np.float32), xp)
    assert round(float(ops.cross_entropy(xx, yy, weight=w, xp=xp)), 4) == expected


def test_minus_infinity_logit_with_and_without_smoothing():
    """PyTorch's semantics at -inf: finite without smoothing (weighted or not: s = 0 skips the
    smoothing term rather than multiplying inf by 0); smoothing adds -log(0) = inf, and a zero
    weight on that class makes 0 * inf = nan. Checked against torch itself."""
    x = np.array([[0.0, -np.inf, 1.0]], dtype=np.float32)
    y = np.array([2])
    w = np.array([1.0, 0.0, 1.0], dtype=np.float32)
    with np.errstate(all="ignore"):
        got = [
            float(ops.cross_entropy(x, y)),
            float(ops.cross_entropy(x, y, weight=w)),
            float(ops.cross_entropy(x, y, label_smoothing=0.1)),
            float(ops.cross_entropy(x, y, weight=w, label_smoothing=0.1)),
        ]
    assert got[0] == got[1] == pytest.approx(math.log1p(math.exp(-1.0)), rel=1e-6)
    assert got[2] == math.inf and math.isnan(got[3])
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    want = [
        float(torch_ref(F.cross_entropy, x, y)),
        float(torch_ref(F.cross_entropy, x, y, w)),
        float(torch_ref(F.cross_entropy, x, y, label_smoothing=0.1)),
        float(torch_ref(F.cross_entropy, x, y, w, label_smoothing=0.1)),
    ]
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_labels_weighing_nothing_give_nan_like_torch():
    x = np.zeros((2, 3), dtype=np.float32)
    y = np.array([0, 0])
    w = np.array([0.0, 1.0, 1.0], dtype=np.float32)
    with np.errstate(all="ignore"):
        assert math.isnan(float(ops.cross_entropy(x, y, weight=w)))
    assert float(ops.cross_entropy(x, y, weight=w, reduction="sum")) == 0.0
    torch = pytest.importorskip("torch")
    assert math.isnan(float(torch_ref(torch.nn.functional.cross_entropy, x, y, w)))


def test_weight_of_another_dtype_or_a_list_is_cast(xp):
    logits, y, weight = cases()
    xx, yy = on(xp, logits["normal"], y)
    want = host(ops.cross_entropy(xx, yy, weight=backend.asarray(weight, xp), xp=xp))
    got = ops.cross_entropy(xx, yy, weight=[float(v) for v in weight], xp=xp)
    assert host(got).dtype == np.float32
    np.testing.assert_allclose(host(got), want, rtol=1e-6)
    as_int = backend.asarray(np.arange(1, NUM_CLASSES + 1), xp)
    got = ops.nll_loss(xx, yy, weight=as_int, reduction="sum", xp=xp)
    x = logits["normal"]
    expected = -((y + 1) * x[np.arange(len(y)), y]).sum()
    assert host(got).dtype == np.float32
    np.testing.assert_allclose(host(got), expected, rtol=1e-5)


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
@pytest.mark.parametrize(
    ("weight", "message"),
    [
        (np.ones(3, dtype=np.float32), r"one entry per class \(4\), got shape \(3,\)"),
        (np.ones((1, 4), dtype=np.float32), r"one entry per class \(4\), got shape \(1, 4\)"),
        (np.array([1.0, -0.5, 1.0, 1.0], dtype=np.float32), "non-negative, got -0.5"),
        (np.array([1.0, np.nan, 1.0, 1.0], dtype=np.float32), "finite"),
        (np.array([1.0, np.inf, 1.0, 1.0], dtype=np.float32), "finite"),
        (np.array([1.0, 1e300, 1.0, 1.0]), "finite"),  # inf once cast to float32
    ],
)
def test_bad_weight_is_refused(xp, weight, message):
    xx, yy, ww = on(xp, np.zeros((2, 4), dtype=np.float32), np.array([0, 3]), weight)
    with pytest.raises(ValueError, match=f"weight must be .*{message}"):
        ops.cross_entropy(xx, yy, weight=ww, xp=xp)
    with pytest.raises(ValueError, match=f"weight must be .*{message}"):
        ops.nll_loss(xx, yy, weight=ww, xp=xp)


@pytest.mark.parametrize("bad", [-0.1, 1.5, math.nan, math.inf, -math.inf, "0.1", None, True])
def test_bad_label_smoothing_is_refused(bad):
    x = np.zeros((2, 4), dtype=np.float32)
    with pytest.raises(ValueError, match=r"label_smoothing must be a float in \[0, 1\], got"):
        ops.cross_entropy(x, np.array([0, 3]), label_smoothing=bad)


@pytest.mark.parametrize("good", [0, 1, np.float32(0.25), np.float64(1.0)])
def test_label_smoothing_accepts_any_real_in_range(good):
    x = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    y = np.array([0, 3, 1])
    torch = pytest.importorskip("torch")
    want = torch_ref(torch.nn.functional.cross_entropy, x, y, label_smoothing=float(good))
    np.testing.assert_allclose(ops.cross_entropy(x, y, label_smoothing=good), want, **F32)


@pytest.mark.parametrize("fn", [ops.cross_entropy, ops.nll_loss])
@pytest.mark.parametrize("bad", ["avg", "Mean", "", None])
def test_bad_reduction_is_refused(fn, bad):
    x = np.zeros((2, 4), dtype=np.float32)
    with pytest.raises(ValueError, match=r"reduction must be one of \('mean', 'sum', 'none'\)"):
        fn(x, np.array([0, 3]), reduction=bad)
    with pytest.raises(ValueError, match="reduction must be one of"):
        fn(x, np.array([0, 3]), weight=np.ones(4, dtype=np.float32), reduction=bad)
    # Arguments are checked before the data: a bad label does not hide a bad reduction.
    with pytest.raises(ValueError, match="reduction must be one of"):
        fn(x, np.array([0, 9]), reduction=bad)


@pytest.mark.parametrize(
    "kwargs", [{}, {"weight": np.ones(4, dtype=np.float32)}, {"label_smoothing": 0.2}]
)
def test_labels_are_still_range_checked(kwargs):
    x = np.zeros((2, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="label 4 outside"):
        ops.cross_entropy(x, np.array([0, 4]), **kwargs)
    with pytest.raises(ValueError, match="label -1 outside"):
        ops.cross_entropy(x, np.array([-1, 0]), **kwargs)
    if "label_smoothing" not in kwargs:
        with pytest.raises(ValueError, match="label 4 outside"):
            ops.nll_loss(x, np.array([0, 4]), **kwargs)
