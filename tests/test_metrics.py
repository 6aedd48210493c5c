"""Decisions under uncertainty: top-k, confusion, calibration, temperature, abstaining, costs.

Array code runs once per installed namespace (the ``xp`` fixture) against NumPy / scikit-learn
references computed here; constructed cases check the conventions (ties, bin edges) by hand.
"""

import json
import math

import numpy as np
import pytest

from softreg import backend, metrics, ops
from softreg.plotting import (
    plot_accuracy_coverage,
    plot_confusion_matrix,
    plot_reliability,
    save_figure,
)

# Constructed cases with exact ties and edges check conventions, not backends: they run on
# NumPy and the standard's strict namespace only (the comparisons with references run on
# every backend). Each new shape costs JAX a compilation per operation, seconds in all.
conventions = pytest.mark.backends("numpy", "array-api-strict")


def host(x):
    return backend.to_numpy(x)


def on(xp, *arrays):
    return [backend.asarray(a, xp) for a in arrays]


def random_case(n=300, k=7, seed=0):
    """float32 logits with labels that follow them loosely, and their softmax."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2, size=(n, k)).astype(np.float32)
    y = np.where(rng.random(n) < 0.6, logits.argmax(1), rng.integers(0, k, n)).astype(np.int64)
    probs = np.exp(logits - logits.max(1, keepdims=True))
    return logits, y, (probs / probs.sum(1, keepdims=True)).astype(np.float32)


def softmax64(z):
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def nll64(logits, y, temperature):
    log_p = np.log(softmax64(np.asarray(logits, np.float64) / temperature))
    return -log_p[np.arange(len(y)), y].mean()


# --- top-k ---------------------------------------------------------------------------------


def test_top_k_matches_sklearn(xp):
    from sklearn.metrics import top_k_accuracy_score

    logits, y, probs = random_case()
    ss, yy = on(xp, logits, y)
    for k in range(1, 7):
        expected = top_k_accuracy_score(y, logits, k=k, labels=range(7))
        assert metrics.top_k_accuracy(ss, yy, k, xp=xp) == pytest.approx(expected, abs=1e-12)
    assert metrics.top_k_accuracy(ss, yy, 7, xp=xp) == 1.0
    # probabilities give the same answer: softmax keeps the order
    assert metrics.top_k_accuracy(*on(xp, probs, y), 3) == metrics.top_k_accuracy(ss, yy, 3)


@conventions
def test_top_k_counts_ties_at_the_boundary_as_hits(xp):
    scores = np.array([[1, 1, 0], [0, 2, 2], [3, 3, 3], [2, 1, 1], [2, 1, 1]], np.float32)
    y = np.array([1, 2, 0, 1, 0])
    ss, yy = on(xp, scores, y)
    # k=1: rows 0-2 tie with the top score (hits), row 3's label is second (miss), row 4 hit
    assert metrics.top_k_accuracy(ss, yy, 1, xp=xp) == pytest.approx(4 / 5)
    assert metrics.top_k_accuracy(ss, yy, 2, xp=xp) == 1.0  # row 3 ties the 2nd largest


# --- confusion matrix ----------------------------------------------------------------------


def test_confusion_matrix_matches_sklearn(xp):
    from sklearn.metrics import confusion_matrix

    rng = np.random.default_rng(1)
    y_true, y_pred = rng.integers(0, 6, 500), rng.integers(0, 5, 500)  # class 5 never predicted
    got = metrics.confusion_matrix(*on(xp, y_true, y_pred), 6, xp=xp)
    assert tuple(got.shape) == (6, 6)
    assert np.dtype(host(got).dtype).kind == "i"
    np.testing.assert_array_equal(host(got), confusion_matrix(y_true, y_pred, labels=range(6)))


def test_confusion_matrix_rows_are_true_columns_predicted():
    got = metrics.confusion_matrix(np.array([0, 0, 1, 2]), np.array([1, 1, 1, 0]), 3)
    np.testing.assert_array_equal(got, [[0, 2, 0], [0, 1, 0], [1, 0, 0]])


# --- calibration ---------------------------------------------------------------------------


def reference_bins(probs, y, n_bins):
    """Bins in float64 on probs' float32 confidences; edges rounded to float32 as the metric
    compares them, bins right-closed as in scikit-learn's calibration_curve."""
    conf = probs.max(1).astype(np.float64)
    correct = probs.argmax(1) == y
    edges = np.float32(np.arange(n_bins + 1) / n_bins).astype(np.float64)
    ids = np.searchsorted(edges[1:-1], conf, side="left")
    count = np.bincount(ids, minlength=n_bins)
    with np.errstate(invalid="ignore"):
        mean_conf = np.bincount(ids, conf, n_bins) / count
        acc = np.bincount(ids, correct, n_bins) / count
    ece = np.nansum(count / len(y) * np.abs(acc - mean_conf))
    return count, mean_conf, acc, ece


@pytest.mark.parametrize("n_bins", [1, 15])
def test_calibration_bins_match_reference(xp, n_bins):
    _, y, probs = random_case(seed=2)
    bins = metrics.calibration_bins(*on(xp, probs, y), n_bins=n_bins, xp=xp)
    count, conf, acc, ece = reference_bins(probs, y, n_bins)
    assert bins.count == tuple(count) and bins.n == 300
    assert bins.edges[0] == 0 and bins.edges[-1] == 1 and len(bins.edges) == n_bins + 1
    for m in range(n_bins):
        if count[m]:
            assert bins.confidence[m] == pytest.approx(conf[m], rel=1e-5)
            assert bins.accuracy[m] == pytest.approx(acc[m], rel=1e-12)
        else:
            assert bins.confidence[m] is None and bins.accuracy[m] is None
    got = metrics.expected_calibration_error(*on(xp, probs, y), n_bins=n_bins, xp=xp)
    assert got == pytest.approx(ece, rel=1e-4, abs=1e-7)


@conventions
def test_ece_of_a_constructed_case(xp):
    # confidences 0.9 (right, wrong) and 0.6 (right, right): gaps 0.4 in both bins
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.4, 0.6]], np.float32)
    y = np.array([0, 1, 0, 1])
    pp, yy = on(xp, probs, y)
    bins = metrics.calibration_bins(pp, yy, n_bins=10, xp=xp)
    # bins are right-closed: 0.6 falls in (0.5, 0.6], 0.9 in (0.8, 0.9]
    assert bins.count == (0, 0, 0, 0, 0, 2, 0, 0, 2, 0)
    assert bins.accuracy[5] == 1.0 and bins.accuracy[8] == 0.5
    assert bins.confidence[5] == pytest.approx(0.6) and bins.confidence[8] == pytest.approx(0.9)
    assert metrics.expected_calibration_error(pp, yy, n_bins=10, xp=xp) == pytest.approx(0.4)
    sure = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    assert metrics.expected_calibration_error(*on(xp, sure, np.array([0, 1])), xp=xp) == 0
    assert metrics.expected_calibration_error(*on(xp, sure, np.array([1, 0])), xp=xp) == 1


def test_ece_is_near_zero_when_labels_are_drawn_from_the_probabilities():
    rng = np.random.default_rng(3)
    probs = rng.dirichlet(np.full(4, 0.7), size=200_000)
    y = (probs.cumsum(1) > rng.random((len(probs), 1))).argmax(1)  # y ~ probs, row by row
    assert metrics.expected_calibration_error(probs, y) < 0.005
    sharpened = probs**3 / (probs**3).sum(1, keepdims=True)  # over-confident, same labels
    assert metrics.expected_calibration_error(sharpened, y) > 0.05


# --- temperature scaling -------------------------------------------------------------------


def tempered_case(n, t_true, k=7, seed=4):
    """Labels drawn from softmax(true_logits); the model reports true_logits * t_true."""
    rng = np.random.default_rng(seed)
    true_logits = rng.normal(0, 1.5, size=(n, k))
    y = (softmax64(true_logits).cumsum(1) > rng.random((n, 1))).argmax(1)
    return (true_logits * t_true).astype(np.float32), y


@pytest.mark.parametrize("t_true", [0.4, 2.5])
def test_fit_temperature_recovers_the_true_temperature(t_true):
    logits, y = tempered_case(40_000, t_true)
    fitted = metrics.fit_temperature(logits, y)
    assert isinstance(fitted, float)
    assert fitted == pytest.approx(t_true, rel=0.04)
    assert nll64(logits, y, fitted) <= nll64(logits, y, 1.0)


def test_fit_temperature_matches_a_float64_search(xp):
    from scipy.optimize import minimize_scalar

    logits, y = tempered_case(300, 1.7, seed=5)
    fitted = metrics.fit_temperature(*on(xp, logits, y), xp=xp)
    best = minimize_scalar(
        lambda s: nll64(logits, y, math.exp(s)),
        bounds=(-5, 5),
        method="bounded",
        options={"xatol": 1e-9},
    ).x
    assert math.log(fitted) == pytest.approx(best, abs=1e-4)
    grid = np.linspace(-1, 2, 601)
    assert nll64(logits, y, fitted) <= min(nll64(logits, y, math.exp(s)) for s in grid) + 1e-9
    assert nll64(logits, y, fitted) <= nll64(logits, y, 1.0)


def test_fit_temperature_agrees_with_torch_autograd_newton():
    """Newton's method on log T with PyTorch's autograd derivatives, in float64 (not LBFGS:
    constructing a torch.optim optimiser imports TorchDynamo, seconds for one test)."""
    torch = pytest.importorskip("torch")
    logits, y = tempered_case(3000, 0.6, seed=6)
    z, labels = torch.tensor(logits, dtype=torch.float64), torch.tensor(y)
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    for _ in range(100):
        loss = torch.nn.functional.cross_entropy(z / log_t.exp(), labels)
        (grad,) = torch.autograd.grad(loss, log_t, create_graph=True)
        (hess,) = torch.autograd.grad(grad, log_t)
        step = grad / hess if hess > 0 else 0.5 * torch.sign(grad)
        with torch.no_grad():
            log_t -= step
        if abs(step.item()) < 1e-12:
            break
    assert abs(grad.item()) < 1e-10
    assert math.log(metrics.fit_temperature(logits, y)) == pytest.approx(log_t.item(), abs=1e-4)
    assert log_t.exp().item() == pytest.approx(0.6, rel=0.1)


def test_fit_temperature_stops_at_the_search_bounds():
    y = np.array([0, 1, 2, 0])
    separable = np.eye(3, dtype=np.float32)[y] * 5  # NLL falls all the way as T -> 0
    assert metrics.fit_temperature(separable, y) == pytest.approx(math.exp(-5))
    assert metrics.fit_temperature(-separable, y) == pytest.approx(math.exp(5))  # anti-correlated


# --- abstaining ----------------------------------------------------------------------------


def test_accuracy_coverage_matches_reference(xp):
    _, y, probs = random_case(seed=7)
    curve = metrics.accuracy_coverage(*on(xp, probs, y), xp=xp)
    assert [t for t, _, _ in curve] == [i / 100 for i in range(101)]
    conf, correct = probs.max(1), probs.argmax(1) == y
    for threshold, coverage, accuracy in curve:
        answered = conf >= np.float32(threshold)
        assert coverage == answered.mean()
        assert accuracy == (correct[answered].mean() if answered.any() else None)
    assert curve[0][1:] == (1.0, correct.mean())  # threshold 0 answers everything
    coverages = [c for _, c, _ in curve]
    assert coverages == sorted(coverages, reverse=True)
    decided = host(metrics.selective_decision(backend.asarray(probs, xp), 0.5, xp=xp))
    np.testing.assert_array_equal(decided, np.where(conf >= 0.5, probs.argmax(1), -1))
    assert 0 < (decided == -1).mean() < 1


@conventions
def test_accuracy_coverage_answers_a_confidence_equal_to_the_threshold(xp):
    probs = np.array([[0.5, 0.5], [0.75, 0.25], [0.25, 0.75]], np.float32)
    y = np.array([1, 0, 0])
    curve = metrics.accuracy_coverage(*on(xp, probs, y), thresholds=[0.5, 0.75, 0.8], xp=xp)
    assert curve == [(0.5, 1.0, 1 / 3), (0.75, 2 / 3, 0.5), (0.8, 0.0, None)]


@conventions
def test_selective_decision_abstains_below_the_threshold(xp):
    probs = np.array([[0.5, 0.3, 0.2], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]], np.float32)
    (pp,) = on(xp, probs)
    np.testing.assert_array_equal(host(metrics.selective_decision(pp, 0.6, xp=xp)), [-1, 1, 2])
    np.testing.assert_array_equal(host(metrics.selective_decision(pp, 0.0, xp=xp)), [0, 1, 2])
    np.testing.assert_array_equal(host(metrics.selective_decision(pp, 1.0, xp=xp)), [-1, -1, -1])


# --- costs ---------------------------------------------------------------------------------


def test_zero_one_cost_gives_the_argmax(xp):
    _, _, probs = random_case(seed=8)
    top2 = np.sort(probs, 1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-3  # rounding may decide near-ties either way
    assert clear.mean() > 0.9
    cost = 1 - np.eye(7)
    (pp,) = on(xp, probs)
    for c in (cost.tolist(), backend.asarray(cost.astype(np.float32), xp)):
        got = host(metrics.expected_cost_decisions(pp, c, xp=xp))
        np.testing.assert_array_equal(got[clear], probs.argmax(1)[clear])


def test_an_expensive_miss_shifts_decisions_to_the_costly_class(xp):
    # classes: 0 healthy, 1 sick; missing a sick patient costs 10 false alarms
    probs = np.array([[0.95, 0.05], [0.85, 0.15], [0.5, 0.5], [0.92, 0.08]], np.float32)
    (pp,) = on(xp, probs)
    got = host(metrics.expected_cost_decisions(pp, [[0, 1], [10, 0]], xp=xp))
    np.testing.assert_array_equal(got, [0, 1, 1, 0])  # "sick" from p(sick) > 1/11 on
    assert probs.argmax(1).tolist() == [0, 0, 0, 0]


# --- the report ----------------------------------------------------------------------------


def test_evaluation_report_agrees_with_the_parts(xp):
    logits, y, probs = random_case(seed=9)
    ll, yy = on(xp, logits, y)
    report = metrics.evaluation_report(
        ll, yy, temperature=2.0, n_bins=10, class_names=list("abcdefg"), ks=(5, 1, 9, 2, 3), xp=xp
    )
    json.dumps(report, allow_nan=False)  # printable and writable as strict JSON
    assert report["n"] == 300 and report["num_classes"] == 7
    assert report["class_names"] == list("abcdefg")
    assert report["accuracy"] == pytest.approx((logits.argmax(1) == y).mean())
    assert list(report["top_k"]) == ["1", "2", "3", "5"]  # 9 is capped away: only 7 classes
    assert report["top_k"]["5"] == metrics.top_k_accuracy(logits, y, 5)
    assert report["top_k"]["1"] == report["accuracy"]
    matrix = np.array(report["confusion_matrix"])
    assert matrix.sum() == 300 and np.trace(matrix) / 300 == pytest.approx(report["accuracy"])
    assert report["ece"] == pytest.approx(reference_bins(probs, y, 10)[3], rel=1e-4)
    scaled = softmax64(logits / 2.0).astype(np.float32)
    calibration = report["calibration"]
    assert calibration["ece"] == pytest.approx(reference_bins(scaled, y, 10)[3], rel=1e-4)
    assert calibration["nll"] == pytest.approx(nll64(logits, y, 2.0), rel=1e-5)
    assert report["nll"] == pytest.approx(nll64(logits, y, 1.0), rel=1e-5)
    assert len(report["accuracy_coverage"]) == 101
    assert report["accuracy_coverage"][0] == {
        "threshold": 0.0,
        "coverage": 1.0,
        "accuracy": report["accuracy"],
    }


# --- errors --------------------------------------------------------------------------------

P = np.array([[0.7, 0.3], [0.2, 0.8]], np.float32)
Y = np.array([0, 1])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: metrics.top_k_accuracy(P, Y, 3), r"k=3 exceeds the number of classes \(2\)"),
        (lambda: metrics.top_k_accuracy(P, Y, 0), "k must be an integer >= 1, got 0"),
        (lambda: metrics.top_k_accuracy(P, Y[:1], 1), r"one entry per row of scores \(2\)"),
        (lambda: metrics.top_k_accuracy(P, np.array([0, 2]), 1), r"label 2 outside \[0, 2\)"),
        (lambda: metrics.top_k_accuracy(P[0], Y, 1), "scores must be 2-D"),
        (lambda: metrics.top_k_accuracy(P[:0], Y[:0], 1), "scores is empty"),
        (lambda: metrics.confusion_matrix(Y, Y[:1], 2), "y_true has 2 labels but y_pred has 1"),
        (lambda: metrics.confusion_matrix(Y, Y, 0), "num_classes must be an integer >= 1"),
        (lambda: metrics.calibration_bins(P * 3, Y), r"probs must lie in \[0, 1\], got 2.4"),
        (lambda: metrics.calibration_bins(P / 2, Y), "probs row 0 sums to 0.5, not 1"),
        (lambda: metrics.expected_calibration_error(P, Y, n_bins=0), "n_bins must be"),
        (lambda: metrics.expected_calibration_error(P * np.nan, Y), "probs must be finite"),
        (lambda: metrics.fit_temperature(P + np.inf, Y), "logits must be finite"),
        (lambda: metrics.accuracy_coverage(P, Y, thresholds=[90]), r"\[0, 1\], got 90"),
        (lambda: metrics.accuracy_coverage(P, Y, thresholds=[]), "thresholds must not be empty"),
        (lambda: metrics.selective_decision(P, -0.1), r"\[0, 1\], got -0.1"),
        (lambda: metrics.expected_cost_decisions(P, np.ones((3, 3))), r"cost must be \(2, 2\)"),
        (lambda: metrics.expected_cost_decisions(P, [[0, np.nan], [1, 0]]), "cost must be finite"),
        (lambda: metrics.evaluation_report(P, Y, temperature=0), "temperature must be a finite"),
        (lambda: metrics.evaluation_report(P, Y, class_names=["a"]), "1 class names for 2"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --- figures -------------------------------------------------------------------------------


def test_confusion_matrix_figure(tmp_path):
    names = ["T-shirt", "trouser", "pullover"]
    fig = plot_confusion_matrix([[5, 1, 0], [0, 7, 2], [3, 0, 9]], names)
    ax = fig.axes[0]
    assert len(fig.axes) == 2  # the matrix and its colour bar
    assert [t.get_text() for t in ax.texts] == ["5", "1", "0", "0", "7", "2", "3", "0", "9"]
    assert [t.get_text() for t in ax.get_xticklabels()] == names
    assert [t.get_text() for t in ax.get_yticklabels()] == names
    assert ax.get_xticklabels()[0].get_rotation() == 45
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("predicted", "true")
    assert ax.images[0].get_array()[2, 0] == 3  # true class 2 predicted as 0: row 2, column 0
    assert save_figure(fig, tmp_path / "confusion")[0].read_bytes().startswith(b"\x89PNG")
    with pytest.raises(ValueError, match=r"matrix must be \(3, 3\)"):
        plot_confusion_matrix([[1, 2], [3, 4]], names)


def test_reliability_figure(tmp_path):
    _, y, probs = random_case(n=400, seed=10)
    before = metrics.calibration_bins(probs, y, n_bins=10)
    after = metrics.calibration_bins(softmax64(np.log(probs) / 1.5), y, n_bins=10)
    one = plot_reliability(before)
    assert len(one.axes) == 1
    assert len(one.axes[0].patches) == sum(1 for c in before.count if c)  # a bar per full bin
    assert f"ECE {before.ece():.3f}" in one.axes[0].get_title()
    two = plot_reliability(before.to_dict(), json.loads(json.dumps(after.to_dict())))
    assert len(two.axes) == 2
    assert [ax.get_title().split(" (")[0] for ax in two.axes] == [
        "uncalibrated",
        "temperature-scaled",
    ]
    assert f"ECE {after.ece():.3f}" in two.axes[1].get_title()
    assert [p.name for p in save_figure(two, tmp_path / "reliability", formats=("png", "svg"))] == [
        "reliability.png",
        "reliability.svg",
    ]


def test_accuracy_coverage_figure(tmp_path):
    _, y, probs = random_case(n=200, seed=11)
    curve = metrics.accuracy_coverage(probs, y)
    fig = plot_accuracy_coverage(curve)
    left, right = fig.axes
    answered = [row for row in curve if row[2] is not None]
    assert len(answered) < len(curve)  # some thresholds answer nothing: left out of the lines
    np.testing.assert_allclose(left.get_lines()[0].get_xdata(), [c for _, c, _ in answered])
    assert [line.get_label() for line in right.get_lines()] == ["coverage", "accuracy"]
    as_dicts = [{"threshold": t, "coverage": c, "accuracy": a} for t, c, a in curve]
    np.testing.assert_allclose(
        plot_accuracy_coverage(as_dicts).axes[1].get_lines()[0].get_ydata(),
        [c for _, c, _ in curve],
    )
    assert save_figure(fig, tmp_path / "coverage")[0].exists()


# --- real data -----------------------------------------------------------------------------


def test_on_fashion_mnist(fashion):
    import softreg

    held = 50_000  # the last 10000 training rows fit the temperature; the test set never does
    model = softreg.SoftmaxRegression()
    result = softreg.fit(
        model, (fashion.X_train[:held], fashion.y_train[:held]), None, softreg.TrainConfig(epochs=2)
    )
    logits = model.forward(result.params, fashion.X_test)
    y = fashion.y_test
    probs = ops.softmax(logits)
    accuracy = ops.accuracy(logits, y)
    top = [metrics.top_k_accuracy(probs, y, k) for k in range(1, 11)]
    assert top[0] == accuracy and 0.7 < accuracy < 0.9
    assert top == sorted(top) and top[-1] == 1.0 and top[1] > top[0]
    matrix = metrics.confusion_matrix(y, np.argmax(logits, axis=1), 10)
    assert matrix.sum() == 10_000 and np.trace(matrix) / 10_000 == accuracy

    held_logits = model.forward(result.params, fashion.X_train[held:])
    held_y = fashion.y_train[held:]
    temperature = metrics.fit_temperature(held_logits, held_y)
    assert nll64(held_logits, held_y, temperature) <= nll64(held_logits, held_y, 1.0)

    report = metrics.evaluation_report(
        logits, y, temperature=temperature, class_names=fashion.class_names
    )
    assert report["accuracy"] == accuracy and report["top_k"]["2"] == top[1]
    print(
        f"\naccuracy {accuracy:.4f} top-2 {top[1]:.4f} top-3 {top[2]:.4f} "
        f"T {temperature:.4f} ECE {report['ece']:.4f} -> {report['calibration']['ece']:.4f} "
        f"NLL {report['nll']:.4f} -> {report['calibration']['nll']:.4f}"
    )
