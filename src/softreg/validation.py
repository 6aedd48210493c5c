"""Checks of the data a model is trained or evaluated on, of sample weights, and of a state.

Each check says what is wrong, with the value, before anything is computed: data a model
cannot take (:func:`check_data`), sample weights (:func:`checked_sample_weight`), and a
training state a run cannot continue from (:func:`check_resumable`).
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import numpy as np

from softreg import backend
from softreg.config import TrainConfig
from softreg.data.batching import epoch_permutation
from softreg.errors import ConfigError, DataValueError
from softreg.history import TrainState


def to_device(
    arrays: tuple[Any, Any], be: backend.Backend, name: str, model: Any
) -> tuple[Any, Any]:
    """Return ``(X, y)`` checked on the host and moved to the backend's device.

    softreg trains in float32 on every backend, so features of another dtype (integers,
    float64) are converted here, once; uint8 images stay bytes, a quarter of the memory,
    and each batch is converted as the step reads it.

    Parameters
    ----------
    arrays : tuple of arrays
        ``(X, y)``: inputs ``(n_samples, n_features)`` (or ``(n_samples, 28, 28)``) and
        integer labels ``(n_samples,)``, of any backend.
    be : Backend
        The backend and device to move them to.
    name : str
        What the data are (``"train"``, ``"test"``), for error messages.
    model : Model
        The model they are for (see :func:`check_data`).

    Returns
    -------
    tuple of arrays
        ``(X, y)`` as arrays of ``be`` on its device, ``X`` float32 or uint8.

    Raises
    ------
    DataValueError
        The data do not fit the model (see :func:`check_data`), or a feature is beyond
        float32's range.
    """
    X, y = (backend.to_numpy(a) for a in arrays)
    check_data(X, y, name, model)
    # softreg trains in float32 on every backend (the parameters' dtype): other features,
    # integers or float64, are converted once here rather than promoted at every step.
    if X.dtype not in (np.float32, np.uint8):
        with np.errstate(over="ignore"):  # said below, in one line
            X = X.astype(np.float32)
        if not np.isfinite(X).all():
            raise DataValueError(f"{name}: features beyond float32's range (about 3.4e38)")
    return be.asarray(X), be.asarray(y)


def check_data(X: np.ndarray, y: np.ndarray, name: str, model: Any) -> None:
    """Refuse data ``model`` cannot be trained or evaluated on.

    Parameters
    ----------
    X : numpy.ndarray, shape (n_samples, n_features) or (n_samples, 28, 28)
        Inputs; the trailing dimensions hold ``model.num_inputs`` features in all.
    y : numpy.ndarray, shape (n_samples,)
        Integer labels in ``[0, model.num_outputs)``.
    name : str
        What the data are (``"train"``, ``"test"``), to start error messages.
    model : Model
        The model they are for.

    Raises
    ------
    DataValueError
        Mismatched or empty arrays, the wrong number of features, features that are not
        real numbers or are NaN or inf, labels that are not integers or are outside the
        model's classes. The message says which, with the value.
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
    """Return ``sample_weight`` checked and rescaled to average 1, or None.

    What ``fit`` weights the loss with and ``make_model`` the input statistics. Rescaling
    keeps the weights' scale from changing the learning rate; equal weights are no weights,
    exactly, so they give None.

    Parameters
    ----------
    sample_weight : array, shape (n_samples,), or None
        Weights (>= 0, not all 0) of the examples, of any backend.
    n : int
        Number of examples, ``n_samples``.

    Returns
    -------
    numpy.ndarray, shape (n_samples,), or None
        float64 weights on the host, averaging 1; None when ``sample_weight`` is None or
        all its weights are equal.

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


def check_resumable(state: TrainState, steps_per_epoch: int, batch_size: int) -> None:
    """Refuse a state this run cannot continue from.

    A state made by another configuration shows itself here: a position outside the run's
    epochs, or epoch sums and a last running-loss report that count more examples than its
    batches hold.

    Parameters
    ----------
    state : TrainState
        The state to continue from.
    steps_per_epoch : int
        Batches in each epoch of this run.
    batch_size : int
        Examples per batch in this run.

    Raises
    ------
    ConfigError
        Saying what does not fit, with the numbers.
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


def start_fingerprint(
    train: tuple[Any, Any], state: TrainState, config: TrainConfig
) -> dict[str, float]:
    """Return what the ranks of a data-parallel run must share before the first step.

    As numbers (float64 sums stand in for checksums): a rank with other data, another
    NumPy's data order or another checkpoint would otherwise train on silently.
    :meth:`Communicator.agree <softreg.protocols.Communicator.agree>` compares them.

    Parameters
    ----------
    train : tuple of arrays
        ``(X (n_samples, ...), y (n_samples,))``, this rank's training data.
    state : TrainState
        Where the run starts.
    config : TrainConfig
        The run's configuration.

    Returns
    -------
    dict of str to float
        ``configuration``, ``training data``, ``data order``, ``step`` and ``parameters``.
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
