"""Input standardisation: the transform a model applies to its inputs before its first layer.

``(X - mean) / scale``, with ``mean`` and ``scale`` either one number for every feature (the
lecture's ``transforms.Normalize((0.1307,), (0.3081,))``: the mean and standard deviation of
all training entries) or one per feature (each pixel its own mean, and its standard deviation
plus a floor: on raw pixels that conditions SGD far better). The numbers belong to the model
(``input_mean`` and ``input_scale`` of :class:`softreg.SoftmaxRegression` and
:class:`softreg.MLP`): a saved model applies them to whatever it is given later, and
:func:`softreg.fit` applies them once to the data it trains and evaluates on.

``TrainConfig.normalize`` names the kind: ``no`` (the identity), ``yes`` (one number each) or
``per-feature``; :func:`fit_scaling` computes them from training data.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from softreg import backend
from softreg.errors import ConfigError

__all__ = [
    "SCALE_FLOOR",
    "as_features",
    "as_scaling",
    "byte_values",
    "is_bytes",
    "feature_stats",
    "fit_scaling",
    "input_stats",
    "scaling_kind",
]

SCALE_FLOOR = 0.05  # added to each pixel's std: near-constant border pixels are not blown up


# What each byte means as a feature: b / 255 in float32 (true division, as ToTensor does it).
_BYTE_VALUES = np.arange(256, dtype=np.float32) / np.float32(255)
_BYTE_VALUES.flags.writeable = False


def is_bytes(X: Any, xp: Any = None) -> bool:
    """Return whether ``X`` holds uint8 values: image bytes (see :func:`as_features`).

    Parameters
    ----------
    X : array
        An array of any backend.
    xp : module, optional
        Its namespace (found from ``X`` when None).

    Returns
    -------
    bool
        Whether ``X``'s dtype is uint8.
    """
    return X.dtype == backend.get_namespace(X, xp=xp).uint8


def as_features(X: Any, xp: Any) -> Any:
    """Return inputs as float32 features: uint8 image bytes in [0, 1], others converted.

    Every uint8 input is taken for image bytes (convert counts or codes stored as uint8 to
    float32 first to keep their values), read as torchvision's ``ToTensor`` (and the book)
    reads them:
    ``X / 255`` in float32, so the features are bit-identical to a PyTorch pipeline's. JAX
    and TensorFlow look the bytes up in a table of the 256 values NumPy divides (their
    compilers would multiply by the reciprocal instead, an ulp off), so every library gives
    the same bits. Other dtypes are converted to float32 as they are.

    Parameters
    ----------
    X : array
        Inputs of any shape, of namespace ``xp``.
    xp : module
        The array namespace.

    Returns
    -------
    array
        ``X`` itself when float32, else a new float32 array of its shape.
    """
    if X.dtype == xp.float32:
        return X
    if not is_bytes(X, xp):
        return xp.astype(X, xp.float32)
    if not any(name in xp.__name__ for name in ("jax", "tensorflow")):
        X = xp.astype(X, xp.float32)
        X /= 255  # NumPy and PyTorch divide exactly, in place on the fresh copy
        return X
    # XLA and TensorFlow's graphs would multiply by 1/255 instead: look the bytes up in the
    # table NumPy divided, a constant of the compiled program.
    table = backend.asarray(_BYTE_VALUES, xp)
    flat = xp.take(table, xp.astype(xp.reshape(X, (-1,)), xp.int32), axis=0)
    return xp.reshape(flat, tuple(X.shape))


def byte_values() -> np.ndarray:
    """Return what each byte of uint8 image inputs reads as: ``b / 255`` in float32.

    Returns
    -------
    ndarray of float32, shape (256,)
        Read-only; entry ``b`` is ``float32(b) / float32(255)`` (true division).
    """
    return _BYTE_VALUES


def as_scaling(mean: Any, scale: Any, num_inputs: int) -> tuple[np.ndarray, np.ndarray]:
    """Return ``mean`` and ``scale`` as checked, read-only float32 arrays.

    Parameters
    ----------
    mean, scale : float or array-like of shape (n_features,)
        One number for every feature, or one per feature.
    num_inputs : int
        The number of features.

    Returns
    -------
    mean, scale : ndarray of float32, of shape () or (n_features,)
        Copies, not writeable.

    Raises
    ------
    ConfigError
        Another shape, a value that is not a real number, a non-finite mean, or a scale that
        is not finite and > 0.
    """
    arrays = []
    for name, value in (("input_mean", mean), ("input_scale", scale)):
        if isinstance(value, (bool, str)):
            raise ConfigError(f"{name} must be a number or an array of numbers, got {value!r}")
        try:
            array = np.array(value, dtype=np.float32)  # a copy: the caller's array may change
        except (TypeError, ValueError):
            raise ConfigError(
                f"{name} must be a number or an array of numbers, got {type(value).__name__}"
            ) from None
        if array.shape not in ((), (num_inputs,)):
            raise ConfigError(
                f"{name} must be one number or one per feature ({num_inputs},), "
                f"got shape {array.shape}"
            )
        if not np.isfinite(array).all():
            raise ConfigError(f"{name} must be finite, got {_first_bad(array, np.isfinite)}")
        array.flags.writeable = False
        arrays.append(array)
    mean, scale = arrays
    if not (scale > 0).all():
        raise ConfigError(f"input_scale must be > 0, got {_first_bad(scale, lambda s: s > 0)}")
    return mean, scale


def _first_bad(array: np.ndarray, good: Any) -> float:
    """Return the first value of ``array`` for which ``good`` is false."""
    return float(array.reshape(-1)[np.argmin(good(array).reshape(-1))])


def scaling_kind(mean: np.ndarray, scale: np.ndarray) -> str:
    """Return the kind of an input standardisation.

    Parameters
    ----------
    mean, scale : ndarray of shape () or (n_features,)
        As :func:`as_scaling` returns them.

    Returns
    -------
    {"none", "scalar", "per-feature"}
        The identity, one number each, or one per feature.
    """
    if mean.ndim or scale.ndim:
        return "per-feature"
    return "none" if (float(mean), float(scale)) == (0.0, 1.0) else "scalar"


def fit_scaling(
    X: np.ndarray, kind: str, *, sample_weight: np.ndarray | None = None
) -> tuple[Any, Any]:
    """Return the input standardisation of a kind, computed from training inputs.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        The training inputs (further axes are features too).
    kind : {"none", "scalar", "per-feature"}
        The identity ``(0.0, 1.0)``, :func:`input_stats` or :func:`feature_stats`.
    sample_weight : ndarray of shape (n_samples,), optional
        Finite, >= 0, not all 0: a row of weight k counts as k rows (and one of weight 0
        not at all), as in the loss.

    Returns
    -------
    mean, scale : float or ndarray of shape (n_features,)
        The mean and the scale to divide by.

    Raises
    ------
    ConfigError
        An unknown ``kind``, or inputs that cannot be standardised.
    """
    if kind == "none":
        return 0.0, 1.0
    if kind == "scalar":
        return input_stats(X, sample_weight=sample_weight)
    if kind == "per-feature":
        return feature_stats(X, sample_weight=sample_weight)
    raise ConfigError(f"unknown input scaling {kind!r}; choose none, scalar or per-feature")


def input_stats(
    X: Any, chunk_rows: int = 8192, *, sample_weight: np.ndarray | None = None
) -> tuple[float, float]:
    """Return the mean and standard deviation of every entry of ``X``.

    Accumulated in float64 chunk by chunk (no float64 copy of the whole matrix). For MNIST's
    training set they are the lecture's 0.1307 and 0.3081.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Host inputs (further axes are features too).
    chunk_rows : int
        Rows per chunk.
    sample_weight : ndarray of shape (n_samples,), optional
        Weights of the rows, as for :func:`fit_scaling`.

    Returns
    -------
    mean, std : float
        Finite, ``std`` > 0.

    Raises
    ------
    ConfigError
        ``X`` is empty, or its statistics are not finite or its entries all equal.
    """
    X = np.asarray(X)
    X = X.reshape(X.shape[0], -1)
    if X.size == 0:
        raise ConfigError("cannot standardise an empty dataset")
    weights = _normalised(sample_weight)
    total = squares = 0.0
    for begin in range(0, X.shape[0], chunk_rows):
        chunk = X[begin : begin + chunk_rows].astype(np.float64)
        if weights is None:
            total += float(chunk.sum())
            squares += float(np.square(chunk).sum())
        else:  # the rows' means, weighted
            w = weights[begin : begin + chunk_rows]
            total += float(w @ chunk.mean(axis=1))
            squares += float(w @ np.square(chunk).mean(axis=1))
    count = X.size if weights is None else 1.0
    mean = total / count
    std = math.sqrt(max(squares / count - mean * mean, 0.0))
    if not (math.isfinite(mean) and math.isfinite(std)) or std == 0:
        raise ConfigError(f"cannot standardise inputs with mean {mean} and std {std}")
    return mean, std


def feature_stats(
    X: np.ndarray,
    *,
    floor: float = SCALE_FLOOR,
    chunk_rows: int = 4096,
    sample_weight: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Return each feature's mean and scale (standard deviation + ``floor``).

    Sums accumulate in float64 chunk by chunk; without weights the squares are taken in
    ``X``'s dtype (no float64 copy of ``X``: five times as fast, and a float32 square is
    within 6e-8 of the exact one).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Host inputs (further axes are flattened into features).
    floor : float
        Added to each standard deviation: near-constant features are not blown up.
    chunk_rows : int
        Rows per chunk.
    sample_weight : ndarray of shape (n_samples,), optional
        Weights of the rows, as for :func:`fit_scaling`.

    Returns
    -------
    mean, scale : ndarray of float64, of shape (n_features,)
        The means and the scales.

    Raises
    ------
    ConfigError
        ``X`` has no rows.
    """
    X = np.asarray(X)
    X = X.reshape(X.shape[0], -1)
    if X.shape[0] == 0:
        raise ConfigError("cannot standardise an empty dataset")
    weights = _normalised(sample_weight)
    total = np.zeros(X.shape[1])
    squares = np.zeros(X.shape[1])
    for begin in range(0, X.shape[0], chunk_rows):
        chunk = X[begin : begin + chunk_rows]
        if chunk.dtype.kind != "f" or weights is not None:  # integers would wrap around
            chunk = chunk.astype(np.float64)
        if weights is None:
            total += chunk.sum(axis=0, dtype=np.float64)
            squares += np.square(chunk).sum(axis=0, dtype=np.float64)
        else:
            w = weights[begin : begin + chunk_rows]
            total += w @ chunk
            squares += w @ np.square(chunk)
    n = X.shape[0] if weights is None else 1.0
    mean = total / n
    std = np.sqrt(np.maximum(squares / n - mean**2, 0.0))
    return mean, std + floor


def _normalised(sample_weight: np.ndarray | None) -> np.ndarray | None:
    """Return weights summing to 1, float64 ``(n_samples,)``, or None.

    The weights are as :func:`softreg.validation.checked_sample_weight` gives them: finite,
    >= 0, averaging 1.
    """
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight, dtype=np.float64)
    return w / w.sum()
