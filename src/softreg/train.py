"""Training and evaluation: ``fit`` returns a History and never prints.

Progress bars, live plots and run-directory files are callbacks that read what ``fit`` reports.
All training state (parameters, optimiser state, epochs and steps done) is in a ``TrainState``,
and the data order of epoch ``e`` is a pure function of ``(seed, e)``, so a run can be
checkpointed and continued.
"""

from __future__ import annotations

import functools
import hashlib
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from softreg import backend
from softreg.build import check_trainable, init_state
from softreg.callbacks import Callback
from softreg.checks import check_int
from softreg.config import TrainConfig
from softreg.data.batching import epoch_permutation
from softreg.distributed import check_config as check_distributed
from softreg.errors import ConfigError, DivergenceError
from softreg.history import EpochRecord, Evaluation, FitResult, History, StepRecord, TrainState
from softreg.protocols import Params
from softreg.step import (
    NonFiniteLoss,
    _proposal,
    _step_lr,
    _step_sampled,
    evaluation_sums,
    train_step,
)
from softreg.validation import check_data, checked_sample_weight, to_device


# Overflow shows up as a non-finite loss, which stops training with a clear error; NumPy's
# warnings on the way there would only be noise.
@np.errstate(over="ignore", invalid="ignore", divide="ignore")
def fit(
    model: Any,
    train: tuple[Any, Any],
    test: tuple[Any, Any] | None = None,
    config: TrainConfig | None = None,
    *,
    callbacks: Sequence[Callback] = (),
    state: TrainState | None = None,
    history: History | None = None,
    sample_weight: Any = None,
    checkpoint_every: int = 0,
    communicator: Any = None,
) -> FitResult:
    """Train ``model`` on ``train = (X (n_samples, n_features), y (n_samples,))`` with SGD.

    Each epoch visits the training set in the order ``epoch_permutation(n, seed, epoch)``,
    reports the loss and accuracy accumulated over its minibatches (as the book does) and the
    accuracy on ``test``. Pass ``state`` (and the ``history`` so far) to continue an earlier
    run, from an epoch boundary or from the middle of an epoch. ``sample_weight`` (``(n,)``,
    >= 0) weights each example's loss; the weights are rescaled to average 1, so their scale
    does not change the learning rate. Every ``checkpoint_every`` steps the callbacks'
    ``on_checkpoint`` gets a copy of the state.

    With a ``communicator`` (:mod:`softreg.distributed`, torch backend) this process is one
    rank of a data-parallel run: it computes its shard ``batch[rank::world_size]`` of each
    global minibatch, and the step sums gradients, losses and counts over the ranks, so that
    every rank follows the single-process trajectory and reports the global numbers.

    The arrays may be NumPy arrays or arrays of ``config.backend``; they are checked (finite
    features, labels in ``[0, num_outputs)``) and moved to ``config.device`` once. On JAX and
    TensorFlow the training step and the evaluation are compiled; the compile time is
    reported apart from the training time.

    Raises
    ------
        DataValueError: the data cannot be trained on.
        DivergenceError: a step's loss was not finite (too large a learning rate, say). The
            error carries the state before that step and the history until then. When the
            weights overflowed in an epoch's last steps (seen at its end: weights or test
            loss not finite) no good state is known, and ``state`` is None.
    """
    config = config or TrainConfig()
    check_int("checkpoint_every", checkpoint_every, minimum=0)
    if communicator is not None:
        check_distributed(config)
    be = backend.resolve(config.backend, config.device)
    xp = be.xp
    check_trainable(model, config)
    X, y = to_device(train, be, "train", model)
    test_arrays = to_device(test, be, "test", model) if test is not None else None
    # The model's input standardisation is applied to the data once, here, rather than at
    # every step: the steps and evaluations see the same model without it, on inputs
    # already standardised (the same float32 arithmetic, so the same numbers). It is
    # training work: its time counts in seconds_train.
    scaling = time.perf_counter()
    X = model.scale_inputs(X)
    if test_arrays is not None:
        test_arrays = (model.scale_inputs(test_arrays[0]), test_arrays[1])
    model = model.without_input_scaling()
    seconds_scaling = time.perf_counter() - scaling
    n = X.shape[0]
    weight = checked_sample_weight(sample_weight, n)
    weight = be.asarray(weight.astype(np.float32)) if weight is not None else None
    optimizer = config.sgd()
    proposal = _proposal(config, model, train[1], be)  # None unless config.sampled
    state = init_state(model, config) if state is None else state
    history = History() if history is None else History(list(history.records), list(history.steps))
    # Divergence is caught at the step it happens and the state from before that step kept.
    # Eager steps (NumPy, PyTorch) update in place, so they check the loss before the update;
    # compiled ones (JAX, TensorFlow) return new arrays, so the old ones are still there.
    all_reduce = communicator.all_reduce_sum if communicator is not None else None
    step_fn = be.compile(
        functools.partial(
            train_step,
            model,
            optimizer,
            config.softmax,
            check_loss=be.mutable,
            all_reduce=all_reduce,
            chunk_size=config.chunk_size,
        )
    )
    # Sampled softmax is for many classes: evaluate those in (automatic) chunks as well.
    eval_chunk = config.chunk_size or (None if config.sampled else 0)
    eval_fn = be.compile(functools.partial(evaluation_sums, model, chunk_size=eval_chunk))

    full_batch = config.optimizer == "gd"
    batch_size = n if full_batch else config.batch_size
    steps_per_epoch = math.ceil(n / batch_size)
    total_steps = config.epochs * steps_per_epoch  # the length a schedule spans
    _check_resumable(state, steps_per_epoch, batch_size)
    rank, ranks = 0, 1
    if communicator is not None:
        rank, ranks = communicator.rank, communicator.world_size
        communicator.agree(_start_fingerprint(train, state, config))
    callback_seconds = 0.0
    start = time.perf_counter() - state.seconds - seconds_scaling

    def not_training() -> float:
        return callback_seconds + step_fn.seconds + eval_fn.seconds

    def notify(hook: str, *args: Any) -> None:
        nonlocal callback_seconds
        t = time.perf_counter()
        for cb in callbacks:
            getattr(cb, hook)(*args)
        callback_seconds += time.perf_counter() - t

    def snapshot(**position: Any) -> TrainState:
        return TrainState(
            params=_copy(params, xp),
            opt_state=_copy(opt_state, xp),
            seconds=time.perf_counter() - start - not_training(),
            **position,
        )

    notify("on_train_begin", config, steps_per_epoch, state)
    # The loop updates its arrays in place (donated to the optimiser): work on copies, so the
    # caller's state, and the snapshots handed out, never change.
    params, opt_state, step = _copy(state.params, xp), _copy(state.opt_state, xp), state.step
    for epoch in range(state.epoch, config.epochs):
        # The permutation crosses to the device once per epoch; batches are slices of it.
        order = be.asarray(
            np.arange(n) if full_batch else epoch_permutation(n, seed=config.seed, epoch=epoch)
        )
        first_batch, totals, (logged_loss, logged_n) = 1, _zero_sums(be, X.dtype), (0.0, 0)
        if epoch == state.epoch and state.epoch_sums is not None:  # continue mid-epoch
            first_batch = state.batch + 1
            totals = backend.tree_map(lambda v: be.asarray(np.asarray(v)), state.epoch_sums)
            logged_loss, logged_n = state.logged
        for batch in range(first_batch, steps_per_epoch + 1):
            begin, end = (batch - 1) * batch_size, min(batch * batch_size, n)
            before = params, opt_state, totals
            try:
                idx = order[begin:end] if ranks == 1 else order[begin:end][rank::ranks]
                params, opt_state, totals = step_fn(
                    params,
                    opt_state,
                    totals,
                    X,
                    y,
                    idx,
                    weight,
                    _step_sampled(proposal, config, epoch, batch, be),
                    _step_lr(config, step, total_steps, be),
                )
                # One scalar read per step (eager steps have read their batch loss).
                loss = 0.0 if be.mutable else float(totals["loss"])
            except NonFiniteLoss as exc:
                loss = exc.loss
            if not math.isfinite(loss):
                good = TrainState(
                    params=before[0],
                    opt_state=before[1],
                    epoch=epoch,
                    step=step,
                    batch=batch - 1,
                    logged=(logged_loss, logged_n),
                    epoch_sums=(
                        backend.tree_map(backend.to_numpy, before[2]) if batch > 1 else None
                    ),
                    seconds=time.perf_counter() - start - not_training(),
                )
                raise DivergenceError(
                    _divergence_message(config, epoch, batch, step + 1, loss),
                    state=good,
                    history=history,
                    step=step + 1,
                )
            step += 1
            if callbacks:
                notify("on_step_end", step, epoch)
            if config.log_every and batch % config.log_every == 0:
                loss = float(totals["loss"])
                report = StepRecord(
                    epoch=epoch + 1,
                    batch=batch,
                    step=step,
                    running_loss=(loss - logged_loss) / (end - logged_n),
                )
                logged_loss, logged_n = loss, end
                history.steps.append(report)
                notify("on_log", report, history)
            if checkpoint_every and step % checkpoint_every == 0:
                notify(
                    "on_checkpoint",
                    snapshot(
                        epoch=epoch,
                        step=step,
                        batch=batch,
                        logged=(logged_loss, logged_n),
                        epoch_sums=backend.tree_map(backend.to_numpy, totals),
                    ),
                    history,
                )
        evaluation = None
        if test_arrays is not None:
            evaluation = _evaluate(eval_fn, params, *test_arrays, config.eval_batch_size)
        overflow = _overflow(params, evaluation)
        if overflow:  # the last steps' updates overflowed: no later loss would say so
            raise DivergenceError(
                f"training diverged in epoch {epoch + 1}: {overflow}; "
                f"{_hints(config)}. No good model is known from this run",
                state=None,
                history=history,
                step=step,
            )
        record = EpochRecord(
            epoch=epoch + 1,
            train_loss=float(totals["loss"]) / n,
            train_acc=float(totals["correct"]) / n,
            test_acc=evaluation.accuracy if evaluation else None,
            test_loss=evaluation.loss if evaluation else None,
            seconds=time.perf_counter() - start - not_training(),
        )
        history.records.append(record)
        state = snapshot(epoch=epoch + 1, step=step)
        notify("on_epoch_end", record, history, state)
    seconds_train = time.perf_counter() - start - not_training()
    state.seconds = seconds_train
    notify("on_train_end", history, state)
    return FitResult(
        state=state,
        history=history,
        seconds_train=seconds_train,
        seconds_compile=step_fn.seconds + eval_fn.seconds,
    )


def _divergence_message(config: TrainConfig, epoch: int, batch: int, step: int, loss: float) -> str:
    return (
        f"training diverged at step {step} (epoch {epoch + 1}, batch {batch}): the loss "
        f"became {loss}; {_hints(config)}. The model before that step is kept"
    )


def _hints(config: TrainConfig) -> str:
    hints = [f"lr={config.lr:g} is probably too large: try lr={config.lr / 10:g} or less"]
    if config.softmax == "naive":
        hints.append("or the stable softmax (softmax=stable), which cannot overflow")
    if config.input_scaling == "none":
        hints.append("or standardised inputs (normalize=yes or per-feature)")
    return "; ".join(hints)


def _overflow(params: Params, evaluation: Evaluation | None) -> str:
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


def _check_resumable(state: TrainState, steps_per_epoch: int, batch_size: int) -> None:
    """Refuse a state this run cannot continue from: a position outside its epochs, or sums
    and a last report that count more examples than its batches hold.
    """
    if not 0 <= state.batch <= steps_per_epoch:
        raise ConfigError(
            f"the state is at batch {state.batch} of an epoch of "
            f"{steps_per_epoch} batches: it comes from another configuration"
        )
    if state.batch and state.epoch_sums is None:
        raise ConfigError("a state in the middle of an epoch needs the epoch's sums so far")
    seen = state.batch * batch_size  # examples done in this epoch, at most
    logged_loss, logged_n = state.logged
    if not (0 <= logged_n <= seen and math.isfinite(logged_loss) and logged_loss >= 0):
        raise ConfigError(
            f"the state's last running-loss report ({logged_loss}, after "
            f"{logged_n} examples) does not fit its position (batch "
            f"{state.batch}, at most {seen} examples)"
        )
    if state.epoch_sums is not None:
        loss = float(backend.to_numpy(state.epoch_sums["loss"]))
        correct = int(backend.to_numpy(state.epoch_sums["correct"]))
        if not (math.isfinite(loss) and loss >= logged_loss and 0 <= correct <= seen):
            raise ConfigError(
                f"the state's epoch sums (loss {loss}, {correct} correct) do not "
                f"fit its position (batch {state.batch}, at most {seen} "
                f"examples)"
            )


def _zero_sums(be: backend.Backend, dtype: Any) -> dict[str, Any]:
    xp = be.xp
    return {
        "loss": xp.zeros((), dtype=dtype, device=be.device),
        "correct": xp.zeros((), dtype=xp.int32, device=be.device),
    }


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


def evaluate(model: Any, params: Params, X: Any, y: Any, *, batch_size: int = 8192) -> Evaluation:
    """Mean cross-entropy and accuracy of ``model`` on ``(X, y)``, in chunks of ``batch_size``
    rows (the book's ``evaluate_accuracy`` with its accumulator of correct and total).
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


def _copy(tree: Any, xp: Any) -> Any:
    """A copy of a dict (of dicts) of arrays."""
    return backend.tree_map(lambda a: xp.asarray(a, copy=True), tree)
