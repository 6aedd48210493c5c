"""
Naive and stable softmax
========================

The chapter's exercise 1: the book's softmax, ``exp(o) / exp(o).sum()``, overflows as soon as a
logit passes about 88 in float32, and its loss, ``-log`` of the picked probability, takes
``log(0)`` once every logit is far below zero. :func:`softreg.softmax` subtracts each row's
maximum first and :func:`softreg.cross_entropy` works from the logits through log-sum-exp, so
neither happens. :mod:`softreg.stability` runs the exercise's inputs through both, next to a
50-digit reference.
"""

# %%
# The report
# ----------
# Each case is one row of logits and a label, in float32 and float64. ``softreg stability``
# prints the same table.
import numpy as np
from matplotlib import pyplot as plt

import softreg
from softreg.stability import format_report, stability_report

rows = stability_report()
print(format_report(rows))

# %%
# Where the naive version breaks
# ------------------------------
# Shift a row of three logits ``(c, c - 1, c - 2)`` by ``c`` and take the loss at the second
# class. The true loss does not depend on ``c`` (softmax is shift invariant), so it is a
# flat line; the naive loss leaves it where ``exp`` overflows to ``inf`` (the probabilities
# become ``nan``) or underflows to 0 (the loss becomes ``inf``).
shifts = np.linspace(-200.0, 200.0, 801)
label = np.array([1])
fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), layout="constrained")
for ax, dtype in zip(axes, (np.float32, np.float64), strict=True):
    naive, stable = [], []
    for c in shifts:
        logits = np.array([[c, c - 1.0, c - 2.0]], dtype=dtype)
        with np.errstate(all="ignore"):
            naive.append(softreg.cross_entropy_naive(softreg.softmax_naive(logits), label)[0])
        stable.append(float(softreg.cross_entropy(logits, label)))
    naive = np.asarray(naive, dtype=np.float64)
    broken = ~np.isfinite(naive)
    ax.plot(shifts, stable, lw=3, label="stable: cross_entropy(logits)")
    ax.plot(shifts, np.where(broken, np.nan, naive), "--", label="naive: -log(softmax_naive)")
    ax.plot(shifts[broken], np.full(broken.sum(), 1.5), "|", color="C3", label="naive: inf or nan")
    ax.set(title=np.dtype(dtype).name, xlabel="shift c of the logits", ylabel="loss")
    ax.set_ylim(0, 2)
    ax.legend(loc="lower center", fontsize="small")
plt.show()

# %%
# The counts behind the figure: in float32 the naive loss is finite only between the two
# limits of ``exp``, about -103 and 88; in float64 about -745 and 709, outside this range.
for dtype in (np.float32, np.float64):
    finite = []
    for c in shifts:
        with np.errstate(all="ignore"):
            logits = np.array([[c, c - 1.0, c - 2.0]], dtype=dtype)
            loss = softreg.cross_entropy_naive(softreg.softmax_naive(logits), label)
            finite.append(bool(np.isfinite(loss).all()))
    finite = np.asarray(finite)
    print(
        f"{np.dtype(dtype).name}: naive loss finite for c in "
        f"[{shifts[finite].min():g}, {shifts[finite].max():g}] of [-200, 200]"
    )
