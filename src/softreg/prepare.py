"""What ``fit`` sets up once, before its first step.

The data checked and moved to the device, standardised (uint8 images stay bytes, converted
batch by batch); the step, the segment loop and the evaluation compiled; the batch geometry
and this rank's place in it.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from softreg import backend, fused
from softreg.build import check_trainable
from softreg.config import TrainConfig
from softreg.evaluation import chunks_of
from softreg.protocols import Communicator, Model
from softreg.segment import compiled_segment, compiled_tail
from softreg.standardise import is_bytes
from softreg.step import StepRules, evaluation_sums, sampling_proposal
from softreg.validation import checked_sample_weight, to_device


@dataclass(frozen=True)
class Loop:
    """What stays the same through one call of ``fit``.

    The data on the device, the compiled step and evaluation, the batch geometry and this
    rank's place in it (each attribute's comment says what it holds).
    """

    config: TrainConfig
    be: backend.Backend
    X: Any  # (n_samples, n_features) on the device: standardised float32, or uint8 bytes
    y: Any  # (n_samples,)
    test: tuple[tuple[Any, Any], ...] | None  # (X_test, y_test) in evaluation chunks
    weight: Any  # (n_samples,) float32 on the device, or None
    proposal: tuple[np.ndarray, Any] | None  # the sampled softmax's, or None
    rules: StepRules
    step_fn: backend.Compiled  # one step: fn(carry, X, y, idx, inputs) -> carry
    segment_fn: backend.Compiled | None  # compiled backends: a segment's full batches
    tail_fn: backend.Compiled | None  # compiled backends: the epoch's smaller last batch
    eval_fn: backend.Compiled
    batch_size: int
    shard: tuple[int, int]  # (rank, ranks): this rank takes batch[rank::ranks]
    seconds_scaling: float  # standardising the data: training work, before the clock starts

    @property
    def n(self) -> int:
        """Number of training examples."""
        return self.X.shape[0]

    @property
    def steps_per_epoch(self) -> int:
        """Number of batches in an epoch (the last may be smaller)."""
        return math.ceil(self.n / self.batch_size)

    @property
    def total_steps(self) -> int:
        """Number of steps of the whole run: the length a learning-rate schedule spans."""
        return self.config.epochs * self.steps_per_epoch

    def batch_rows(self, batch: int) -> tuple[int, int]:
        """Return where a batch lies in the epoch's order of the examples.

        Parameters
        ----------
        batch : int
            The batch, 1-based.

        Returns
        -------
        tuple of int
            ``(begin, end)``: the batch is ``order[begin:end]`` (the last may be shorter).
        """
        return (batch - 1) * self.batch_size, min(batch * self.batch_size, self.n)

    @property
    def compiled(self) -> tuple[backend.Compiled, ...]:
        """The compiled functions, whose compile time is not training time."""
        loops = (self.segment_fn, self.tail_fn)
        return (self.step_fn, self.eval_fn) + tuple(fn for fn in loops if fn is not None)


def prepare(
    model: Model,
    train: tuple[Any, Any],
    test: tuple[Any, Any] | None,
    config: TrainConfig,
    *,
    sample_weight: Any,
    communicator: Communicator | None,
) -> Loop:
    """Check the data, move it to the device standardised, and compile the step.

    Parameters
    ----------
    model : Model
        The model to train, with its input standardisation.
    train : tuple of arrays
        ``(X (n_samples, ...), y (n_samples,))``.
    test : tuple of arrays or None
        ``(X_test, y_test)`` to evaluate after every epoch.
    config : TrainConfig
        The run's configuration.
    sample_weight : array, shape (n_samples,), or None
        Weights of each example's loss.
    communicator : Communicator or None
        This rank's part in a data-parallel run.

    Returns
    -------
    Loop
        What the loop needs, on ``config``'s backend and device.

    Raises
    ------
    ConfigError
        The configuration cannot train this model.
    DataValueError
        The data cannot be trained on.
    """
    be = backend.resolve(config.backend, config.device)
    check_trainable(model, config)
    X, y = to_device(train, be, "train", model)
    test = to_device(test, be, "test", model) if test is not None else None
    # The model's input standardisation is applied to the data once, here, rather than at
    # every step: the steps and evaluations see the same model without it, on inputs
    # already standardised (the same float32 arithmetic, so the same numbers). It is
    # training work: its time counts in seconds_train. uint8 images stay bytes instead,
    # a quarter of the memory, and the step converts each batch (the same arithmetic).
    started = time.perf_counter()
    X, step_model = _standardised(model, X, be)
    eval_model = model
    if test is not None:
        test_X, eval_model = _standardised(model, test[0], be)
        test = (test_X, test[1])
    seconds_scaling = time.perf_counter() - started
    weight = checked_sample_weight(sample_weight, X.shape[0])
    rules = _step_rules(config, step_model, be, communicator)
    batch_size = X.shape[0] if config.optimizer == "gd" else config.batch_size
    tail = X.shape[0] % batch_size or batch_size  # rows of each epoch's last batch
    # Sampled softmax is for many classes: evaluate those in (automatic) chunks as well.
    eval_chunk = config.chunk_size or (None if config.sampled else 0)
    step_fn = fused.step_function(config, rules, be, communicator)
    eval_fn = be.compile(functools.partial(evaluation_sums, eval_model, chunk_size=eval_chunk))
    return Loop(
        config=config,
        be=be,
        X=X,
        y=y,
        test=chunks_of(*test, config.eval_batch_size) if test is not None else None,
        weight=be.asarray(weight.astype(np.float32)) if weight is not None else None,
        proposal=sampling_proposal(config, step_model, train[1], be),
        rules=rules,
        step_fn=step_fn,
        segment_fn=None if be.mutable else compiled_segment(rules, be, batch_size),
        tail_fn=None if be.mutable else compiled_tail(rules, be, batch_size, tail),
        eval_fn=fused.evaluation_function(step_fn, eval_fn),
        batch_size=batch_size,
        shard=(communicator.rank, communicator.world_size) if communicator else (0, 1),
        seconds_scaling=seconds_scaling,
    )


def _standardised(model: Model, X: Any, be: backend.Backend) -> tuple[Any, Model]:
    """Return ``X`` standardised once and the model that takes it.

    uint8 images stay bytes, flattened, for the model with its standardisation; other
    inputs are standardised here, for the model without it. TensorFlow's graphs divide by
    a constant as a multiplication by its inverse, an ulp away from the division done here:
    there, images stay bytes only when the model does not standardise them.
    """
    exact_in_step = be.name != "tensorflow" or model.input_scaling == "none"
    if is_bytes(X) and exact_in_step:
        return backend.get_namespace(X).reshape(X, (X.shape[0], model.num_inputs)), model
    return model.scale_inputs(X), model.without_input_scaling()


def _step_rules(
    config: TrainConfig, model: Model, be: backend.Backend, communicator: Communicator | None
) -> StepRules:
    """Return the rules every step of the run follows."""
    # Divergence is caught at the step it happens and the state from before that step kept.
    # On the CPU, eager steps (NumPy, PyTorch) read the loss for free: the step checks it
    # before updating in place. Elsewhere a read would wait for the device (a GPU) or leave
    # the compiled loop: the steps keep the state on the device once a loss is not finite
    # (freeze), and fit looks once per segment.
    reads = reads_loss_on_host(be)
    return StepRules(
        model,
        config.sgd(),
        config.softmax,
        config.chunk_size,
        check_loss=reads,
        freeze=not reads,
        all_reduce=communicator.all_reduce_sum if communicator else None,
    )


def reads_loss_on_host(be: backend.Backend) -> bool:
    """Return whether steps on ``be`` read their loss on the host (else they freeze).

    True for the eager libraries on the CPU, where the read costs nothing and freezing
    would cost a dozen more operations a step; False on a GPU and for compiled steps.

    Parameters
    ----------
    be : Backend
        The run's backend.

    Returns
    -------
    bool
        Whether the step checks its loss on the host before updating in place.
    """
    return be.mutable and be.device_name == "cpu"
