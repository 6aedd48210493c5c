"""The fused training step: softmax regression's whole step in one pass, compiled with numba.

The array path (:func:`softreg.step.train_step`) runs a step as a handful of array calls:
gather the batch's rows, ``X @ W + b``, the stable softmax and cross-entropy, the gradient
through two matrix products, the optimiser's update. For the book's model (784 inputs, 10
classes, batches of 256) each call is small and a step costs mostly its calls. The fused
kernel does the same arithmetic in one pass over the batch's rows: each row is read
(uint8 rows converted and standardised once), its 10 logits, softmax, loss, arg-max and
gradient computed while it is in cache; the batch's rows split into a fixed number of parts,
one thread each, every part with its own gradient accumulator, summed in order by the
update. The same float32 numbers as the array path up to the order of the sums (the matrix
products' order is BLAS's own; the kernel's is fixed by its compiled code, with fused
multiply-adds: see :mod:`softreg._fused_kernels`), and the same result on any number of
threads.

``TrainConfig.kernel`` picks the path: ``"auto"`` (the fused step where it applies and numba
is installed), ``"fused"`` or ``"array"``. numba is optional (``pip install 'softreg[fast]'``)
and imported only when a fused step is built.
"""

from __future__ import annotations

import functools
import time
from typing import Any

import numpy as np

from softreg import backend, standardise
from softreg.compiled import Compiled
from softreg.config import TrainConfig, kernel_refusal
from softreg.errors import ConfigError
from softreg.models import SoftmaxRegression
from softreg.optim import SGD
from softreg.protocols import Communicator, Model
from softreg.step import Carry, NonFiniteLoss, StepInputs, StepRules, train_step

MIN_PART_ROWS = 64
"""A batch is split into parts of at least this many rows (fewer rows: fewer parts)."""

MAX_PARTS = 16
"""At most this many parts (and gradient accumulators) per batch, whatever its size."""

INSTALL_HINT = "pip install 'softreg[fast]'"


def part_count(rows: int) -> int:
    """Return how many parts a batch of ``rows`` rows is split into.

    A function of the batch's size alone, not of the number of threads: the sums, and so the
    trained weights, are the same on any number of threads.

    Parameters
    ----------
    rows : int
        The batch's rows.

    Returns
    -------
    int
        ``ceil(rows / MIN_PART_ROWS)``, between 1 and :data:`MAX_PARTS`.
    """
    return max(1, min(MAX_PARTS, -(-rows // MIN_PART_ROWS)))


def numba_missing() -> str | None:
    """Return why numba cannot be used (a sentence), or None when it imports.

    Returns
    -------
    str or None
        The import error and how to install numba, or None.
    """
    try:
        import numba  # noqa: F401
    except ImportError as exc:
        return f"numba is not installed ({exc}); {INSTALL_HINT}"
    return None


def fused_refusal(
    config: TrainConfig, model: Model, be: backend.Backend, communicator: Communicator | None
) -> str | None:
    """Return why this run cannot take the fused step, or None when it can.

    Parameters
    ----------
    config : TrainConfig
        The run's configuration (see :func:`softreg.config.kernel_refusal`).
    model : Model
        The model to train: softmax regression itself, not another model.
    be : Backend
        The backend: NumPy.
    communicator : Communicator or None
        None: a data-parallel run sums its gradients over ranks in the array path.

    Returns
    -------
    str or None
        The reason, a phrase, or None.
    """
    reason = kernel_refusal(config)
    if reason is None and type(model) is not SoftmaxRegression:
        reason = f"it trains softmax regression only, not {type(model).__name__}"
    if reason is None and be.name != "numpy":
        reason = f"it runs on NumPy arrays only, not backend {be.name!r}"
    if reason is None and communicator is not None:
        reason = "data-parallel runs sum their gradients over ranks in the array path"
    return reason


def step_function(
    config: TrainConfig, rules: StepRules, be: backend.Backend, communicator: Communicator | None
) -> Compiled:
    """Return the run's training step: the fused one or the array path's, as ``kernel`` says.

    ``"auto"`` takes the fused step when the run qualifies (:func:`fused_refusal`) and numba
    imports; ``"fused"`` insists on it. The fused step's first call (numba compiling, or
    loading its cache) counts as compile time.

    Parameters
    ----------
    config : TrainConfig
        The run's configuration (its ``kernel``).
    rules : StepRules
        The step's rules (its ``model`` is the one trained).
    be : Backend
        The backend.
    communicator : Communicator or None
        This rank's part in a data-parallel run.

    Returns
    -------
    Compiled
        ``step(carry, X, y, idx, inputs) -> carry``.

    Raises
    ------
    ConfigError
        ``kernel="fused"`` where it cannot be honoured; the message says why.
    """
    if config.kernel != "array":
        reason = fused_refusal(config, rules.model, be, communicator) or numba_missing()
        if reason is None:
            return FusedCompiled(functools.partial(fused_step, rules))
        if config.kernel == "fused":
            raise ConfigError(f"kernel='fused' cannot train this run: {reason}")
    return be.compile(functools.partial(train_step, rules), donate_argnums=(0,))


def evaluation_function(step_fn: Compiled, eval_fn: Compiled) -> Compiled:
    """Return the run's evaluation: on one BLAS thread beside the fused step, else as it is.

    After a matrix product, OpenBLAS's threads spin for a while waiting for more work;
    beside the fused step's threads they take the cores the step needs, and the steps after
    each evaluation run several times slower. One BLAS thread for the evaluation (one
    ``(n_test, n_features) @ (n_features, n_classes)`` product per chunk, once an epoch)
    leaves none spinning.

    Parameters
    ----------
    step_fn : Compiled
        The run's step (:func:`step_function`).
    eval_fn : Compiled
        The run's evaluation (NumPy: called as it is).

    Returns
    -------
    Compiled
        ``eval_fn``, or with the fused step, the same function on one BLAS thread.
    """
    if not isinstance(step_fn, FusedCompiled):
        return eval_fn
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover (a dependency)
        return eval_fn
    controller, fn = ThreadpoolController(), eval_fn.fn

    def on_one_blas_thread(*args: Any) -> Any:
        with controller.limit(limits=1, user_api="blas"):
            return fn(*args)

    return Compiled(on_one_blas_thread, None)


class FusedCompiled(Compiled):
    """The fused step, its first call per kind of input counted as compile time.

    numba compiles the kernel once per dtypes and layouts of its arguments (loading it from
    its cache when it can), not per shape: the first call with new dtypes of ``X``, ``y``
    and ``idx`` is timed into ``seconds``, the rest run as they are (no signature of every
    argument per step, which costs a tenth of a step here).

    Parameters
    ----------
    fn : callable
        ``fused_step`` with its rules bound: ``fn(carry, X, y, idx, inputs)``.
    """

    def __init__(self, fn: Any):
        """Import the kernels (numba compiles them at the first call)."""
        from softreg import _fused_kernels  # noqa: F401

        super().__init__(fn, None)
        self.kinds: set[tuple[Any, ...]] = set()

    def __call__(self, *args: Any) -> Any:
        """Take the step, timing it as compile time when its input dtypes are new."""
        _, X, y, idx, _ = args
        kind = (X.dtype, y.dtype, idx.dtype, X.flags.writeable)
        if kind in self.kinds:
            return self.fn(*args)
        start = time.perf_counter()
        out = self.fn(*args)
        self.seconds += time.perf_counter() - start
        self.kinds.add(kind)
        return out


def fused_step(
    rules: StepRules, carry: Carry, X: Any, y: Any, idx: Any, inputs: StepInputs
) -> Carry:
    """Take one SGD step on the rows ``idx`` of ``(X, y)``, all in one compiled pass.

    The contract of :func:`softreg.step.train_step` for softmax regression on NumPy arrays,
    with the stable softmax and all classes at once.

    Parameters
    ----------
    rules : StepRules
        The model (softmax regression; its input standardisation applied to every row) and
        optimiser (:class:`~softreg.optim.SGD`).
    carry : Carry
        ``W (n_features, n_classes)`` and ``b (n_classes,)``, the momentum buffers and the
        epoch's sums; parameters and buffers are updated in place.
    X : numpy.ndarray, shape (n_samples, n_features)
        uint8 or float32 inputs.
    y : numpy.ndarray, shape (n_samples,)
        Integer labels in ``[0, n_classes)`` (not checked).
    idx : numpy.ndarray of int, shape (batch_size,)
        The rows of this batch.
    inputs : StepInputs
        Sample weights ``(n_samples,)`` float32 or None, and the learning rate (None: the
        optimiser's).

    Returns
    -------
    Carry
        The updated parameters and optimiser state, and ``totals`` with this batch's summed
        loss and correct count added.

    Raises
    ------
    NonFiniteLoss
        With ``rules.check_loss``: the batch's loss is not finite; nothing was changed.
    """
    from softreg import _fused_kernels as kernels

    W, b = carry.params["W"], carry.params["b"]
    rows, parts = idx.shape[0], part_count(idx.shape[0])
    out = (
        np.empty((parts, W.shape[1], W.shape[0]), dtype=np.float32),  # dW, transposed
        np.empty((parts, b.shape[0]), dtype=np.float32),
        np.empty(rows, dtype=np.float32),  # each row's loss
        np.empty(rows, dtype=np.int32),  # each row's hit
    )
    weight = inputs.weight if inputs.weight is not None else _EMPTY
    optim = _optim_args(rules, carry.opt_state, inputs.lr)
    loss, correct, updated = kernels.train_batch(
        (X, y, idx, weight), (W, b), _reading(rules.model, X), optim, out
    )
    if not updated:
        raise NonFiniteLoss(float(loss))
    totals = carry.totals
    totals = {
        "loss": totals["loss"] + np.float32(loss),
        "correct": totals["correct"] + np.int32(correct),
    }
    return Carry({"W": W, "b": b}, carry.opt_state, totals)


_EMPTY = np.empty(0, dtype=np.float32)
_NO_BUFFER = np.empty((0, 1), dtype=np.float32)


_READINGS: dict[tuple[int, str], tuple[Any, tuple]] = {}


def _reading(model: Any, X: np.ndarray) -> tuple:
    """Return :func:`_scaling` of ``model`` for ``X``'s dtype, built once per model and dtype.

    A step's arguments otherwise cost a tenth of a step to build; the model is kept with
    its entry, so an entry is only ever found for the very model it was built for.
    """
    key = (id(model), X.dtype.str)
    found = _READINGS.get(key)
    if found is None or found[0] is not model:
        if len(_READINGS) >= 16:
            _READINGS.clear()
        found = _READINGS[key] = (model, _scaling(model, X))
    return found[1]


def _scaling(model: Any, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, Any]:
    """Return how the kernel reads inputs: ``(mean, scale, byte_values, divisor)``.

    The standardisation as ``(n_features,)`` float32 arrays (empty: none), and for uint8
    inputs the 256 values the bytes read as (``standardise.byte_values``; empty otherwise)
    and ``divisor``: 255 when those values are ``float32(b) / 255`` to the bit
    (:func:`_byte_divisor`), which the kernel then computes, vectorised, instead of looking
    them up; else 0.
    """
    as_bytes = standardise.is_bytes(X, np)
    byte_values = standardise.byte_values() if as_bytes else _EMPTY
    divisor = _byte_divisor() if as_bytes else np.float32(0)
    if model.input_scaling == "none":
        return _EMPTY, _EMPTY, byte_values, divisor
    shape = (model.num_inputs,)
    mean = np.broadcast_to(np.asarray(model.input_mean, dtype=np.float32), shape)
    scale = np.broadcast_to(np.asarray(model.input_scale, dtype=np.float32), shape)
    return np.ascontiguousarray(mean), np.ascontiguousarray(scale), byte_values, divisor


@functools.lru_cache(maxsize=1)
def _byte_divisor() -> Any:
    """Return float32 255 when every byte ``b`` reads as ``float32(b) / 255``, else 0.

    The byte table (``standardise.byte_values``) defines what a byte reads as; a float32
    division is correctly rounded, so where the table holds exactly those quotients the
    kernel divides (vectorised) rather than looks up (one byte at a time), bit for bit the
    same values.
    """
    table = standardise.byte_values()
    quotients = np.arange(256, dtype=np.float32) / np.float32(255)
    same = table.shape == (256,) and np.array_equal(
        table.view(np.uint32), quotients.view(np.uint32)
    )
    return np.float32(255 if same else 0)


def _optim_args(rules: StepRules, state: dict, lr: Any) -> tuple:
    """Return the update's arguments for :func:`softreg._fused_kernels.train_batch`."""
    optimizer: SGD = rules.optimizer
    buffers = state.get("momentum") if optimizer.momentum else None
    return (
        np.float32(optimizer.lr if lr is None else lr),
        np.float32(optimizer.weight_decay),
        np.float32(optimizer.momentum),
        optimizer.nesterov,
        buffers["W"] if buffers else _NO_BUFFER,
        buffers["b"][None, :] if buffers else _NO_BUFFER,
        rules.check_loss,
    )
