"""
The lecture's MLP on MNIST
==========================

The lecture's multilayer perceptron, 784-512-256-128-64-10 with ReLU, trained on MNIST with
batch 64, lr 0.01 and momentum 0.5: the ``lecture-mlp`` recipe of
:mod:`softreg.recipes` (``softreg train --recipe lecture-mlp`` runs it whole). Here it trains
for 3 epochs on the first 6,000 training images, to stay quick, and is tested on the whole
test set. That is 282 SGD updates where the lecture's 10 epochs make 9,380, too few at lr 0.01
for this deep network to get going, so the example raises the learning rate to 0.05; every
other choice is the lecture's.
"""

# %%
# Training
# --------
# :func:`~softreg.recipes.recipe_config` gives the recipe's configuration, with fields on top;
# :func:`~softreg.make_model` builds the model it names, sized for the data.

import numpy as np

import softreg
from softreg.plotting import plot_curves, plot_predictions
from softreg.recipes import recipe_config

data = softreg.load_dataset("mnist")
train = (data.X_train[:6000], data.y_train[:6000])
config = recipe_config("lecture-mlp", epochs=3, lr=0.05, log_every=0)
model = softreg.make_model(config, train[0], data.num_classes)
print(
    config.model,
    model.hidden,
    f"batch {config.batch_size}, lr {config.lr}, momentum {config.momentum}",
)
result = softreg.fit(model, train, (data.X_test, data.y_test), config)
for record in result.history.records:
    print(
        f"epoch {record.epoch}: train loss {record.train_loss:.4f}, "
        f"train acc {record.train_acc:.4f}, test acc {record.test_acc:.4f}"
    )

# %%
# The curves
# ----------
# The chapter's figure: train loss, train and test accuracy after each epoch.
curves = plot_curves(result.history, ylim=(0.0, 1.0))

# %%
# Predictions
# -----------
# The first test images the model gets wrong, each titled with the true label over the
# predicted one.
names = np.asarray(data.class_names)
predicted = model.forward(result.params, data.X_test).argmax(axis=1)
wrong = np.flatnonzero(predicted != data.y_test)[:16]
print(f"{len(np.flatnonzero(predicted != data.y_test))} of {len(data.y_test)} test images wrong")
mistakes = plot_predictions(
    data.test_images[wrong], names[data.y_test[wrong]], names[predicted[wrong]]
)
