"""Holding out part of the training set to choose hyperparameters on.

The test set is never used to choose anything.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from softreg.errors import ConfigError


def validation_split(
    X: Any, y: Any, *, fraction: float = 0.1, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Hold out a seeded random fraction of the training rows for choosing hyperparameters.

    Choosing on the held-out rows keeps the test set unseen until the end.
    ``round(fraction * n_samples)`` rows are held out; each part keeps the rows' original
    order.

    Parameters
    ----------
    X : array_like
        Training features, ``(n_samples, n_features)``.
    y : array_like
        Training labels, ``(n_samples,)``.
    fraction : float, default 0.1
        Fraction of the rows to hold out, in (0, 1).
    seed : int, default 0
        Seeds the choice of the held-out rows.

    Returns
    -------
    X_fit, y_fit, X_val, y_val : numpy.ndarray
        The rows to fit on, ``(n_samples - n_val, n_features)`` and ``(n_samples - n_val,)``,
        and the held-out rows, ``(n_val, n_features)`` and ``(n_val,)``.

    Raises
    ------
    ConfigError
        ``fraction`` is outside (0, 1), ``X`` and ``y`` differ in length, or a part would
        be empty.
    """
    X, y = np.asarray(X), np.asarray(y)
    check_fraction(fraction)
    n = X.shape[0]
    if y.shape[0] != n:
        raise ConfigError(f"validation split: {n} examples but {y.shape[0]} labels")
    n_val = round(fraction * n)
    if not 0 < n_val < n:
        raise ConfigError(
            f"validation fraction {fraction} of {n} examples leaves "
            f"{n_val} to validate and {n - n_val} to fit: both must be non-empty"
        )
    held_out = np.zeros(n, dtype=bool)
    held_out[np.random.default_rng(seed).permutation(n)[:n_val]] = True
    return X[~held_out], y[~held_out], X[held_out], y[held_out]


def check_fraction(fraction: float) -> None:
    """Refuse a validation fraction outside (0, 1).

    Parameters
    ----------
    fraction : float
        The fraction to check.

    Raises
    ------
    ConfigError
        ``fraction`` is not a number in (0, 1); the message names it.
    """
    if not (isinstance(fraction, (int, float)) and 0 < fraction < 1):
        raise ConfigError(f"validation fraction must be in (0, 1), got {fraction!r}")
