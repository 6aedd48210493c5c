"""One point of a sweep: a model trained with one value of the swept field, and its scores.

With ``equal="updates"`` a point makes a fixed number of SGD updates, which need not be a
whole number of epochs: the remaining steps are a last, partial epoch over the examples that
epoch would have visited first (:func:`train_point`). A point's numbers depend only on its
configuration and data, never on the process that trained it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from softreg.build import make_model
from softreg.config import TrainConfig
from softreg.data.batching import epoch_permutation
from softreg.errors import ConfigError, DivergenceError
from softreg.evaluation import evaluate
from softreg.history import FitResult, TrainState
from softreg.sweep.plan import EQUAL, point_config, updates_budget
from softreg.sweep.split import SplitData
from softreg.train import fit

__all__ = ["SweepPoint", "train_point"]


@dataclass(frozen=True)
class SweepPoint:
    """One trained model of a sweep: its value, what it cost, and how it scored.

    Parameters
    ----------
    field : str
        The field swept: ``"lr"`` or ``"batch_size"``.
    value : float or int
        The swept value (a batch size above ``n_fit`` is run as full batch).
    equal : str
        The budget held fixed: ``"epochs"`` or ``"updates"``.
    config : TrainConfig
        The configuration trained (its ``epochs``: the passes started).
    epochs : float
        Passes over the fit part; fractional when the last one is partial.
    steps : int
        SGD updates made.
    n_fit : int
        Rows trained on.
    n_val : int
        Rows validated on.
    train_loss : float
        Mean cross-entropy accumulated during the last (possibly partial) epoch, as ``fit``
        reports it; infinite for a diverged point.
    train_acc : float
        Accuracy accumulated during the last epoch; nan for a diverged point.
    val_loss : float
        Mean cross-entropy after training, on the held-out part of the training set;
        infinite for a diverged point.
    val_acc : float
        Accuracy on the held-out part; nan for a diverged point.
    seconds : float
        Training time (``fit``'s ``seconds_train``).
    diverged_at : int or None, default None
        The step whose loss was not finite; None when training finished.
    """

    field: str
    value: float | int
    equal: str
    config: TrainConfig
    epochs: float
    steps: int
    n_fit: int
    n_val: int
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    seconds: float
    diverged_at: int | None = None

    @property
    def full_batch(self) -> bool:
        """Whether this batch-size point trained on all ``n_fit`` rows at once."""
        return self.field == "batch_size" and int(self.value) >= self.n_fit

    def row(self) -> dict[str, Any]:
        """Return the point's flat numbers (no nested config): one CSV row.

        Returns
        -------
        dict
            ``field``, ``value``, ``equal``, ``epochs``, ``steps``, ``batch_size``, ``lr``,
            ``full_batch``, ``n_fit``, ``n_val``, the four scores, ``seconds`` and
            ``diverged_at``, in that order.
        """
        return {
            "field": self.field,
            "value": self.value,
            "equal": self.equal,
            "epochs": self.epochs,
            "steps": self.steps,
            "batch_size": self.config.batch_size,
            "lr": self.config.lr,
            "full_batch": self.full_batch,
            "n_fit": self.n_fit,
            "n_val": self.n_val,
            "train_loss": self.train_loss,
            "train_acc": self.train_acc,
            "val_loss": self.val_loss,
            "val_acc": self.val_acc,
            "seconds": self.seconds,
            "diverged_at": self.diverged_at,
        }


def train_point(
    data: SplitData,
    base: TrainConfig,
    field: str,
    value: Any,
    *,
    equal: str = "epochs",
    updates: int | None = None,
) -> SweepPoint:
    """Train one model with ``field = value`` on ``data``'s fit part; score it on the rest.

    With ``equal="updates"`` it makes exactly ``updates`` SGD steps: whole epochs, then, for
    the remaining ``r`` steps, one more epoch over the first ``r * batch_size`` examples of
    that epoch's order (the ones a whole epoch would have visited first; ``fit`` shuffles
    them again). A value whose training diverges gives a point with infinite losses and
    ``diverged_at`` set, which never wins.

    Parameters
    ----------
    data : SplitData
        The fit and validation parts.
    base : TrainConfig
        The sweep's base configuration.
    field : str
        The field swept (see :func:`~softreg.sweep.check_field`).
    value : float or int
        Its value for this point.
    equal : str, default "epochs"
        The budget held fixed: ``"epochs"`` or ``"updates"``.
    updates : int or None, default None
        With ``equal="updates"``, the steps to make; None:
        :func:`~softreg.sweep.updates_budget` of ``base``.

    Returns
    -------
    SweepPoint
        The point, scored on ``data``'s validation part.

    Raises
    ------
    ConfigError
        ``equal`` is not one of :data:`~softreg.sweep.EQUAL`, or the point's configuration
        is invalid.
    """
    if equal not in EQUAL:
        raise ConfigError(f"equal must be one of {', '.join(EQUAL)}, got {equal!r}")
    config = point_config(base, field, value)
    model = make_model(config, data.X_fit, data.num_classes)
    whole, rest, epochs = config.epochs, 0, float(config.epochs)
    if equal == "updates":
        whole, rest, epochs = _split_budget(
            updates or updates_budget(base, data.n_fit), config, data.n_fit
        )
        config = replace(config, epochs=whole + (rest > 0))
    known = {"field": field, "value": value, "equal": equal, "config": config, "epochs": epochs}
    try:
        result, seconds = _fit_steps(model, data, config, whole, rest)
    except DivergenceError as exc:
        return _diverged(known, data, exc)
    return _scored(known, model, data, result, seconds)


def _split_budget(budget: int, config: TrainConfig, n: int) -> tuple[int, int, float]:
    """Return ``budget`` steps on ``n`` rows as whole epochs, remaining steps, and epochs."""
    batch = min(config.batch_size, n)
    whole, rest = divmod(budget, math.ceil(n / batch))
    return whole, rest, whole + rest * batch / n


def _fit_steps(
    model: Any, data: SplitData, config: TrainConfig, whole: int, rest: int
) -> tuple[FitResult, float]:
    """Train ``whole`` epochs, then ``rest`` steps over the start of the next epoch's order.

    Return the last ``fit``'s result and its training seconds.
    """
    X, y, n = data.X_fit, data.y_fit, data.n_fit
    state: TrainState | None = None
    result = None
    seconds = 0.0
    if whole:
        result = fit(model, (X, y), None, replace(config, epochs=whole))
        state, seconds = result.state, result.seconds_train
    if rest:
        batch = min(config.batch_size, n)
        first = epoch_permutation(n, seed=config.seed, epoch=whole)[: rest * batch]
        result = fit(model, (X[first], y[first]), None, config, state=state)
        seconds = result.seconds_train
    assert result is not None  # a budget >= 1 always trains
    return result, seconds


def _diverged(known: dict[str, Any], data: SplitData, exc: DivergenceError) -> SweepPoint:
    """Return the point of a value whose training diverged: infinite losses, never best."""
    return SweepPoint(
        **known,
        steps=exc.step,
        n_fit=data.n_fit,
        n_val=int(data.y_val.shape[0]),
        train_loss=math.inf,
        train_acc=math.nan,
        val_loss=math.inf,
        val_acc=math.nan,
        diverged_at=exc.step,
        seconds=exc.state.seconds if exc.state is not None else math.nan,
    )


def _scored(
    known: dict[str, Any], model: Any, data: SplitData, result: FitResult, seconds: float
) -> SweepPoint:
    """Return the point of a trained model, scored on the validation part."""
    final = result.history.final
    scored = evaluate(
        model, result.params, data.X_val, data.y_val, batch_size=known["config"].eval_batch_size
    )
    return SweepPoint(
        **known,
        steps=result.state.step,
        n_fit=data.n_fit,
        n_val=scored.n,
        train_loss=final.train_loss,
        train_acc=final.train_acc,
        val_loss=scored.loss,
        val_acc=scored.accuracy,
        seconds=seconds,
    )
