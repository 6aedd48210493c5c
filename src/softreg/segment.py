"""Runs of steps between two events, taken one by one or compiled as one loop.

``fit`` hands control back to the host only where something is due: a running-loss report,
a checkpoint, a progress update, the end of an epoch. The steps between two such events
form a segment. NumPy and PyTorch take a segment's steps eagerly, one call each; JAX and
TensorFlow run a segment's full batches as one compiled loop (``lax.fori_loop``,
``tf.while_loop``) over the epoch's order, learning rates and sampled classes, which the
device holds for the whole epoch (an :class:`EpochPlan`), and the epoch's smaller last
batch, if any, as one more compiled step. Either way the steps are the same
:func:`~softreg.step.train_step`, in the same order, on the same numbers.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from softreg import backend
from softreg.halt import Halt, fresh_halt
from softreg.optim import scheduled_lr
from softreg.step import (
    Carry,
    NonFiniteLoss,
    StepInputs,
    StepRules,
    draw_sampled,
    train_step,
)

if TYPE_CHECKING:
    from softreg.prepare import Loop


class EpochPlan(NamedTuple):
    """What the steps of one epoch read besides the state, on the device for the epoch.

    Attributes
    ----------
    order : array, shape (n_samples,)
        The order in which the epoch visits the examples; batch ``b`` (1-based) is
        ``order[(b - 1) * batch_size : b * batch_size]``.
    lrs : array, shape (steps_per_epoch,), or None
        Each step's learning rate (float32) under a schedule; None for a constant rate.
    classes : array, shape (steps_per_epoch, n_sampled), or None
        Each step's sampled classes (sampled softmax); else None.
    log_q : array, shape (n_classes,), or None
        The log of the distribution the classes are drawn from (sampled softmax); else None.
    """

    order: Any
    lrs: Any = None
    classes: Any = None
    log_q: Any = None


def epoch_plan(loop: Loop, epoch: int, order: np.ndarray, first_step: int) -> EpochPlan:
    """Return epoch ``epoch``'s plan on the loop's device.

    The rates and classes are exactly those the steps would compute one at a time: the
    schedule's value at each step, and the classes drawn from ``(seed, epoch, batch)``.

    Parameters
    ----------
    loop : Loop
        The training loop.
    epoch : int
        The epoch, 0-based.
    order : ndarray, shape (n_samples,)
        The epoch's order of the examples.
    first_step : int
        Steps of the run before the epoch's first.

    Returns
    -------
    EpochPlan
        The plan, on the device.
    """
    config, be, steps = loop.config, loop.be, loop.steps_per_epoch
    lrs = None
    if config.lr_schedule != "constant":
        rates = [
            scheduled_lr(config.lr, config.lr_schedule, first_step + i, loop.total_steps)
            for i in range(steps)
        ]
        lrs = be.asarray(np.asarray(rates, dtype=np.float32))
    classes = log_q = None
    if loop.proposal is not None:
        probs, log_q = loop.proposal
        draws = [draw_sampled(probs, config, epoch, b) for b in range(1, steps + 1)]
        classes = be.asarray(np.stack(draws))
    return EpochPlan(be.asarray(order), lrs, classes, log_q)


def step_inputs(weight: Any, plan: EpochPlan, batch: Any) -> StepInputs:
    """Return what the step of ``batch`` (0-based, a number or a 0-d array) takes.

    Parameters
    ----------
    weight : array, shape (n_samples,), or None
        Every example's loss weight.
    plan : EpochPlan
        The epoch's plan.
    batch : int or 0-d array
        The batch, 0-based (traced inside a compiled loop).

    Returns
    -------
    StepInputs
        The sample weights, the batch's sampled classes and its learning rate.
    """
    sampled = None
    if plan.classes is not None:
        sampled = {"classes": plan.classes[batch, ...], "log_q": plan.log_q}
    lr = plan.lrs[batch] if plan.lrs is not None else None
    return StepInputs(weight=weight, sampled=sampled, lr=lr)


def run_segment(loop: Loop, carry: Carry, plan: EpochPlan, first: int, last: int) -> Carry:
    """Take the steps of batches ``first`` to ``last`` (1-based, inclusive) of an epoch.

    Parameters
    ----------
    loop : Loop
        The training loop.
    carry : Carry
        The state before batch ``first``; its arrays are donated (updated in place or
        handed to the compiled loop): use the returned carry only.
    plan : EpochPlan
        The epoch's plan.
    first, last : int
        The batches to take.

    Returns
    -------
    Carry
        The state after the last step kept. Its ``halt`` (None when every loss was finite
        on NumPy) records how many steps were kept and the first loss that was not finite;
        the steps after it changed nothing.
    """
    if loop.rules.freeze:
        carry = carry._replace(halt=fresh_halt(loop.be))
    if loop.segment_fn is None:
        return _run_eagerly(loop, carry, plan, first, last)
    full_last = last if last * loop.batch_size <= loop.n else last - 1
    if full_last >= first:
        start, count = np.int32(first - 1), np.int32(full_last - first + 1)
        carry = loop.segment_fn(carry, loop.X, loop.y, loop.weight, plan, start, count)
    if last > full_last:  # the epoch's last batch, smaller than the others
        carry = loop.tail_fn(carry, loop.X, loop.y, loop.weight, plan, np.int32(last - 1))
    return carry


def _run_eagerly(loop: Loop, carry: Carry, plan: EpochPlan, first: int, last: int) -> Carry:
    """Take the steps one call each; NumPy's steps raise before a loss that is not finite."""
    rank, ranks = loop.shard
    for batch in range(first, last + 1):
        begin, end = loop.batch_rows(batch)
        idx = plan.order[begin:end] if ranks == 1 else plan.order[begin:end][rank::ranks]
        inputs = step_inputs(loop.weight, plan, batch - 1)
        try:
            carry = loop.step_fn(carry, loop.X, loop.y, idx, inputs)
        except NonFiniteLoss as exc:
            return carry._replace(halt=Halt(np.int32(batch - first), np.float32(exc.loss)))
    return carry


def compiled_segment(rules: StepRules, be: backend.Backend, batch_size: int) -> backend.Compiled:
    """Return the compiled loop over a segment's full batches, for JAX or TensorFlow.

    Parameters
    ----------
    rules : StepRules
        The steps' rules (``freeze``: no host reads inside the loop).
    be : Backend
        A compiling backend.
    batch_size : int
        Rows per batch.

    Returns
    -------
    Compiled
        ``fn(carry, X, y, weight, plan, first, count) -> Carry``: the steps of the
        0-based batches ``first`` to ``first + count - 1`` (0-d int32 arrays, so that one
        compilation serves every segment); the carry is donated.
    """
    primitives = _jax_primitives() if be.name == "jax" else _tf_primitives()
    fn = functools.partial(_segment, _Segment(rules, batch_size, primitives))
    return be.compile(fn, donate_argnums=(0,))


def compiled_tail(
    rules: StepRules, be: backend.Backend, batch_size: int, tail: int
) -> backend.Compiled:
    """Return the compiled step of an epoch's last batch, of ``tail`` < ``batch_size`` rows.

    Parameters
    ----------
    rules : StepRules
        The step's rules.
    be : Backend
        A compiling backend.
    batch_size : int
        Rows per (full) batch.
    tail : int
        Rows of the last batch.

    Returns
    -------
    Compiled
        ``fn(carry, X, y, weight, plan, batch) -> Carry``: the step of 0-based ``batch``,
        its rows sliced inside the compiled function (no eager op); the carry is donated.
    """
    primitives = _jax_primitives() if be.name == "jax" else _tf_primitives()
    fn = functools.partial(_tail_step, _Segment(rules, batch_size, primitives), tail)
    return be.compile(fn, donate_argnums=(0,))


def _tail_step(
    segment: _Segment, tail: int, carry: Carry, X: Any, y: Any, weight: Any, plan: Any, batch: Any
) -> Carry:
    """Take the step of the epoch's last batch (0-based ``batch``), of ``tail`` rows."""
    rules, batch_size, primitives = segment
    rows = primitives.rows(plan.order, batch * batch_size, tail)
    return train_step(rules, carry, X, y, rows, step_inputs(weight, plan, batch))


class _Primitives(NamedTuple):
    """A compiling library's loop and dynamic slice."""

    fori: Any  # fori(count, body, carry): body(i, carry) -> carry for i in [0, count)
    rows: Any  # rows(array, start, size): array[start:start + size], start traced


def _jax_primitives() -> _Primitives:
    from jax import lax

    return _Primitives(
        fori=lambda count, body, carry: lax.fori_loop(0, count, body, carry),
        rows=lambda a, start, size: lax.dynamic_slice(a, (start,), (size,)),
    )


def _tf_primitives() -> _Primitives:
    import tensorflow as tf

    def fori(count: Any, body: Any, carry: Any) -> Any:
        def step(i: Any, c: Any) -> tuple[Any, Any]:
            return i + 1, body(i, c)

        zero = tf.zeros((), dtype=count.dtype)
        return tf.while_loop(lambda i, c: i < count, step, (zero, carry))[1]

    return _Primitives(fori=fori, rows=lambda a, start, size: tf.slice(a, [start], [size]))


class _Segment(NamedTuple):
    """What a compiled segment is specialised on."""

    rules: StepRules
    batch_size: int
    primitives: _Primitives


def _segment(
    segment: _Segment,
    carry: Carry,
    X: Any,
    y: Any,
    weight: Any,
    plan: EpochPlan,
    first: Any,
    count: Any,
) -> Carry:
    """Take ``count`` steps from batch ``first`` on (0-based), as one compiled loop."""
    rules, batch_size, primitives = segment

    def body(i: Any, c: Carry) -> Carry:
        batch = first + i
        rows = primitives.rows(plan.order, batch * batch_size, batch_size)
        return train_step(rules, c, X, y, rows, step_inputs(weight, plan, batch))

    return primitives.fori(count, body, carry)
