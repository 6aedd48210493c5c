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
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np

from softreg import backend, ops, sampling
from softreg.data.batching import epoch_permutation
from softreg.distributed import check_config as check_distributed
from softreg.errors import ConfigError, DataValueError, DivergenceError
from softreg.limits import check_fits_in_memory
from softreg.models import MODELS, check_sigma
from softreg.optim import LR_SCHEDULES, SGD, scheduled_lr
from softreg.standardise import fit_scaling

Params = dict[str, Any]
OPTIMIZERS = ("sgd", "gd")
NORMALIZE = ("auto", "yes", "no", "per-feature")
SOFTMAX = tuple(ops.LOSS_GRADS)  # stable, naive


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run; the CLI's flags map onto these fields.

    The defaults are the book's recipe (d2l 3.6 / 4.4). The lecture's MNIST MLP is
    ``TrainConfig(dataset="mnist", model="mlp", batch_size=64, lr=0.01, momentum=0.5)``.
    """

    dataset: str = "fashion-mnist"
    model: str = "softmax-regression"  # or "mlp"
    hidden: tuple[int, ...] = (512, 256, 128, 64)  # the MLP's hidden layer sizes (the lecture's)
    epochs: int = 10  # passes over the data (iterations with optimizer="gd")
    batch_size: int = 256
    lr: float = 0.1
    lr_schedule: str = "constant"  # or cosine: lr decays along a half cosine to ~0 at the end
    momentum: float = 0.0  # PyTorch's SGD momentum (the lecture uses 0.5)
    weight_decay: float = 0.0  # L2 penalty added to the gradient, as torch.optim.SGD does
    optimizer: str = "sgd"  # sgd: shuffled minibatches; gd: full-batch gradient descent
    normalize: str = "auto"  # standardise inputs: yes (one mean and scale for all features),
    #                          per-feature (each its own), no, or auto (yes for the MLP, as the
    #                          lecture does; no for softmax regression, as the book does).
    #                          make_model fits them on the training data; the model keeps
    #                          and applies them (softreg.standardise)
    softmax: str = "stable"  # stable, or naive: the book's exp(o) / sum(exp(o)), which
    #                          overflows for large scores (the chapter's exercise)
    chunk_size: int = 0  # > 0: the output layer's loss and gradients over chunks of this many
    #                      classes, never forming the (batch, classes) logits (softreg.vocab:
    #                      large vocabularies); 0: all classes at once
    sampled: int = 0  # > 0: sampled softmax, this many classes drawn per step from the
    #                   training labels' frequencies (log-Q corrected); 0: the exact loss
    seed: int = 0
    sigma: float = 0.01  # std of the initial weights of softmax regression
    backend: str = "numpy"  # numpy, torch, jax or tensorflow: the array library that computes
    device: str = "cpu"  # cpu, or cuda / gpu (the same) with torch and jax
    eval_batch_size: int = 8192  # rows per evaluation chunk: bounds memory, not results
    log_every: int = 300  # report the running loss every N batches (the lecture's 300; 0: never)

    def __post_init__(self) -> None:
        # NumPy's scalars are taken as the numbers they are (the config goes into JSON).
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.integer):
                object.__setattr__(self, f.name, int(value))
            elif isinstance(value, np.floating):
                object.__setattr__(self, f.name, float(value))
        if isinstance(self.hidden, (str, bytes)) or not hasattr(self.hidden, "__iter__"):
            raise ConfigError(f"hidden must be a sequence of layer sizes, got {self.hidden!r}")
        object.__setattr__(
            self,
            "hidden",
            tuple(int(size) if isinstance(size, np.integer) else size for size in self.hidden),
        )
        if not isinstance(self.dataset, str) or not self.dataset:
            raise ConfigError(f"dataset must be a dataset's name, got {self.dataset!r}")
        _check_int("epochs", self.epochs, minimum=1)
        _check_int("batch_size", self.batch_size, minimum=1)
        _check_int("eval_batch_size", self.eval_batch_size, minimum=1)
        _check_int("seed", self.seed, minimum=0)
        if self.seed >= 2**64:  # a seed softreg writes into JSON and reads back
            raise ConfigError(f"seed must be below 2**64, got {self.seed}")
        _check_int("log_every", self.log_every, minimum=0)
        for size in self.hidden:
            _check_int("hidden layer size", size, minimum=1)
        self.sgd()  # validates lr, momentum and weight_decay
        backend.check_names(self.backend, self.device)
        _check_choice("model", self.model, tuple(MODELS))
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("normalize", self.normalize, NORMALIZE)
        _check_choice("softmax", self.softmax, SOFTMAX)
        _check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        _check_int("chunk_size", self.chunk_size, minimum=0)
        _check_int("sampled", self.sampled, minimum=0)
        if (self.chunk_size or self.sampled) and self.softmax != "stable":
            raise ConfigError(
                "chunk_size and sampled compute the stable loss (log-sum-exp); "
                "drop softmax=naive, or set both to 0"
            )
        check_sigma(self.sigma)

    def sgd(self) -> SGD:
        """The optimiser this configuration asks for."""
        return SGD(self.lr, momentum=self.momentum, weight_decay=self.weight_decay)

    @property
    def input_scaling(self) -> str:
        """The input standardisation ``normalize`` asks for: ``"none"``, ``"scalar"`` (one
        mean and scale for every feature) or ``"per-feature"`` (see :func:`make_model`).
        """
        if self.normalize == "per-feature":
            return "per-feature"
        if self.normalize == "yes" or (self.normalize == "auto" and self.model == "mlp"):
            return "scalar"
        return "none"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class EpochRecord:
    """What one epoch reports: the book's three curves, plus time spent so far."""

    epoch: int  # 1-based, as the book's x-axis
    train_loss: float  # mean per-example loss, accumulated during the epoch
    train_acc: float  # accuracy accumulated during the epoch
    test_acc: float | None  # accuracy after the epoch (None without test data)
    test_loss: float | None  # mean cross-entropy on the test data after the epoch
    seconds: float  # training + evaluation time up to the end of this epoch


@dataclass(frozen=True)
class StepRecord:
    """The running loss, reported every ``log_every`` batches as the lecture prints it."""

    epoch: int  # 1-based
    batch: int  # 1-based batch number within the epoch
    step: int  # optimiser steps done in the whole run
    running_loss: float  # mean per-example loss over the batches since the last report


@dataclass
class History:
    records: list[EpochRecord] = field(default_factory=list)
    steps: list[StepRecord] = field(default_factory=list)  # running-loss reports

    @property
    def final(self) -> EpochRecord:
        if not self.records:
            raise ValueError("history is empty: no epoch has finished")
        return self.records[-1]

    def column(self, name: str) -> list[Any]:
        return [getattr(r, name) for r in self.records]


@dataclass
class TrainState:
    """Everything needed to continue training exactly where it stopped, between any two steps.

    The data order needs no state of its own: epoch ``e`` visits the examples in the order
    ``epoch_permutation(n, seed, e)``, so ``(seed, epoch, batch)`` says what comes next.
    """

    params: Params
    opt_state: dict[str, Any]
    epoch: int = 0  # epochs completed
    step: int = 0  # optimiser steps completed
    batch: int = 0  # batches of epoch ``epoch`` (0-based) completed; 0 between epochs
    # The current epoch's summed loss and correct count so far (0-d arrays): the epoch's
    # train loss and accuracy are means over all its batches. None between epochs.
    epoch_sums: dict[str, Any] | None = None
    logged: tuple[float, int] = (0.0, 0)  # epoch loss sum and examples at the last report
    seconds: float = 0.0  # training time so far (carried over when a run is continued)


@dataclass
class FitResult:
    state: TrainState
    history: History
    seconds_train: float  # wall time of the training loop incl. evaluation, excl. callbacks
    seconds_compile: float = 0.0  # compiling the step (JAX, TensorFlow); not in seconds_train

    @property
    def params(self) -> Params:
        return self.state.params


@dataclass(frozen=True)
class Evaluation:
    loss: float  # mean cross-entropy
    accuracy: float
    n: int


class Callback:
    """Hooks ``fit`` calls; override what you need. Time spent here is not training time."""

    def on_train_begin(self, config: TrainConfig, steps_per_epoch: int, state: TrainState) -> None:
        pass

    def on_step_end(self, step: int, epoch: int) -> None:
        pass

    def on_log(self, record: StepRecord, history: History) -> None:
        """Every ``config.log_every`` batches: the running loss."""

    def on_epoch_end(self, record: EpochRecord, history: History, state: TrainState) -> None:
        pass

    def on_checkpoint(self, state: TrainState, history: History) -> None:
        """Every ``checkpoint_every`` steps (see :func:`fit`): a copy of the state, which
        may be in the middle of an epoch.
        """

    def on_train_end(self, history: History, state: TrainState) -> None:
        pass


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
    _check_int("checkpoint_every", checkpoint_every, minimum=0)
    if communicator is not None:
        check_distributed(config)
    be = backend.resolve(config.backend, config.device)
    xp = be.xp
    check_trainable(model, config)
    X, y = _to_device(train, be, "train", model)
    test_arrays = _to_device(test, be, "test", model) if test is not None else None
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
            except _NonFiniteLoss as exc:
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


def init_state(model: Any, config: TrainConfig) -> TrainState:
    """The state a run starts from: ``model``'s initial parameters drawn with ``config.seed``
    on ``config``'s backend and device, and the optimiser's initial state.
    """
    be = backend.resolve(config.backend, config.device)
    params = model.init(np.random.default_rng(config.seed), xp=be.xp, device=be.device)
    return TrainState(params=params, opt_state=config.sgd().init(params))


class _NonFiniteLoss(Exception):
    """Raised by an eager training step before it changes anything in place."""

    def __init__(self, loss: float):
        self.loss = loss


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
        raise _NonFiniteLoss(float(batch_loss))
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


def evaluate(model: Any, params: Params, X: Any, y: Any, *, batch_size: int = 8192) -> Evaluation:
    """Mean cross-entropy and accuracy of ``model`` on ``(X, y)``, in chunks of ``batch_size``
    rows (the book's ``evaluate_accuracy`` with its accumulator of correct and total).
    """
    _check_data(backend.to_numpy(X), backend.to_numpy(y), "evaluation data", model)
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


def _to_device(
    arrays: tuple[Any, Any], be: backend.Backend, name: str, model: Any
) -> tuple[Any, Any]:
    """``(X, y)`` checked on the host (see :func:`_check_data`) and moved to the backend's
    device.
    """
    X, y = (backend.to_numpy(a) for a in arrays)
    _check_data(X, y, name, model)
    # softreg trains in float32 on every backend (the parameters' dtype): other features,
    # integers or float64, are converted once here rather than promoted at every step.
    if X.dtype != np.float32:
        with np.errstate(over="ignore"):  # said below, in one line
            X = X.astype(np.float32)
        if not np.isfinite(X).all():
            raise DataValueError(f"{name}: features beyond float32's range (about 3.4e38)")
    return be.asarray(X), be.asarray(y)


def _check_data(X: np.ndarray, y: np.ndarray, name: str, model: Any) -> None:
    """Refuse data ``model`` cannot be trained or evaluated on: mismatched or empty arrays,
    the wrong number of features, NaN or inf features, labels outside its classes.
    """
    num_classes = model.num_outputs
    if y.ndim != 1:
        raise DataValueError(f"{name}: labels must be 1-D (n_samples,), got shape {y.shape}")
    if X.ndim < 2:
        raise DataValueError(
            f"{name}: features must be (n_samples, n_features), got shape {X.shape}"
        )
    if X.shape[0] != y.shape[0]:
        raise DataValueError(f"{name}: {X.shape[0]} examples but {y.shape[0]} labels")
    if X.shape[0] == 0:
        raise DataValueError(f"{name}: the dataset is empty")
    if math.prod(X.shape[1:]) != model.num_inputs:
        raise DataValueError(
            f"{name}: {math.prod(X.shape[1:])} features per example, but the "
            f"model takes {model.num_inputs}"
        )
    if not np.issubdtype(X.dtype, np.number) or np.issubdtype(X.dtype, np.complexfloating):
        raise DataValueError(f"{name}: features must be real numbers, got dtype {X.dtype}")
    if np.issubdtype(X.dtype, np.inexact) and not np.isfinite(X).all():
        bad = np.argwhere(~np.isfinite(X))[0]
        raise DataValueError(
            f"{name}: feature {tuple(int(i) for i in bad)} is "
            f"{X[tuple(bad)]}; features must be finite (no NaN or inf)"
        )
    if not np.issubdtype(y.dtype, np.integer):
        raise DataValueError(f"{name}: labels must be integers, got dtype {y.dtype}")
    low, high = int(y.min()), int(y.max())
    if low < 0 or high >= num_classes:
        raise DataValueError(
            f"{name}: label {low if low < 0 else high} outside "
            f"[0, {num_classes}) (the model has {num_classes} classes)"
        )


def checked_sample_weight(sample_weight: Any, n: int) -> np.ndarray | None:
    """``sample_weight`` checked and rescaled to average 1, float64 ``(n,)`` on the host, or
    None when there are none or all are equal (equal weights are no weights, exactly).
    What ``fit`` weights the loss with and ``make_model`` the input statistics.

    Raises
    ------
    DataValueError
        Another shape, a weight that is negative or not finite, or all weights 0.
    """
    if sample_weight is None:
        return None
    w = np.asarray(backend.to_numpy(sample_weight), dtype=np.float64)
    if w.shape != (n,):
        raise DataValueError(f"sample_weight must have shape ({n},), got {w.shape}")
    if not np.isfinite(w).all() or (w < 0).any():
        raise DataValueError("sample weights must be finite and >= 0")
    if not w.any():
        raise DataValueError("sample weights sum to 0: nothing to learn from")
    if (w == w[0]).all():  # rescaled, equal weights are no weights: make that exact
        return None
    w = w / w.max()  # first: weights near float64's largest would overflow their sum
    return w * (n / w.sum())


def make_model(
    config: TrainConfig, X_train: Any, num_classes: int, *, sample_weight: Any = None
) -> Any:
    """The model ``config`` asks for, sized for ``X_train (n_samples, n_features)`` and
    ``num_classes``, with the input standardisation ``config.normalize`` asks for fitted on
    ``X_train`` (weighted by ``sample_weight (n_samples,)`` when given).

    Raises
    ------
    ConfigError
        The configuration cannot train this model (see :func:`check_trainable`), or the
        inputs cannot be standardised (all equal, say).
    """
    X_train = backend.to_numpy(X_train)
    shape = {"num_inputs": int(np.prod(X_train.shape[1:])), "num_outputs": num_classes}
    if config.model == "mlp":
        model = MODELS["mlp"](hidden=config.hidden, **shape)
    else:
        model = MODELS[config.model](sigma=config.sigma, **shape)
    check_trainable(model, config)  # before the statistics: they take a pass over the data
    weights = checked_sample_weight(sample_weight, X_train.shape[0])
    mean, scale = fit_scaling(X_train, config.input_scaling, sample_weight=weights)
    return replace(model, input_mean=mean, input_scale=scale)


# Bytes per parameter while training: float32 parameters, gradients and momentum buffers,
# and the float64 draw of the initial values.
TRAINING_BYTES_PER_PARAMETER = 4 + 4 + 4 + 8


def check_trainable(model: Any, config: TrainConfig) -> None:
    """Refuse what ``fit`` could not do with ``model`` and ``config``, before anything is
    allocated or written: sampled softmax with as many samples as classes, or a model whose
    training state cannot fit in memory.

    Raises
    ------
    ConfigError
        Saying which, with the numbers.
    """
    if config.sampled and config.sampled >= model.num_outputs:
        raise ConfigError(
            f"sampled={config.sampled} classes per step, but the model has only "
            f"{model.num_outputs}: sampled softmax is for many classes; use "
            f"sampled=0 (the exact loss), with chunk_size for a large vocabulary"
        )
    n_parameters = sum(math.prod(shape) for shape in model.param_shapes().values())
    layers = "-".join(
        str(n) for n in (model.num_inputs, *getattr(model, "hidden", ()), model.num_outputs)
    )
    check_fits_in_memory(
        n_parameters * TRAINING_BYTES_PER_PARAMETER,
        f"a {config.model} model {layers} ({n_parameters:,} parameters) needs about",
        ConfigError,
    )


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")


def _check_int(name: str, value: Any, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
