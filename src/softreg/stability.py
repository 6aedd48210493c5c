"""The chapter's exercise 1 as a report: where the naive softmax and loss break, where not.

Where the book's naive softmax and probability-picking loss overflow or underflow, and how
the stable versions in :mod:`softreg.ops` fare. Each case is one row of logits and a label.
For every dtype the row is pushed through :func:`~softreg.ops.softmax_naive` (and the book's
loss, ``-log`` of the picked probability), the stable :func:`~softreg.ops.softmax` and
:func:`~softreg.ops.cross_entropy`, and a 50-digit :mod:`decimal` reference computed from the
same (dtype-rounded) inputs. The results are plain data (:class:`StabilityRow`);
:func:`format_report` renders them and :func:`main_text` is what ``softreg stability``
prints.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation, localcontext

import numpy as np

from softreg import ops

NAN = float("nan")
INF = float("inf")


@dataclass(frozen=True)
class Case:
    """One row of logits with the label its loss is taken at.

    Parameters
    ----------
    name : str
        What the case shows, as the report names it.
    logits : tuple of float
        One row of logits, ``(n_classes,)``.
    label : int
        The class the loss is taken at.
    """

    name: str
    logits: tuple[float, ...]
    label: int


# The exercise's inputs. Labels sit where the naive loss shows the damage best: on a class whose
# probability under- or overflows (or, for -inf and nan, on an ordinary class).
CASES = (
    Case("logit 100", (100.0, 0.0, -1.0), 1),
    Case("all below -100", (-150.0, -120.0, -101.0), 0),
    Case("all below -1000", (-1000.0, -1001.0, -1003.0), 1),
    Case("logit 1e4", (1e4, 1e4 - 2, 0.0), 1),
    Case("-inf logit", (-INF, 1.0, 2.0), 2),
    Case("nan logit", (NAN, 1.0, 2.0), 2),
)


@dataclass(frozen=True)
class StabilityRow:
    """One case in one dtype: each method's probabilities and loss, and whether they agree.

    Parameters
    ----------
    case : str
        The case's name.
    dtype : str
        ``"float32"`` or ``"float64"``.
    logits : tuple of float
        The case's logits rounded to ``dtype``, ``(n_classes,)``: what every method saw.
    label : int
        The class the loss is taken at.
    naive, stable, reference : tuple of float
        Each method's probabilities, ``(n_classes,)``.
    naive_loss, stable_loss, reference_loss : float
        Each method's ``-log p[label]``.
    naive_ok, stable_ok : bool
        Whether the method agrees with the reference within :func:`tolerance` (nan counts
        as agreeing with nan).
    naive_status, stable_status : str
        ``"ok"``, ``"nan in -> nan out"``, or what went wrong: ``"overflow -> nan"``, ...
    verdict : str
        The row in a few words: ``"ok"``, ``"naive: overflow -> nan"``, ...
    """

    case: str
    dtype: str
    logits: tuple[float, ...]
    label: int
    naive: tuple[float, ...]
    stable: tuple[float, ...]
    reference: tuple[float, ...]
    naive_loss: float
    stable_loss: float
    reference_loss: float
    naive_ok: bool
    stable_ok: bool
    naive_status: str
    stable_status: str
    verdict: str


def tolerance(dtype: str) -> tuple[float, float]:
    """Return the tolerances for comparing a method in ``dtype`` with the reference.

    A few dozen roundings relative, and absolute slack up to the smallest normal number,
    below which a dtype keeps no relative precision (exp(-100) is a float32 subnormal with
    about two significant digits).

    Parameters
    ----------
    dtype : str
        A floating-point dtype's name, e.g. ``"float32"``.

    Returns
    -------
    rtol : float
        ``64 * eps`` of ``dtype``.
    atol : float
        The smallest normal number of ``dtype``.
    """
    info = np.finfo(np.dtype(dtype))
    return 64 * float(info.eps), float(info.smallest_normal)


def reference_softmax(row: Sequence[float], label: int) -> tuple[tuple[float, ...], float]:
    """Return softmax and ``-log p[label]`` of ``row`` in 50-digit decimal arithmetic.

    An independent reference: ``-inf`` gives probability 0; nan anywhere makes everything
    nan, and so does a row of only ``-inf`` (0/0).

    Parameters
    ----------
    row : sequence of float
        One row of logits, ``(n_classes,)``.
    label : int
        The class the loss is taken at.

    Returns
    -------
    probs : tuple of float
        ``(n_classes,)`` probabilities, rounded to float.
    loss : float
        ``-log probs[label]``.
    """
    if any(math.isnan(v) for v in row):
        return (NAN,) * len(row), NAN
    with localcontext() as ctx:
        ctx.prec = 50
        values = [Decimal(v) for v in row]
        exps = [v.exp() for v in values]
        total = sum(exps, Decimal(0))
        try:
            probs = tuple(float(e / total) for e in exps)
            loss = float(total.ln() - values[label])
        except InvalidOperation:  # every logit -inf: 0/0, as IEEE arithmetic would say
            return (NAN,) * len(row), NAN
    return probs, loss


def run_case(case: Case, dtype: str) -> StabilityRow:
    """Run every method on ``case`` in ``dtype`` (NumPy) and compare each with the reference.

    Floating-point warnings are silenced: nan and inf are the point here.

    Parameters
    ----------
    case : Case
        The logits and the label.
    dtype : str
        ``"float32"`` or ``"float64"``.

    Returns
    -------
    StabilityRow
        The methods' results and verdicts.
    """
    x = np.array([case.logits], dtype=dtype)
    y = np.array([case.label])
    with np.errstate(all="ignore"):
        naive = ops.softmax_naive(x)
        naive_loss = ops.cross_entropy_naive(naive, y)
        stable = ops.softmax(x)
        stable_loss = ops.cross_entropy(x, y, reduction="none")
    inputs = tuple(float(v) for v in x[0])  # the dtype-rounded logits the reference sees
    reference, reference_loss = reference_softmax(inputs, case.label)
    rtol, atol = tolerance(dtype)
    naive_ok = _agrees(naive[0], naive_loss[0], reference, reference_loss, rtol, atol)
    stable_ok = _agrees(stable[0], stable_loss[0], reference, reference_loss, rtol, atol)
    naive_status = (
        _status(naive_ok, inputs) if naive_ok else _diagnose(x[0], naive[0], naive_loss[0])
    )
    stable_status = _status(stable_ok, inputs)
    return StabilityRow(
        case=case.name,
        dtype=str(np.dtype(dtype)),
        logits=inputs,
        label=case.label,
        naive=_floats(naive[0]),
        stable=_floats(stable[0]),
        reference=reference,
        naive_loss=float(naive_loss[0]),
        stable_loss=float(stable_loss[0]),
        reference_loss=reference_loss,
        naive_ok=naive_ok,
        stable_ok=stable_ok,
        naive_status=naive_status,
        stable_status=stable_status,
        verdict=_verdict(inputs, naive_status, stable_ok),
    )


def stability_report(
    dtypes: Iterable[str] = ("float32", "float64"), *, cases: Sequence[Case] = CASES
) -> list[StabilityRow]:
    """Run every case in every dtype, dtype by dtype.

    Parameters
    ----------
    dtypes : iterable of str, default ("float32", "float64")
        The dtypes.
    cases : sequence of Case, default CASES
        The cases: the exercise's inputs.

    Returns
    -------
    list of StabilityRow
        One row per case and dtype.
    """
    return [run_case(case, dtype) for dtype in dtypes for case in cases]


def _agrees(
    probs: np.ndarray,
    loss: np.floating,
    reference: tuple[float, ...],
    reference_loss: float,
    rtol: float,
    atol: float,
) -> bool:
    got = np.append(probs.astype(np.float64), np.float64(loss))
    want = np.array([*reference, reference_loss])
    return bool(np.all(np.isclose(got, want, rtol=rtol, atol=atol, equal_nan=True)))


def _status(ok: bool, inputs: tuple[float, ...]) -> str:
    if not ok:
        return "WRONG"
    return "nan in -> nan out" if any(math.isnan(v) for v in inputs) else "ok"


def _diagnose(x: np.ndarray, probs: np.ndarray, loss: np.floating) -> str:
    """Return what broke in the naive computation, judged from the dtype's own exp."""
    with np.errstate(all="ignore"):
        e = np.exp(x)
    if np.any(np.isinf(e) & np.isfinite(x)):
        return "overflow -> nan"
    if np.sum(e) == 0:
        return "underflow, 0/0 -> nan"
    if np.any(probs == 0) and np.isinf(loss):
        return "underflow -> p = 0, loss inf"
    if np.any(probs == 0):
        return "underflow -> p = 0"
    return "inaccurate"


def _verdict(inputs: tuple[float, ...], naive_status: str, stable_ok: bool) -> str:
    if not stable_ok:
        return f"stable: WRONG; naive: {naive_status}"
    if any(math.isnan(v) for v in inputs):
        return "nan in -> nan out (both)"
    return "ok" if naive_status == "ok" else f"naive: {naive_status}"


def _floats(a: np.ndarray) -> tuple[float, ...]:
    return tuple(float(v) for v in a)


def fmt(value: float) -> str:
    """Return ``value`` written compactly, as the report's cells show it.

    Parameters
    ----------
    value : float
        The number.

    Returns
    -------
    str
        ``%.6g``, with ``inf``, ``-inf``, ``nan`` and ``0`` spelt as such.
    """
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == 0:
        return "0"
    return f"{value:.6g}"


def format_report(rows: Sequence[StabilityRow]) -> str:
    """Return the rows as aligned tables, one block per dtype.

    Each case takes three lines (naive, stable, reference): the probabilities, the loss at
    the label, and whether each method agrees with the reference.

    Parameters
    ----------
    rows : sequence of StabilityRow
        What :func:`stability_report` returns.

    Returns
    -------
    str
        The blocks, each headed by its dtype and tolerances.
    """
    blocks = []
    for dtype in dict.fromkeys(row.dtype for row in rows):
        block = [row for row in rows if row.dtype == dtype]
        rtol, atol = tolerance(dtype)
        title = f"{dtype} (agreement: rtol {rtol:.2g}, atol {atol:.2g} = smallest normal)"
        blocks.append(title + "\n" + _table(block))
    return "\n\n".join(blocks)


def _table(rows: Sequence[StabilityRow]) -> str:
    k = max(len(row.logits) for row in rows)
    header = ["case", "logits", "label", "method", *(f"p{c}" for c in range(k)), "loss", "verdict"]
    lines = [header]
    for row in rows:
        logits = "[" + ", ".join(fmt(v) for v in row.logits) + "]"
        methods = (
            ("naive", row.naive, row.naive_loss, row.naive_status),
            ("stable", row.stable, row.stable_loss, row.stable_status),
            ("reference", row.reference, row.reference_loss, ""),
        )
        for i, (method, probs, loss, status) in enumerate(methods):
            lead = [row.case, logits, str(row.label)] if i == 0 else ["", "", ""]
            cells = [fmt(p) for p in probs] + [""] * (k - len(probs))
            lines.append([*lead, method, *cells, fmt(loss), status])
    widths = [max(len(line[c]) for line in lines) for c in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


EXPLANATION = """\
Softmax exponentiates, and exp leaves the floating-point range quickly: exp(x) overflows to inf
for x above about 88.7 in float32 (709.8 in float64), so one logit of 100 gives inf/inf = nan;
it underflows to 0 below about -104.0 in float32 (-745.1 in float64), so a row of very negative
logits loses its small probabilities or becomes 0/0 = nan; and the book's loss then takes log
of a probability that has become 0 (inf) or nan. Subtracting the row maximum first changes
nothing mathematically (the common factor exp(-max) cancels) but makes every exponent <= 0, so
the largest term is exactly 1: nothing overflows and the denominator is at least 1. Computing
the loss from the logits as log-sum-exp minus the label's logit, -log p_y = log(sum_j
exp(x_j - max)) - (x_y - max), never takes the log of an underflowed probability, so the loss
stays finite whenever the logits are. A -inf logit is a probability of exactly 0 in both
versions (the loss is finite unless the label is that class); a nan logit poisons its whole
row in both, on purpose: the input is already wrong, and hiding it would be worse."""


def main_text() -> str:
    """Return the whole report for float32 and float64, with the explanation on top.

    Returns
    -------
    str
        What ``softreg stability`` prints.
    """
    return EXPLANATION + "\n\n" + format_report(stability_report()) + "\n"
