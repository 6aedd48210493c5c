"""The exercise-1 report: it flags the book's naive softmax exactly where IEEE arithmetic breaks
it, and the stable versions agree with the 50-digit reference everywhere else."""

import math

import numpy as np
import pytest

from softreg import stability
from softreg.stability import CASES, format_report, main_text, stability_report


@pytest.fixture(scope="module")
def rows():
    return {(row.case, row.dtype): row for row in stability_report()}


# Where the naive version must fail, per dtype (checked against what NumPy really does below).
NAIVE_FAILS = {
    "float32": {"logit 100", "all below -100", "all below -1000", "logit 1e4"},
    # float64 reaches exp(709): 100 and -150 are fine, 1e4 and -1000 are not.
    "float64": {"all below -1000", "logit 1e4"},
}


def test_report_covers_every_case_in_both_dtypes(rows):
    assert set(rows) == {(c.name, d) for c in CASES for d in ("float32", "float64")}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_naive_is_flagged_exactly_where_it_fails(rows, dtype):
    flagged = {case for (case, d), row in rows.items() if d == dtype and not row.naive_ok}
    assert flagged == NAIVE_FAILS[dtype]
    for (case, d), row in rows.items():
        if d == dtype:
            wrong = case in NAIVE_FAILS[dtype]
            assert row.verdict.startswith("naive: ") == wrong, row.verdict
            assert (row.naive_status not in ("ok", "nan in -> nan out")) == wrong


def test_logit_100_overflows_float32_only(rows):
    # exp(100) ~ 2.7e43 > float32 max ~ 3.4e38 (exp overflows above 88.7): inf/inf = nan.
    row = rows["logit 100", "float32"]
    assert math.isnan(row.naive[0]) and row.naive[1:] == (0.0, 0.0)
    assert row.naive_loss == math.inf  # label 1: -log(1/inf) = -log(0)
    assert row.naive_status == "overflow -> nan"
    assert rows["logit 100", "float64"].naive_ok
    assert rows["logit 100", "float64"].naive_loss == pytest.approx(100.0)


def test_all_below_minus_100_loses_probabilities_in_float32_but_is_not_nan(rows):
    # exp(-101) ~ 1.4e-44 survives as a float32 subnormal while exp(-120), exp(-150) round to
    # 0: no 0/0, but the small probabilities vanish and the loss at label 0 is -log(0) = inf.
    assert np.float32(np.exp(np.float32(-101))) > 0
    row = rows["all below -100", "float32"]
    assert row.naive == (0.0, 0.0, 1.0)
    assert row.naive_loss == math.inf
    assert row.reference_loss == pytest.approx(49.0, abs=1e-6)
    assert row.naive_status == "underflow -> p = 0, loss inf"


def test_all_below_minus_1000_is_zero_over_zero_in_both_dtypes(rows):
    for dtype in ("float32", "float64"):
        row = rows["all below -1000", dtype]
        assert all(math.isnan(p) for p in row.naive)
        assert row.naive_status == "underflow, 0/0 -> nan"


def test_logit_1e4_overflows_both_dtypes(rows):
    for dtype in ("float32", "float64"):
        row = rows["logit 1e4", dtype]
        assert math.isnan(row.naive[0]) and math.isnan(row.naive[1]) and row.naive[2] == 0
        assert row.naive_status == "overflow -> nan"


def test_stable_matches_the_reference_wherever_it_is_finite(rows):
    for row in rows.values():
        assert row.stable_ok, row
        rtol, atol = stability.tolerance(row.dtype)
        want = np.array([*row.reference, row.reference_loss])
        got = np.array([*row.stable, row.stable_loss])
        finite = np.isfinite(want)
        np.testing.assert_allclose(got[finite], want[finite], rtol=rtol, atol=atol)
        if not any(math.isnan(v) for v in row.logits):
            assert np.all(np.isfinite(got))


def test_minus_inf_gives_probability_exactly_zero_and_a_finite_loss(rows):
    for dtype in ("float32", "float64"):
        row = rows["-inf logit", dtype]
        assert row.stable[0] == 0.0 and row.naive[0] == 0.0 and row.reference[0] == 0.0
        assert math.isfinite(row.stable_loss) and math.isfinite(row.naive_loss)
        assert row.verdict == "ok"


def test_nan_propagates_in_both_versions(rows):
    # Documented behaviour: a nan logit makes the whole row (and its loss) nan in the naive
    # and the stable version alike; the report calls that agreement with the reference.
    for dtype in ("float32", "float64"):
        row = rows["nan logit", dtype]
        for values in (row.naive, row.stable, row.reference):
            assert all(math.isnan(v) for v in values)
        assert math.isnan(row.naive_loss) and math.isnan(row.stable_loss)
        assert row.verdict == "nan in -> nan out (both)"


def test_reference_handles_infinities():
    probs, loss = stability.reference_softmax((-math.inf, 0.0), 0)
    assert probs == (0.0, 1.0) and loss == math.inf
    probs, loss = stability.reference_softmax((-math.inf, -math.inf), 0)
    assert all(math.isnan(p) for p in probs) and math.isnan(loss)


def test_a_wrong_stable_result_would_be_flagged(monkeypatch):
    # The comparison can fail: with a broken "stable" softmax the report says so.
    monkeypatch.setattr(stability.ops, "softmax", lambda x: stability.ops.softmax_naive(x) * 0.5)
    row = stability.run_case(CASES[-2], "float64")  # -inf logit
    assert not row.stable_ok and row.verdict.startswith("stable: WRONG")


def test_fmt_is_compact():
    assert [stability.fmt(v) for v in (math.nan, math.inf, -math.inf, 0.0, 1 / 3, 1e-44)] == [
        "nan",
        "inf",
        "-inf",
        "0",
        "0.333333",
        "1e-44",
    ]


def test_format_report_is_aligned():
    text = format_report(stability_report(("float32",)))
    lines = text.splitlines()
    header = lines[1]
    assert header.split() == [
        "case",
        "logits",
        "label",
        "method",
        "p0",
        "p1",
        "p2",
        "loss",
        "verdict",
    ]
    # Every column starts where its header does.
    col = header.index("method")
    methods = [line[col:].split()[0] for line in lines[2:]]
    assert methods == ["naive", "stable", "reference"] * len(CASES)


def test_main_text_has_every_case_both_dtypes_and_the_explanation():
    text = main_text()
    for case in CASES:
        # One block per dtype; "  " after the name: "all below -100" begins "all below -1000".
        starts = [line for line in text.splitlines() if line.startswith(case.name + "  ")]
        assert len(starts) == 2, case.name
    assert "float32 (" in text and "float64 (" in text
    assert "maximum" in text and "log-sum-exp" in text
    for verdict in ("overflow -> nan", "underflow, 0/0 -> nan", "nan in -> nan out"):
        assert verdict in text


def test_no_floating_point_warnings_escape():
    with np.errstate(all="raise"):
        stability_report()
