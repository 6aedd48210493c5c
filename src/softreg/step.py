"""One training step and one evaluation pass over a chunk of rows.

Both are pure functions of arrays (and dicts and tuples of arrays), so that JAX and
TensorFlow can compile them; NumPy and PyTorch run them eagerly. What stays the same through
a run (the model, the optimiser, the loss's variant) is bound once in a :class:`StepRules`;
what changes from step to step travels as a :class:`Carry` (the training state the step
updates) and a :class:`StepInputs` (this step's learning rate and sampled classes).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from softreg import backend, ops, sampling
from softreg.config import TrainConfig
from softreg.halt import Halt, freeze_unless_finite
from softreg.optim import SGD
from softreg.protocols import Model, Params

# Keeps the sampled softmax's draws apart from other (seed, epoch, ...) random streams.
_SAMPLING_STREAM = 1


class NonFiniteLoss(Exception):
    """Raised by an eager training step before it changes anything in place.

    Parameters
    ----------
    loss : float
        The batch's summed loss, NaN or infinite.
    """

    def __init__(self, loss: float):
        self.loss = loss


@dataclass(frozen=True)
class StepRules:
    """What every step of a run does the same way.

    Attributes
    ----------
    model : Model
        The model, without input standardisation (``fit`` standardises the data once).
    optimizer : SGD
        The optimiser; its ``update`` takes the parameters over (see ``donate``).
    softmax : str
        ``"stable"`` or ``"naive"`` (the book's formula, which overflows).
    chunk_size : int
        > 0: the output layer over chunks of that many classes, never forming the logits.
    check_loss : bool
        Raise :class:`NonFiniteLoss` before updating anything when the batch's loss is not
        finite (NumPy: it updates in place and reads the loss on the host for free).
    freeze : bool
        Keep the state as it was when the batch's loss is not finite, and from then on,
        recording that loss and the steps taken before it in :attr:`Carry.halt`: divergence
        is seen without reading the loss on the host at every step (compiled steps, and
        PyTorch, whose host reads would wait for the device).
    all_reduce : callable or None
        A data-parallel run's sum over ranks (:meth:`Communicator.all_reduce_sum`).
    """

    model: Model
    optimizer: SGD
    softmax: str = "stable"
    chunk_size: int = 0
    check_loss: bool = False
    freeze: bool = False
    all_reduce: Callable[[dict[str, Any]], dict[str, Any]] | None = None


class Carry(NamedTuple):
    """The training state a step reads and returns anew.

    Attributes
    ----------
    params : Params
        The model's parameters.
    opt_state : dict
        The optimiser's state (momentum buffers).
    totals : dict
        The epoch's sums so far, 0-d arrays: ``loss`` (summed per-example loss) and
        ``correct`` (number of correct predictions), computed before each update as the
        book does.
    halt : Halt or None
        Where the steps stopped being finite, when the rules ``freeze``; else None.
    """

    params: Params
    opt_state: dict[str, Any]
    totals: dict[str, Any]
    halt: Halt | None = None


class StepInputs(NamedTuple):
    """What one step takes besides the state and the batch's rows.

    Attributes
    ----------
    weight : array or None
        ``(n_samples,)`` every example's loss weight (averaging 1), or None.
    sampled : dict or None
        Sampled softmax: ``{"classes": (n_sampled,) int, "log_q": (n_classes,) float32}``,
        this step's classes and the log of the distribution they were drawn from; else None.
    lr : array or None
        This step's learning rate as a float32 0-d array under a schedule; None for the
        optimiser's constant rate.
    """

    weight: Any = None
    sampled: dict[str, Any] | None = None
    lr: Any = None


def train_step(
    rules: StepRules, carry: Carry, X: Any, y: Any, idx: Any, inputs: StepInputs
) -> Carry:
    """Take one SGD step on the rows ``idx`` of ``(X, y)``.

    Parameters
    ----------
    rules : StepRules
        The model, optimiser and loss variant.
    carry : Carry
        The parameters, optimiser state and the epoch's sums so far. The parameters and
        optimiser state are donated to the update: mutable arrays are updated in place, so
        only the owner of the training loop (:func:`softreg.train.fit`) may call this.
    X : array, shape (n_samples, n_features)
        All training inputs, standardised.
    y : array, shape (n_samples,)
        All training labels.
    idx : array, shape (batch_size,)
        The rows of this batch (of this rank's shard, in a data-parallel run).
    inputs : StepInputs
        Sample weights, sampled classes and learning rate.

    Returns
    -------
    Carry
        The new parameters and optimiser state, and ``totals`` with this batch's summed loss
        and correct count added. With ``rules.all_reduce`` the gradient, loss and count are
        the whole batch's, on every rank. With ``rules.freeze``, the carry given when this
        batch's loss, or an earlier one's, was not finite (with ``halt`` recording it).

    Raises
    ------
    NonFiniteLoss
        With ``rules.check_loss``: the batch's loss is not finite; nothing was changed.
    """
    xp = backend.get_namespace(X)
    X_batch, y_batch = xp.take(X, idx, axis=0), xp.take(y, idx, axis=0)
    w_batch = xp.take(inputs.weight, idx, axis=0) if inputs.weight is not None else None
    losses, grads, correct = _losses_and_grads(
        rules, carry.params, X_batch, y_batch, w_batch, inputs.sampled, xp=xp
    )
    batch_loss = xp.sum(losses)
    if rules.all_reduce is not None:  # before the check: every rank checks the same loss
        grads, batch_loss, correct = sum_over_ranks(
            rules.all_reduce, grads, batch_loss, correct, losses.shape[0], xp=xp
        )
    if rules.check_loss and not math.isfinite(float(batch_loss)):
        raise NonFiniteLoss(float(batch_loss))
    # Freezing needs the old state after the update: it may not be updated in place.
    params, opt_state = rules.optimizer.update(
        carry.params, grads, carry.opt_state, donate=not rules.freeze, lr=inputs.lr
    )
    totals = carry.totals
    # The sums keep their dtypes (a compiled loop's carry may not change them).
    correct = xp.astype(correct, totals["correct"].dtype)
    totals = {"loss": totals["loss"] + batch_loss, "correct": totals["correct"] + correct}
    new = Carry(params, opt_state, totals, carry.halt)
    return freeze_unless_finite(carry, new, batch_loss, xp=xp) if rules.freeze else new


def _losses_and_grads(
    rules: StepRules,
    params: Params,
    X: Any,
    y: Any,
    weight: Any,
    sampled: dict[str, Any] | None,
    *,
    xp: Any,
) -> tuple[Any, Params, Any]:
    """Return one batch's per-example losses, gradients and number of correct predictions.

    The way the rules ask: all logits at once, over chunks of classes, or with the sampled
    softmax's gradient.
    """
    model, chunk_size = rules.model, rules.chunk_size
    if sampled is not None:
        losses, grads, predicted = model.loss_and_grad_sampled(
            params,
            X,
            y,
            sampled["classes"],
            sampled["log_q"],
            chunk_size=chunk_size or None,
            weight=weight,
            xp=xp,
        )
    elif chunk_size:
        losses, grads, predicted = model.loss_and_grad_chunked(
            params, X, y, chunk_size=chunk_size, weight=weight, xp=xp
        )
    else:
        losses, grads, logits = model.loss_and_grad(
            params, X, y, weight=weight, softmax=rules.softmax, xp=xp
        )
        return losses, grads, ops.count_correct(logits, y, xp=xp)
    return losses, grads, xp.sum(xp.astype(predicted == y, xp.int32))


def sum_over_ranks(
    all_reduce: Callable[[dict[str, Any]], dict[str, Any]],
    grads: Params,
    batch_loss: Any,
    correct: Any,
    rows: int,
    *,
    xp: Any,
) -> tuple[Params, Any, Any]:
    """Return the whole batch's mean gradient, summed loss and correct count.

    Each rank sends sums (its mean gradient times its ``rows``), so a batch that does not
    split evenly still weighs every example alike, as one process would. A rank with no rows
    (a last batch smaller than the ranks) sends zeros: its mean over no rows is 0/0, and NaN
    times 0 rows would still be NaN. One collective: everything travels in the loss's dtype
    (a batch's counts are exact in it).

    Parameters
    ----------
    all_reduce : callable
        Sums a dict of dicts of arrays over the ranks.
    grads : Params
        This rank's mean gradient over its ``rows`` rows.
    batch_loss, correct : 0-d arrays
        This rank's summed loss and number of correct predictions.
    rows : int
        Rows in this rank's shard of the batch.
    xp : namespace
        The arrays' namespace.

    Returns
    -------
    tuple
        ``(grads, batch_loss, correct)`` of the whole batch.
    """
    dtype, dev = batch_loss.dtype, backend.device(batch_loss)
    sums = {name: g * rows if rows else xp.zeros_like(g) for name, g in grads.items()}
    total = all_reduce(
        {
            "grads": sums,
            "loss": batch_loss,
            "correct": xp.astype(correct, dtype),
            "rows": xp.asarray(rows, dtype=dtype, device=dev),
        }
    )
    mean_grads = {name: g / total["rows"] for name, g in total["grads"].items()}
    return mean_grads, total["loss"], xp.astype(total["correct"], correct.dtype)


def sampling_proposal(
    config: TrainConfig, model: Model, labels: Any, be: backend.Backend
) -> tuple[np.ndarray, Any] | None:
    """Return what the sampled softmax draws classes from, or None without it.

    Parameters
    ----------
    config : TrainConfig
        The run's configuration; ``config.sampled`` > 0 asks for the sampled softmax.
    model : Model
        The model (its number of classes).
    labels : array, shape (n_samples,)
        The training labels.
    be : Backend
        Where the log-proposal goes.

    Returns
    -------
    tuple or None
        ``(probs, log_q)``: the training labels' frequencies mixed with a little of the
        uniform distribution (host, float64 ``(n_classes,)``) and their log (float32, on the
        device).
    """
    if not config.sampled:
        return None
    probs = sampling.unigram_probs(backend.to_numpy(labels), model.num_outputs)
    return probs, be.asarray(np.log(probs).astype(np.float32))


def draw_sampled(probs: np.ndarray, config: TrainConfig, epoch: int, batch: int) -> np.ndarray:
    """Return the classes the sampled softmax uses at one step (:attr:`StepInputs.sampled`).

    The classes are drawn from ``(seed, epoch, batch)`` alone, so that a resumed run draws
    what the uninterrupted one would have.

    Parameters
    ----------
    probs : ndarray, shape (n_classes,)
        The distribution to draw from (what :func:`sampling_proposal` returned first).
    config : TrainConfig
        The run's configuration (its ``seed`` and ``sampled``).
    epoch : int
        The epoch, 0-based.
    batch : int
        The batch within the epoch, 1-based.

    Returns
    -------
    ndarray, shape (config.sampled,)
        The classes, integers.
    """
    rng = np.random.default_rng((config.seed, epoch, batch, _SAMPLING_STREAM))
    return sampling.draw_classes(probs, config.sampled, rng)


def evaluation_sums(
    model: Model, params: Params, X: Any, y: Any, *, chunk_size: int | None = 0
) -> tuple[Any, Any]:
    """Return the summed cross-entropy and number of correct predictions on ``(X, y)``.

    A pure function (the labels must have been checked).

    Parameters
    ----------
    model : Model
        The model.
    params : Params
        Its parameters.
    X : array, shape (n_samples, n_features)
        Inputs.
    y : array, shape (n_samples,)
        Labels in ``[0, n_classes)``.
    chunk_size : int or None
        0 forms the logits; otherwise classes are taken that many at a time (None:
        automatically), see :mod:`softreg.vocab`.

    Returns
    -------
    tuple of 0-d arrays
        ``(loss_sum, correct)``.
    """
    xp = backend.get_namespace(X)
    if chunk_size != 0:
        losses, predicted = model.losses_chunked(params, X, y, chunk_size=chunk_size, xp=xp)
        return xp.sum(losses), xp.sum(xp.astype(predicted == y, xp.int32))
    logits = model.forward(params, X, xp=xp)
    loss_sum = xp.sum(ops.cross_entropy_unchecked(logits, y, xp=xp))
    return loss_sum, ops.count_correct(logits, y, xp=xp)
