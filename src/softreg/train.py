"""The training loop and evaluation: ``fit`` returns what it did and never prints.

Progress bars, live plots and run-directory files are callbacks that read what ``fit`` reports
(:class:`~softreg.callbacks.Callback`). All training state (parameters, optimiser state,
epochs and steps done) is in a :class:`~softreg.history.TrainState`, and the data order of
epoch ``e`` is a pure function of ``(seed, e)``, so a run can be checkpointed and continued.

``fit`` reads top-down: :func:`_prepare` checks the data and builds the compiled step once;
each epoch runs its steps (:func:`_train_epoch`), each step is checked for divergence
(:func:`_take_step`) and followed by the reports it is due (:func:`_after_step`); the epoch
ends with the evaluation and its record (:func:`_end_epoch`).
"""

from __future__ import annotations

import functools
import hashlib
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from softreg import backend, divergence
from softreg.build import check_trainable, init_state
from softreg.callbacks import Callback
from softreg.checks import check_int
from softreg.config import TrainConfig
from softreg.data.batching import epoch_permutation
from softreg.errors import DivergenceError
from softreg.history import EpochRecord, Evaluation, FitResult, History, StepRecord, TrainState
from softreg.protocols import Communicator, Model, Params
from softreg.step import (
    Carry,
    NonFiniteLoss,
    StepInputs,
    StepRules,
    evaluation_sums,
    sampled_classes,
    sampling_proposal,
    step_lr,
    train_step,
)
from softreg.validation import check_data, check_resumable, checked_sample_weight, to_device


# Overflow shows up as a non-finite loss, which stops training with a clear error; NumPy's
# warnings on the way there would only be noise.
@np.errstate(over="ignore", invalid="ignore", divide="ignore")
def fit(  # noqa: PLR0913 - the data, the configuration and where to start, all keyword-able
    model: Model,
    train: tuple[Any, Any],
    test: tuple[Any, Any] | None = None,
    config: TrainConfig | None = None,
    *,
    callbacks: Sequence[Callback] = (),
    state: TrainState | None = None,
    history: History | None = None,
    sample_weight: Any = None,
    checkpoint_every: int = 0,
    communicator: Communicator | None = None,
) -> FitResult:
    """Train ``model`` with minibatch SGD, as the book's ``train_ch3`` does.

    Each epoch visits the training set in the order ``epoch_permutation(n, seed, epoch)``,
    records the loss and accuracy accumulated over its minibatches (as the book does) and the
    loss and accuracy on ``test`` after its last step. The arrays may be NumPy arrays or
    arrays of ``config.backend``; they are checked (finite features, labels in
    ``[0, n_classes)``) and moved to ``config.device`` once. On JAX and TensorFlow the step
    and the evaluation are compiled; the compile time is reported apart.

    Parameters
    ----------
    model : Model
        What to train, e.g. from :func:`softreg.build.make_model`; its input standardisation
        is applied to the data once, before the first step.
    train : tuple of arrays
        ``(X, y)``: inputs ``(n_samples, n_features)`` (or ``(n_samples, 28, 28)``, flattened)
        and integer labels ``(n_samples,)``.
    test : tuple of arrays, optional
        ``(X_test, y_test)``, evaluated after every epoch; never used to choose anything.
    config : TrainConfig, optional
        The recipe; the book's by default.
    callbacks : sequence of Callback
        Hooks called as training goes; time spent in them is not training time.
    state : TrainState, optional
        Where to continue an earlier run, from an epoch boundary or from the middle of an
        epoch (with the ``history`` so far); a fresh start by default.
    history : History, optional
        The records of the run ``state`` comes from; they are copied, not changed.
    sample_weight : array, shape (n_samples,), optional
        Weights (>= 0) of each example's loss, rescaled to average 1 so that their scale does
        not change the learning rate.
    checkpoint_every : int
        > 0: every that many steps the callbacks' ``on_checkpoint`` gets a copy of the state.
    communicator : Communicator, optional
        Makes this process one rank of a data-parallel run (:func:`softreg.distributed.init`,
        torch backend): it computes its shard ``batch[rank::world_size]`` of each global
        minibatch, and the step sums gradients, losses and counts over the ranks, so that
        every rank follows the single-process trajectory and reports the global numbers.

    Returns
    -------
    FitResult
        The final state, the history (one :class:`EpochRecord` per epoch, a
        :class:`StepRecord` per running-loss report), and the training and compile seconds.

    Raises
    ------
    ConfigError
        The configuration cannot train this model, or ``state`` comes from another one.
    DataValueError
        The data cannot be trained on (shapes, NaN, labels outside the model's classes).
    DivergenceError
        A step's loss was not finite (too large a learning rate, say). The error carries the
        state before that step and the history until then. When the weights overflowed in an
        epoch's last steps (seen at its end: weights or test loss not finite) no good state
        is known, and its ``state`` is None.
    """
    config = config or TrainConfig()
    check_int("checkpoint_every", checkpoint_every, minimum=0)
    loop = _prepare(
        model, train, test, config, sample_weight=sample_weight, communicator=communicator
    )
    state = init_state(model, config) if state is None else state
    history = History() if history is None else History(list(history.records), list(history.steps))
    check_resumable(state, loop.steps_per_epoch, loop.batch_size)
    if communicator is not None:
        communicator.agree(_start_fingerprint(train, state, config))
    clock = _Clock(
        tuple(callbacks), checkpoint_every, loop.compiled, state.seconds + loop.seconds_scaling
    )
    clock.notify("on_train_begin", config, loop.steps_per_epoch, state)
    # The loop updates its arrays in place (donated to the optimiser): work on copies, so the
    # caller's state, and the snapshots handed out, never change.
    xp = loop.be.xp
    carry = Carry(_copy(state.params, xp), _copy(state.opt_state, xp), {})
    cursor = _Cursor(epoch=state.epoch, step=state.step)
    for epoch in range(state.epoch, config.epochs):
        cursor.epoch = epoch
        carry = _train_epoch(
            loop, clock, carry, cursor, history, resume=state if epoch == state.epoch else None
        )
        state = _end_epoch(loop, clock, carry, cursor, history)
    seconds_train = clock.elapsed()
    state.seconds = seconds_train
    clock.notify("on_train_end", history, state)
    return FitResult(
        state=state,
        history=history,
        seconds_train=seconds_train,
        seconds_compile=clock.compile_seconds(),
    )


@dataclass(frozen=True)
class _Loop:
    """What stays the same through one call of ``fit``: the data on the device, the compiled
    step and evaluation, the batch geometry and this rank's place in it.
    """

    config: TrainConfig
    be: backend.Backend
    X: Any  # (n_samples, n_features), standardised, on the device
    y: Any  # (n_samples,)
    test: tuple[Any, Any] | None
    weight: Any  # (n_samples,) float32 on the device, or None
    proposal: tuple[np.ndarray, Any] | None  # the sampled softmax's, or None
    step_fn: backend.Compiled
    eval_fn: backend.Compiled
    batch_size: int
    shard: tuple[int, int]  # (rank, ranks): this rank takes batch[rank::ranks]
    seconds_scaling: float  # standardising the data: training work, before the clock starts

    @property
    def n(self) -> int:
        return self.X.shape[0]

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.n / self.batch_size)

    @property
    def compiled(self) -> tuple[backend.Compiled, ...]:
        return self.step_fn, self.eval_fn


@dataclass
class _Cursor:
    """Where the loop is: the position a :class:`TrainState` records."""

    epoch: int  # 0-based, the epoch running
    step: int  # optimiser steps done in the whole run
    batch: int = 0  # batches of this epoch done
    logged: tuple[float, int] = (0.0, 0)  # the epoch's loss sum and examples at the last report


class _Clock:
    """Training time, which leaves out callbacks and compiling, and the callbacks' hooks."""

    def __init__(
        self,
        callbacks: tuple[Callback, ...],
        checkpoint_every: int,
        compiled: tuple[backend.Compiled, ...],
        seconds_before: float,
    ):
        self.callbacks, self.checkpoint_every = callbacks, checkpoint_every
        self.compiled = compiled
        self.callback_seconds = 0.0
        self.start = time.perf_counter() - seconds_before

    def compile_seconds(self) -> float:
        return sum(fn.seconds for fn in self.compiled)

    def elapsed(self) -> float:
        """Training seconds so far (those of the runs this one continues included)."""
        now = time.perf_counter()
        return now - self.start - self.callback_seconds - self.compile_seconds()

    def notify(self, hook: str, *args: Any) -> None:
        started = time.perf_counter()
        for cb in self.callbacks:
            getattr(cb, hook)(*args)
        self.callback_seconds += time.perf_counter() - started


def _prepare(
    model: Model,
    train: tuple[Any, Any],
    test: tuple[Any, Any] | None,
    config: TrainConfig,
    *,
    sample_weight: Any,
    communicator: Communicator | None,
) -> _Loop:
    """Check the data, move it to the device standardised, and compile the step."""
    be = backend.resolve(config.backend, config.device)
    check_trainable(model, config)
    X, y = to_device(train, be, "train", model)
    test = to_device(test, be, "test", model) if test is not None else None
    # The model's input standardisation is applied to the data once, here, rather than at
    # every step: the steps and evaluations see the same model without it, on inputs
    # already standardised (the same float32 arithmetic, so the same numbers). It is
    # training work: its time counts in seconds_train.
    started = time.perf_counter()
    X = model.scale_inputs(X)
    test = (model.scale_inputs(test[0]), test[1]) if test is not None else None
    model = model.without_input_scaling()
    seconds_scaling = time.perf_counter() - started
    weight = checked_sample_weight(sample_weight, X.shape[0])
    # Divergence is caught at the step it happens and the state from before that step kept.
    # Eager steps (NumPy, PyTorch) update in place, so they check the loss before the update;
    # compiled ones (JAX, TensorFlow) return new arrays, so the old ones are still there.
    rules = StepRules(
        model,
        config.sgd(),
        config.softmax,
        config.chunk_size,
        check_loss=be.mutable,
        all_reduce=communicator.all_reduce_sum if communicator else None,
    )
    # Sampled softmax is for many classes: evaluate those in (automatic) chunks as well.
    eval_chunk = config.chunk_size or (None if config.sampled else 0)
    return _Loop(
        config=config,
        be=be,
        X=X,
        y=y,
        test=test,
        weight=be.asarray(weight.astype(np.float32)) if weight is not None else None,
        proposal=sampling_proposal(config, model, train[1], be),
        step_fn=be.compile(functools.partial(train_step, rules)),
        eval_fn=be.compile(functools.partial(evaluation_sums, model, chunk_size=eval_chunk)),
        batch_size=X.shape[0] if config.optimizer == "gd" else config.batch_size,
        shard=(communicator.rank, communicator.world_size) if communicator else (0, 1),
        seconds_scaling=seconds_scaling,
    )


def _train_epoch(
    loop: _Loop,
    clock: _Clock,
    carry: Carry,
    cursor: _Cursor,
    history: History,
    *,
    resume: TrainState | None,
) -> Carry:
    """Run the steps of epoch ``cursor.epoch``, from where ``resume`` stopped if given."""
    config, n = loop.config, loop.n
    # The permutation crosses to the device once per epoch; batches are slices of it.
    full_batch = config.optimizer == "gd"
    order = (
        np.arange(n) if full_batch else epoch_permutation(n, seed=config.seed, epoch=cursor.epoch)
    )
    order = loop.be.asarray(order)
    first_batch, totals, cursor.logged = 1, _zero_sums(loop), (0.0, 0)
    if resume is not None and resume.epoch_sums is not None:  # continue mid-epoch
        first_batch, cursor.logged = resume.batch + 1, resume.logged
        totals = backend.tree_map(lambda v: loop.be.asarray(np.asarray(v)), resume.epoch_sums)
    carry = carry._replace(totals=totals)
    for batch in range(first_batch, loop.steps_per_epoch + 1):
        cursor.batch = batch
        carry = _take_step(loop, clock, carry, cursor, order, history)
        cursor.step += 1
        _after_step(loop, clock, carry, cursor, history)
    return carry


def _take_step(
    loop: _Loop, clock: _Clock, carry: Carry, cursor: _Cursor, order: Any, history: History
) -> Carry:
    """Take the step of batch ``cursor.batch``; on a loss that is not finite, raise a
    :class:`DivergenceError` that keeps the state from before it.
    """
    config, be = loop.config, loop.be
    begin, end = (cursor.batch - 1) * loop.batch_size, min(cursor.batch * loop.batch_size, loop.n)
    rank, ranks = loop.shard
    idx = order[begin:end] if ranks == 1 else order[begin:end][rank::ranks]
    total_steps = config.epochs * loop.steps_per_epoch  # the length a schedule spans
    inputs = StepInputs(
        weight=loop.weight,
        sampled=sampled_classes(loop.proposal, config, cursor.epoch, cursor.batch, be),
        lr=step_lr(config, cursor.step, total_steps, be),
    )
    try:
        new = loop.step_fn(carry, loop.X, loop.y, idx, inputs)
        # One scalar read per step (eager steps have read their batch loss).
        loss = 0.0 if be.mutable else float(new.totals["loss"])
    except NonFiniteLoss as exc:
        loss = exc.loss
    if math.isfinite(loss):
        return new
    good = _snapshot(
        loop, clock, carry, cursor, batch=cursor.batch - 1, copy=False, sums=cursor.batch > 1
    )
    message = divergence.divergence_message(
        config, cursor.epoch, cursor.batch, cursor.step + 1, loss
    )
    raise DivergenceError(message, state=good, history=history, step=cursor.step + 1)


def _after_step(
    loop: _Loop, clock: _Clock, carry: Carry, cursor: _Cursor, history: History
) -> None:
    """Give the callbacks what this step is due: the step's end, the running loss every
    ``log_every`` batches, a checkpoint every ``checkpoint_every`` steps.
    """
    if clock.callbacks:
        clock.notify("on_step_end", cursor.step, cursor.epoch)
    log_every = loop.config.log_every
    if log_every and cursor.batch % log_every == 0:
        loss = float(carry.totals["loss"])
        end = min(cursor.batch * loop.batch_size, loop.n)
        logged_loss, logged_n = cursor.logged
        report = StepRecord(
            epoch=cursor.epoch + 1,
            batch=cursor.batch,
            step=cursor.step,
            running_loss=(loss - logged_loss) / (end - logged_n),
        )
        cursor.logged = (loss, end)
        history.steps.append(report)
        clock.notify("on_log", report, history)
    if clock.checkpoint_every and cursor.step % clock.checkpoint_every == 0:
        snapshot = _snapshot(loop, clock, carry, cursor, batch=cursor.batch, sums=True)
        clock.notify("on_checkpoint", snapshot, history)


def _end_epoch(
    loop: _Loop, clock: _Clock, carry: Carry, cursor: _Cursor, history: History
) -> TrainState:
    """Evaluate on the test data, refuse overflowed weights, record the epoch and return the
    state at its end.
    """
    config, totals = loop.config, carry.totals
    evaluation = None
    if loop.test is not None:
        evaluation = _evaluate(loop.eval_fn, carry.params, *loop.test, config.eval_batch_size)
    overflow = divergence.overflow(carry.params, evaluation)
    if overflow:  # the last steps' updates overflowed: no later loss would say so
        raise DivergenceError(
            f"training diverged in epoch {cursor.epoch + 1}: {overflow}; "
            f"{divergence.hints(config)}. No good model is known from this run",
            state=None,
            history=history,
            step=cursor.step,
        )
    record = EpochRecord(
        epoch=cursor.epoch + 1,
        train_loss=float(totals["loss"]) / loop.n,
        train_acc=float(totals["correct"]) / loop.n,
        test_acc=evaluation.accuracy if evaluation else None,
        test_loss=evaluation.loss if evaluation else None,
        seconds=clock.elapsed(),
    )
    history.records.append(record)
    cursor.epoch, cursor.batch = cursor.epoch + 1, 0
    state = _snapshot(loop, clock, carry, cursor, batch=0, sums=False)
    clock.notify("on_epoch_end", record, history, state)
    return state


def _snapshot(
    loop: _Loop,
    clock: _Clock,
    carry: Carry,
    cursor: _Cursor,
    *,
    batch: int,
    sums: bool,
    copy: bool = True,
) -> TrainState:
    """The state at ``cursor`` after ``batch`` batches of its epoch, with the epoch's sums so
    far (``sums``) and the last report's position when mid-epoch; copied unless ``copy`` is
    False (the arrays of a step that failed before changing them).
    """
    params, opt_state = carry.params, carry.opt_state
    if copy:
        params, opt_state = _copy(params, loop.be.xp), _copy(opt_state, loop.be.xp)
    return TrainState(
        params=params,
        opt_state=opt_state,
        epoch=cursor.epoch,
        step=cursor.step,
        batch=batch,
        epoch_sums=backend.tree_map(backend.to_numpy, carry.totals) if sums else None,
        logged=cursor.logged if batch else (0.0, 0),
        seconds=clock.elapsed(),
    )


def _zero_sums(loop: _Loop) -> dict[str, Any]:
    xp, device = loop.be.xp, loop.be.device
    return {
        "loss": xp.zeros((), dtype=loop.X.dtype, device=device),
        "correct": xp.zeros((), dtype=xp.int32, device=device),
    }


def _copy(tree: Any, xp: Any) -> Any:
    """A copy of a dict (of dicts) of arrays."""
    return backend.tree_map(lambda a: xp.asarray(a, copy=True), tree)


def _start_fingerprint(
    train: tuple[Any, Any], state: TrainState, config: TrainConfig
) -> dict[str, float]:
    """What the ranks of a data-parallel run must share before the first step, as numbers
    (float64 sums stand in for checksums): a rank with other data, another NumPy's data
    order or another checkpoint would otherwise train on silently.
    """
    X, y = (backend.to_numpy(a) for a in train)
    order = epoch_permutation(X.shape[0], seed=config.seed, epoch=state.epoch)
    config_hash = hashlib.sha256(repr(sorted(config.to_dict().items())).encode()).hexdigest()
    return {
        "configuration": float(int(config_hash[:12], 16)),  # 48 bits: exact in float64
        "training data": float(np.sum(X, dtype=np.float64) + np.sum(y, dtype=np.float64)),
        "data order": float(order[:4096] @ np.arange(min(X.shape[0], 4096))),
        "step": float(state.step),
        "parameters": sum(
            float(np.sum(backend.to_numpy(p), dtype=np.float64)) for p in state.params.values()
        ),
    }


def evaluate(model: Model, params: Params, X: Any, y: Any, *, batch_size: int = 8192) -> Evaluation:
    """Return the mean cross-entropy and accuracy of ``model`` on ``(X, y)``.

    The book's ``evaluate_accuracy`` with its accumulator of correct and total, in chunks of
    ``batch_size`` rows (which bound memory, not results).

    Parameters
    ----------
    model : Model
        The model, with its input standardisation.
    params : Params
        Its parameters.
    X : array, shape (n_samples, n_features) or (n_samples, 28, 28)
        Inputs.
    y : array, shape (n_samples,)
        Integer labels in ``[0, n_classes)``.
    batch_size : int
        Rows per chunk.

    Returns
    -------
    Evaluation
        ``loss``, ``accuracy`` and ``n``.

    Raises
    ------
    DataValueError
        The data do not fit the model (see :func:`softreg.validation.check_data`).
    """
    check_data(backend.to_numpy(X), backend.to_numpy(y), "evaluation data", model)
    return _evaluate(functools.partial(evaluation_sums, model), params, X, y, batch_size)


def _evaluate(sums: Any, params: Params, X: Any, y: Any, batch_size: int) -> Evaluation:
    n = X.shape[0]
    loss_sum = correct = 0
    for begin in range(0, n, batch_size):
        end = min(begin + batch_size, n)  # the standard leaves out-of-range stops undefined
        chunk_loss, chunk_correct = sums(params, X[begin:end, ...], y[begin:end])
        loss_sum = loss_sum + chunk_loss
        correct = correct + chunk_correct
    return Evaluation(loss=float(loss_sum) / n, accuracy=float(correct) / n, n=n)
