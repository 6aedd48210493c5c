"""One training step and one evaluation pass over a chunk: pure functions of the parameters
that JAX and TensorFlow compile."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from softreg import backend, ops, sampling
from softreg.config import TrainConfig
from softreg.optim import scheduled_lr
from softreg.protocols import Params


class NonFiniteLoss(Exception):
    """Raised by an eager training step before it changes anything in place."""

    def __init__(self, loss: float):
        self.loss = loss


def train_step(
    model: Any,
    optimizer: Any,
    softmax: str,
    params: Params,
    opt_state: dict[str, Any],
    totals: dict[str, Any],
    X: Any,
    y: Any,
    idx: Any,
    weight: Any = None,
    sampled: Any = None,
    lr: Any = None,
    *,
    check_loss: bool = False,
    all_reduce: Any = None,
    chunk_size: int = 0,
) -> tuple[Params, dict[str, Any], dict[str, Any]]:
    """One SGD step on the rows ``idx`` of ``(X, y)`` (JAX and TensorFlow compile it).

    Returns the new parameters and optimiser state, and ``totals`` (0-d arrays: ``loss``, the
    summed loss, and ``correct``, the number of correct predictions) with this batch's added,
    computed before the update as the book does. Accumulating here keeps the epoch's sums on
    the device and the step one call. ``weight`` (all examples' weights) weights the loss.
    ``params`` and ``opt_state`` are donated to the update (see :meth:`SGD.update`): mutable
    arrays are updated in place, so only the owner of the training loop (:func:`fit`) may
    call this. With ``check_loss`` (eager backends only) a batch loss that is not finite
    raises before anything is updated. With ``all_reduce`` (a data-parallel run's sum over
    ranks) ``idx`` is this rank's shard of the batch, and the gradient, loss and count are
    the whole batch's, on every rank. ``chunk_size`` > 0 computes the output layer over
    chunks of that many classes, never forming the logits; ``sampled`` (``{"classes": (S,)
    classes drawn for this step, "log_q": (num_outputs,) log-proposal}``) takes the gradient
    of the sampled softmax instead (the losses and counts stay exact). ``lr`` (a 0-d array)
    is this step's learning rate under a schedule; None: the optimiser's own.
    """
    xp = backend.get_namespace(X)
    X_batch, y_batch = xp.take(X, idx, axis=0), xp.take(y, idx, axis=0)
    w_batch = xp.take(weight, idx, axis=0) if weight is not None else None
    losses, grads, correct = _losses_and_grads(
        model, params, X_batch, y_batch, w_batch, softmax, chunk_size, sampled
    )
    batch_loss = xp.sum(losses)
    if all_reduce is not None:  # before the check, so that every rank checks the same loss
        grads, batch_loss, correct = _sum_over_ranks(
            all_reduce, grads, batch_loss, correct, losses.shape[0], xp=xp
        )
    if check_loss and not math.isfinite(float(batch_loss)):
        raise NonFiniteLoss(float(batch_loss))
    params, opt_state = optimizer.update(params, grads, opt_state, donate=True, lr=lr)
    totals = {"loss": totals["loss"] + batch_loss, "correct": totals["correct"] + correct}
    return params, opt_state, totals


def _sum_over_ranks(
    all_reduce: Any, grads: Params, batch_loss: Any, correct: Any, rows: int, *, xp: Any
) -> tuple[Params, Any, Any]:
    """The whole batch's mean gradient, summed loss and correct count from this rank's shard
    of ``rows`` rows. Each rank sends sums (its mean gradient times its rows), so a batch that
    does not split evenly still weighs every example alike, as one process would. A rank with
    no rows (a last batch smaller than the ranks) sends zeros: its mean over no rows is 0/0,
    and NaN times 0 rows would still be NaN. One collective: everything travels in the loss's
    dtype (a batch's counts are exact in it).
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


def _losses_and_grads(
    model: Any,
    params: Params,
    X: Any,
    y: Any,
    weight: Any,
    softmax: str,
    chunk_size: int,
    sampled: Any,
) -> tuple[Any, Params, Any]:
    """One batch's per-example losses, gradients and number of correct predictions, the
    way the configuration asks: all logits at once, over chunks of classes, or with the
    sampled softmax's gradient.
    """
    xp = backend.get_namespace(X)
    if sampled is not None:
        losses, grads, predicted = model.loss_and_grad_sampled(
            params,
            X,
            y,
            sampled["classes"],
            sampled["log_q"],
            chunk_size=chunk_size or None,
            weight=weight,
        )
    elif chunk_size:
        losses, grads, predicted = model.loss_and_grad_chunked(
            params, X, y, chunk_size=chunk_size, weight=weight
        )
    else:
        losses, grads, logits = model.loss_and_grad(params, X, y, weight=weight, softmax=softmax)
        return losses, grads, ops.count_correct(logits, y, xp=xp)
    return losses, grads, xp.sum(xp.astype(predicted == y, xp.int32))


def _proposal(
    config: TrainConfig, model: Any, labels: Any, be: backend.Backend
) -> tuple[np.ndarray, Any] | None:
    """With sampled softmax, what the classes are drawn from: the training labels'
    frequencies mixed with a little of the uniform distribution (host, float64), and their
    log (on the device); else None.
    """
    if not config.sampled:
        return None
    probs = sampling.unigram_probs(backend.to_numpy(labels), model.num_outputs)
    return probs, be.asarray(np.log(probs).astype(np.float32))


def _step_sampled(
    proposal: Any, config: TrainConfig, epoch: int, batch: int, be: backend.Backend
) -> dict[str, Any] | None:
    """With sampled softmax, the step's ``sampled`` argument: this step's classes, drawn from
    ``(seed, epoch, batch)`` alone so that a resumed run draws what the uninterrupted one
    would have, and the log-proposal; else None.
    """
    if proposal is None:
        return None
    probs, log_q = proposal
    rng = np.random.default_rng((config.seed, epoch, batch, _SAMPLING_STREAM))
    classes = be.asarray(sampling.draw_classes(probs, config.sampled, rng))
    return {"classes": classes, "log_q": log_q}


def _step_lr(config: TrainConfig, step: int, total_steps: int, be: backend.Backend) -> Any:
    """Step ``step``'s (0-based) learning rate as a float32 0-d array on the device, under a
    schedule; None with a constant rate (the optimiser's own, as a Python number). An array,
    not a number, so that a compiled step is traced once, not once per value.
    """
    if config.lr_schedule == "constant":
        return None
    return be.asarray(
        np.asarray(scheduled_lr(config.lr, config.lr_schedule, step, total_steps), dtype=np.float32)
    )


_SAMPLING_STREAM = 1  # keeps the draws' seeds apart from other (seed, epoch, ...) streams


def evaluation_sums(
    model: Any, params: Params, X: Any, y: Any, *, chunk_size: int | None = 0
) -> tuple[Any, Any]:
    """Summed cross-entropy and number of correct predictions on ``(X, y)``, as a pure
    function (labels must have been checked). ``chunk_size``: 0 forms the logits; otherwise
    classes are taken that many at a time (None: automatic), see :mod:`softreg.vocab`.
    """
    xp = backend.get_namespace(X)
    if chunk_size != 0:
        losses, predicted = model.losses_chunked(params, X, y, chunk_size=chunk_size)
        return xp.sum(losses), xp.sum(xp.astype(predicted == y, xp.int32))
    logits = model.forward(params, X)
    loss_sum = xp.sum(ops.cross_entropy_unchecked(logits, y, xp=xp))
    return loss_sum, ops.count_correct(logits, y, xp=xp)
