"""
A learning-rate sweep on a validation split
===========================================

The chapter's exercise 5: how do the learning rate and the batch size change the result?
:class:`softreg.sweep.SweepPlan` describes a sweep, and :func:`softreg.sweep.run_sweep` trains
one model per value on part of the *training* set and scores each on the held-out rest, so
choosing a value never looks at the test set. ``softreg sweep`` runs the same sweeps on the
whole training set and writes their tables and figures.

To stay quick, this example uses the first 12,000 training images (10,800 to fit, 1,200 to
validate).
"""

# %%
# Two epochs
# ----------

import softreg
from softreg.sweep import SweepPlan, best_point, format_table, plot_sweep, run_sweep

data = softreg.load_dataset("fashion-mnist")
X, y = data.X_train[:12000], data.y_train[:12000]
rates = [0.01, 0.03, 0.1, 0.3, 1.0]
short = run_sweep(SweepPlan(softreg.TrainConfig(epochs=2), "lr", rates), X, y, workers=1)
print(format_table(short))
short_figure = plot_sweep(short, "lr", "epochs")

# %%
# Ten epochs
# ----------
# The best learning rate depends on the budget. Two epochs of 10,800 images at batch 256 are
# 86 SGD updates; at lr 0.3 and above SGD is still bouncing after so few, and the validation
# loss of such a point depends on where its last steps land, down to the rounding of the
# matrix products (it changes with the number of BLAS threads): a short sweep of a small
# subset is a noisy judge, and can pick 0.3. Ten epochs are five times as many updates; on
# the whole training set (2,110 updates in 10 epochs) the book's 0.1 has the lowest
# validation loss. The last two lines print each sweep's best point.
long = run_sweep(SweepPlan(softreg.TrainConfig(epochs=10), "lr", rates), X, y, workers=1)
print(format_table(long))
long_figure = plot_sweep(long, "lr", "epochs")
for name, points in (("2 epochs", short), ("10 epochs", long)):
    best = best_point(points)
    print(
        f"{name}: best lr {best.value:g} ({best.steps} updates), "
        f"validation loss {best.val_loss:.4f}, accuracy {best.val_acc:.4f}"
    )
