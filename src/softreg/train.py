"""The training loop and evaluation: ``fit`` returns what it did and never prints.

Progress bars, live plots and run-directory files are callbacks that read what ``fit`` reports
(:class:`~softreg.callbacks.Callback`). All training state (parameters, optimiser state,
epochs and steps done) is in a :class:`~softreg.history.TrainState`, and the data order of
epoch ``e`` is a pure function of ``(seed, e)``, so a run can be checkpointed and continued.

``fit`` reads top-down: :func:`~softreg.prepare.prepare` checks the data and builds the
compiled step once; each epoch runs its steps (:func:`_train_epoch`) in segments between the
moments something is due (:func:`_segment_end`); each segment is checked once for divergence
(:func:`_take_steps`) and followed by the reports it is due (:func:`_after_steps`); the epoch
ends with the evaluation and its record (:func:`_end_epoch`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from softreg import backend, divergence
from softreg.build import init_state
from softreg.callbacks import Callback, wants_every_step
from softreg.checks import check_int
from softreg.config import TrainConfig
from softreg.data.batching import epoch_permutation
from softreg.errors import DivergenceError
from softreg.evaluation import evaluate_chunks
from softreg.history import EpochRecord, FitResult, History, StepRecord, TrainState
from softreg.prepare import Loop, prepare
from softreg.protocols import Communicator, Model
from softreg.segment import EpochPlan, epoch_plan, run_segment
from softreg.step import Carry
from softreg.validation import check_resumable, start_fingerprint


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
    loop = prepare(
        model, train, test, config, sample_weight=sample_weight, communicator=communicator
    )
    state = init_state(model, config) if state is None else state
    history = History() if history is None else History(list(history.records), list(history.steps))
    check_resumable(state, loop.steps_per_epoch, loop.batch_size)
    if communicator is not None:
        communicator.agree(start_fingerprint(train, state, config))
    clock = _Clock(
        tuple(callbacks), checkpoint_every, loop.compiled, state.seconds + loop.seconds_scaling
    )
    clock.notify("on_train_begin", config, loop.steps_per_epoch, state)
    clock.ask_progress()
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
        # A callback that overrides on_step_end is called after every step: the steps then
        # go one at a time. Progress comes as often as the most eager callback asks.
        self.every_step = any(wants_every_step(cb) for cb in callbacks)
        self.progress_every = 0

    def ask_progress(self) -> None:
        """Read how often the callbacks want progress (set in their ``on_train_begin``)."""
        wanted = [cb.progress_every for cb in self.callbacks if cb.progress_every > 0]
        self.progress_every = min(wanted, default=0)

    def compile_seconds(self) -> float:
        """Return the seconds spent compiling so far (not training time)."""
        return sum(fn.seconds for fn in self.compiled)

    def elapsed(self) -> float:
        """Return the training seconds so far (those of the runs continued included)."""
        now = time.perf_counter()
        return now - self.start - self.callback_seconds - self.compile_seconds()

    def notify(self, hook: str, *args: Any) -> None:
        """Call ``hook`` of every callback with ``args``, timing it apart."""
        started = time.perf_counter()
        for cb in self.callbacks:
            getattr(cb, hook)(*args)
        self.callback_seconds += time.perf_counter() - started


def _train_epoch(
    loop: Loop,
    clock: _Clock,
    carry: Carry,
    cursor: _Cursor,
    history: History,
    *,
    resume: TrainState | None,
) -> Carry:
    """Run the steps of epoch ``cursor.epoch``, from where ``resume`` stopped if given.

    The steps go in segments, each ending where something is due (:func:`_segment_end`).
    """
    config, n = loop.config, loop.n
    full_batch = config.optimizer == "gd"
    order = (
        np.arange(n) if full_batch else epoch_permutation(n, seed=config.seed, epoch=cursor.epoch)
    )
    first_batch, totals, cursor.logged = 1, _zero_sums(loop), (0.0, 0)
    if resume is not None and resume.epoch_sums is not None:  # continue mid-epoch
        first_batch, cursor.logged = resume.batch + 1, resume.logged
        totals = backend.tree_map(lambda v: loop.be.asarray(np.asarray(v)), resume.epoch_sums)
    carry = carry._replace(totals=totals)
    # The epoch's order, rates and sampled classes cross to the device once.
    plan = epoch_plan(loop, cursor.epoch, order, first_step=cursor.step - first_batch + 1)
    batch = first_batch
    while batch <= loop.steps_per_epoch:
        last = _segment_end(loop, clock, cursor, batch)
        carry = _take_steps(loop, clock, carry, cursor, plan, (batch, last), history)
        _after_steps(loop, clock, carry, cursor, history)
        batch = last + 1
    return carry


def _segment_end(loop: Loop, clock: _Clock, cursor: _Cursor, batch: int) -> int:
    """Return the last batch of the segment that starts at ``batch``.

    The first batch from ``batch`` on after which something is due: a step hook, a
    running-loss report, a checkpoint, a progress update or the epoch's end.
    """
    if clock.every_step:
        return batch
    offset = cursor.step - batch + 1  # steps of the run done after batch b: offset + b
    ends = [loop.steps_per_epoch]
    if loop.config.log_every:
        ends.append(_next_multiple(batch, loop.config.log_every))
    for every in (clock.checkpoint_every, clock.progress_every):
        if every:
            ends.append(_next_multiple(offset + batch, every) - offset)
    return min(ends)


def _next_multiple(value: int, every: int) -> int:
    """Return the smallest multiple of ``every`` that is >= ``value``."""
    return -(-value // every) * every


def _take_steps(
    loop: Loop,
    clock: _Clock,
    carry: Carry,
    cursor: _Cursor,
    plan: EpochPlan,
    batches: tuple[int, int],
    history: History,
) -> Carry:
    """Take the steps of ``batches`` (first and last, 1-based) and return the new carry.

    When a loss was not finite, raise a :class:`DivergenceError` that keeps the state from
    before that step: one look at the record the steps kept on the device.
    """
    first, last = batches
    carry = run_segment(loop, carry, plan, first, last)
    halt = carry.halt
    if halt is not None and not math.isfinite(loss := float(halt.loss)):
        kept = int(halt.steps)
        cursor.batch, cursor.step = first + kept, cursor.step + kept
        good = _snapshot(
            loop, clock, carry, cursor, batch=cursor.batch - 1, copy=False, sums=cursor.batch > 1
        )
        message = divergence.divergence_message(
            loop.config, cursor.epoch, cursor.batch, cursor.step + 1, loss
        )
        raise DivergenceError(message, state=good, history=history, step=cursor.step + 1)
    cursor.batch, cursor.step = last, cursor.step + last - first + 1
    return carry


def _after_steps(
    loop: Loop, clock: _Clock, carry: Carry, cursor: _Cursor, history: History
) -> None:
    """Give the callbacks what the segment's last step is due.

    The step's end (segments are single steps when a callback asks for every one), the
    progress, the running loss every ``log_every`` batches, a checkpoint every
    ``checkpoint_every`` steps.
    """
    if clock.every_step:
        clock.notify("on_step_end", cursor.step, cursor.epoch)
    if clock.progress_every:
        clock.notify("on_progress", cursor.step, cursor.epoch)
    log_every = loop.config.log_every
    if log_every and cursor.batch % log_every == 0:
        loss = float(carry.totals["loss"])
        _, end = loop.batch_rows(cursor.batch)
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
    loop: Loop, clock: _Clock, carry: Carry, cursor: _Cursor, history: History
) -> TrainState:
    """Evaluate, record the epoch and return the state at its end.

    Refuses parameters that overflowed in the epoch's last steps (no later loss would show
    it).
    """
    config, totals = loop.config, carry.totals
    evaluation = None
    if loop.test is not None:
        evaluation = evaluate_chunks(loop.eval_fn, carry.params, loop.test)
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
    loop: Loop,
    clock: _Clock,
    carry: Carry,
    cursor: _Cursor,
    *,
    batch: int,
    sums: bool,
    copy: bool = True,
) -> TrainState:
    """Return the state at ``cursor`` after ``batch`` batches of its epoch.

    With the epoch's sums so far (``sums``) and the last report's position when mid-epoch;
    copied unless ``copy`` is False (the arrays of a step that failed before changing them).
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


def _zero_sums(loop: Loop) -> dict[str, Any]:
    return {"loss": loop.be.zero("float32"), "correct": loop.be.zero("int32")}


def _copy(tree: Any, xp: Any) -> Any:
    """Return a copy of a dict (of dicts) of arrays."""
    return backend.tree_map(lambda a: xp.asarray(a, copy=True), tree)
