"""What training says when it diverges: the messages, with hints on what to change, and the
end-of-epoch check for parameters that overflowed after the last finite loss."""

from __future__ import annotations

import math

from softreg import backend
from softreg.config import TrainConfig
from softreg.history import Evaluation
from softreg.protocols import Params


def divergence_message(config: TrainConfig, epoch: int, batch: int, step: int, loss: float) -> str:
    return (
        f"training diverged at step {step} (epoch {epoch + 1}, batch {batch}): the loss "
        f"became {loss}; {hints(config)}. The model before that step is kept"
    )


def hints(config: TrainConfig) -> str:
    hints = [f"lr={config.lr:g} is probably too large: try lr={config.lr / 10:g} or less"]
    if config.softmax == "naive":
        hints.append("or the stable softmax (softmax=stable), which cannot overflow")
    if config.input_scaling == "none":
        hints.append("or standardised inputs (normalize=yes or per-feature)")
    return "; ".join(hints)


def overflow(params: Params, evaluation: Evaluation | None) -> str:
    """What says the parameters have overflowed, or "" when nothing does (checked once an
    epoch: a non-finite loss catches it at the next step, but the last steps have none).
    """
    if not params_finite(params):
        return "the weights are no longer finite"
    if evaluation is not None and not math.isfinite(evaluation.loss):
        return f"the model's scores on the test data overflow (test loss {evaluation.loss})"
    return ""


def params_finite(params: Params) -> bool:
    """Whether every entry of every parameter array is finite."""
    return all(backend.all_finite(p) for p in params.values())
