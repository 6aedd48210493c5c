"""Models as frozen specifications plus an explicit parameter dict.

A model object holds only its configuration; parameters live in a plain ``dict`` of arrays
(a pytree for JAX, a state dict for checkpoints) that every method takes and the optimiser
returns anew. Each backward pass sits right under its forward pass.

Both models standardise their inputs, ``(X - input_mean) / input_scale``, with one number for
every feature (the lecture's ``transforms.Normalize((0.1307,), (0.3081,))``) or one per
feature (see :mod:`softreg.standardise`). The numbers are part of the model, so a saved model
applies them to whatever it is given later; the defaults, 0 and 1, leave inputs as they are.

- :mod:`softreg.models.classifier`: :class:`Classifier`, what the models share (input
  standardisation, losses and gradients in one call, over all classes or chunks of them)
- :mod:`softreg.models.softmax_regression`: :class:`SoftmaxRegression`, the chapter's model
- :mod:`softreg.models.mlp`: :class:`MLP`, the multilayer perceptron
"""

from __future__ import annotations

from softreg.models.classifier import Classifier
from softreg.models.mlp import MLP
from softreg.models.softmax_regression import FLOAT32_MAX, SoftmaxRegression, check_sigma

# The models by the name --model and TrainConfig.model give them.
MODELS = {"softmax-regression": SoftmaxRegression, "mlp": MLP}

__all__ = ["FLOAT32_MAX", "MLP", "MODELS", "Classifier", "SoftmaxRegression", "check_sigma"]
