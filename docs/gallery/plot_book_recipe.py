"""
The book's recipe: curves and predictions
=========================================

Softmax regression on Fashion-MNIST as *Dive into Deep Learning* trains it (batch 256,
lr 0.1, weights drawn from N(0, 0.01)), here for 2 epochs instead of 10 so the page builds in
seconds. ``softreg train`` runs the full 10 epochs and writes the same figures to its run
directory.
"""

# %%
# Load the data and train
# -----------------------
# :func:`softreg.load_dataset` finds Fashion-MNIST (``$SOFTREG_DATA``, the user cache, or
# Debian's ``dataset-fashion-mnist``). :func:`softreg.fit` is the book's ``train_ch3``: it
# returns a :class:`softreg.FitResult` whose ``history`` holds one record per epoch.
import softreg
from softreg import plotting

data = softreg.load_dataset("fashion-mnist")
model = softreg.SoftmaxRegression()
config = softreg.TrainConfig(epochs=2, batch_size=256, lr=0.1, seed=0)
result = softreg.fit(model, (data.X_train, data.y_train), (data.X_test, data.y_test), config)

for record in result.history.records:
    print(
        f"epoch {record.epoch}: train loss {record.train_loss:.4f}, "
        f"train acc {record.train_acc:.4f}, test acc {record.test_acc:.4f}"
    )

# %%
# The training curves
# -------------------
# The chapter's figure: train loss, train accuracy and test accuracy against the epoch
# (the book's ``Animator``). :func:`softreg.plotting.plot_curves` only reads the history.
curves = plotting.plot_curves(result.history, epochs=config.epochs)

# %%
# Predictions on the test set
# ---------------------------
# The book's ``predict_ch3``: the first test images, each titled with its true label over the
# predicted one; wrong predictions are red.
n = 16
probs = model.predict_proba(result.params, data.X_test[:n])
predicted = probs.argmax(axis=1)
grid = plotting.plot_predictions(
    data.test_images[:n],
    softreg.text_labels(data.test_labels[:n], data),
    softreg.text_labels(predicted, data),
)
