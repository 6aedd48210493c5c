"""
Calibration and abstaining
==========================

The chapter's exercise 3 asks whether the most likely label is always the one to give. A
model's probabilities can be over- or under-confident; :mod:`softreg.metrics` measures that
(a reliability diagram and its expected calibration error), fixes it with one fitted
temperature, and shows what answering only the confident cases buys (accuracy against
coverage). ``softreg evaluate`` draws the same figures for a trained model.
"""

# %%
# A model to diagnose
# -------------------
# Softmax regression trained on 20,000 Fashion-MNIST images for 3 epochs (a few seconds).
# A tenth of those training images is held out to fit the temperature: it is never fitted on
# the test set.

import numpy as np

import softreg
from softreg import metrics, ops
from softreg.data.split import validation_split
from softreg.plotting import plot_accuracy_coverage, plot_reliability

data = softreg.load_dataset("fashion-mnist")
X_fit, y_fit, X_cal, y_cal = validation_split(
    data.X_train[:20000], data.y_train[:20000], fraction=0.1, seed=0
)
model = softreg.SoftmaxRegression()
config = softreg.TrainConfig(epochs=3, log_every=0)
result = softreg.fit(model, (X_fit, y_fit), (data.X_test, data.y_test), config)
print(result.history.final)

# %%
# Reliability, before and after temperature scaling
# -------------------------------------------------
# :func:`~softreg.metrics.fit_temperature` finds the ``T`` that minimises the held-out
# cross-entropy of ``softmax(logits / T)``; it changes the confidence, never the arg-max.
logits = model.forward(result.params, data.X_test)
temperature = metrics.fit_temperature(model.forward(result.params, X_cal), y_cal)
before = metrics.calibration_bins(ops.softmax(logits, axis=1), data.y_test)
probs = ops.softmax(logits / temperature, axis=1)
after = metrics.calibration_bins(probs, data.y_test)
print(
    f"temperature {temperature:.3f}: expected calibration error "
    f"{metrics.ece_from_bins(before):.4f} before, {metrics.ece_from_bins(after):.4f} after"
)
reliability = plot_reliability(before, after)

# %%
# Abstaining below a confidence
# -----------------------------
# Answer only where the top probability reaches a threshold, and hand the rest on (to a
# person, say): accuracy on the answered cases rises as coverage falls.
curve = metrics.accuracy_coverage(probs, data.y_test)
for threshold, coverage, accuracy in curve[::10]:
    if accuracy is not None:
        print(
            f"threshold {threshold:.1f}: answers {coverage:6.1%} of the test set, "
            f"{accuracy:6.1%} of those right"
        )
coverage = plot_accuracy_coverage(curve)

# %%
# A cost matrix
# -------------
# When mistakes cost differently, the best decision is the class of least expected cost, not
# the arg-max. Here missing a shirt (class 6) costs five times any other mistake.
cost = np.ones((10, 10)) - np.eye(10)
cost[6] *= 5
chosen = metrics.expected_cost_decisions(probs, cost)
argmax = probs.argmax(axis=1)
for name, decision in (("arg-max", argmax), ("least expected cost", chosen)):
    print(
        f"{name:>20}: mean cost {cost[data.y_test, decision].mean():.4f}, "
        f"accuracy {(decision == data.y_test).mean():.4f}"
    )
