"""What training says when it diverges.

The messages, with hints on what to change (:func:`divergence_message`, :func:`hints`), and
the end-of-epoch check for parameters that overflowed after the last finite loss
(:func:`overflow`).
"""

from __future__ import annotations

import math

from softreg import backend
from softreg.config import TrainConfig
from softreg.history import Evaluation
from softreg.protocols import Params


def divergence_message(config: TrainConfig, epoch: int, batch: int, step: int, loss: float) -> str:
    """Return the message of a step whose loss was not finite.

    Parameters
    ----------
    config : TrainConfig
        The run's configuration, for the hints.
    epoch : int
        The epoch, 0-based (the message says it 1-based).
    batch : int
        The batch within the epoch, 1-based.
    step : int
        The step that diverged, counted over the whole run from 1.
    loss : float
        The loss it gave: NaN or infinite.

    Returns
    -------
    str
        Where training diverged, what to change (:func:`hints`), and that the model before
        that step is kept.
    """
    return (
        f"training diverged at step {step} (epoch {epoch + 1}, batch {batch}): the loss "
        f"became {loss}; {hints(config)}. The model before that step is kept"
    )


def hints(config: TrainConfig) -> str:
    """Return what to change in ``config`` so that training does not diverge.

    A smaller learning rate first, with a value to try; then, where they apply, the stable
    softmax and standardised inputs.

    Parameters
    ----------
    config : TrainConfig
        The configuration that diverged.

    Returns
    -------
    str
        The hints, joined by ``"; "``.
    """
    hints = [f"lr={config.lr:g} is probably too large: try lr={config.lr / 10:g} or less"]
    if config.softmax == "naive":
        hints.append("or the stable softmax (softmax=stable), which cannot overflow")
    if config.input_scaling == "none":
        hints.append("or standardised inputs (normalize=yes or per-feature)")
    return "; ".join(hints)


def overflow(params: Params, evaluation: Evaluation | None) -> str:
    """Return what says the parameters have overflowed, or ``""`` when nothing does.

    Checked once an epoch: a non-finite loss catches an overflow at the next step, but the
    epoch's last steps have no next step.

    Parameters
    ----------
    params : Params
        The parameters at the end of the epoch.
    evaluation : Evaluation or None
        Their evaluation on the test data, or None without test data.

    Returns
    -------
    str
        ``"the weights are no longer finite"``, a message naming the test loss when it is
        not finite, or ``""``.
    """
    if not params_finite(params):
        return "the weights are no longer finite"
    if evaluation is not None and not math.isfinite(evaluation.loss):
        return f"the model's scores on the test data overflow (test loss {evaluation.loss})"
    return ""


def params_finite(params: Params) -> bool:
    """Return whether every entry of every parameter array is finite.

    Parameters
    ----------
    params : Params
        Parameter arrays by name, of any backend.

    Returns
    -------
    bool
        True when no entry is NaN or infinite.
    """
    return all(backend.all_finite(p) for p in params.values())
