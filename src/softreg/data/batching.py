"""Minibatch order as a pure function of (seed, epoch).

Because each epoch's permutation is derived from ``(seed, epoch)`` alone, resuming a run
at epoch k reproduces the exact data order without saving any RNG state.
"""

from __future__ import annotations

import operator

import numpy as np

__all__ = ["epoch_permutation", "minibatch_indices"]


def epoch_permutation(n: int, *, seed: int, epoch: int) -> np.ndarray:
    """Return the permutation of ``range(n)`` that ``seed`` and ``epoch`` determine.

    The generator is seeded with ``(seed, epoch)``, so every epoch has its own order and
    any epoch's order can be recomputed without the ones before it.

    Parameters
    ----------
    n : int
        Number of samples, >= 0.
    seed : int
        The run's seed, >= 0 (NumPy's SeedSequence rule).
    epoch : int
        The epoch, >= 0.

    Returns
    -------
    numpy.ndarray
        int64 ``(n,)``, each of ``0 .. n - 1`` once.

    Raises
    ------
    ValueError
        ``n``, ``seed`` or ``epoch`` is negative.
    TypeError
        ``n`` is not an integer.
    """
    n = operator.index(n)
    if n < 0:
        raise ValueError(f"epoch_permutation: n must be >= 0, got {n}")
    rng = np.random.default_rng((seed, epoch))
    return rng.permutation(n).astype(np.int64, copy=False)


def minibatch_indices(
    n: int, batch_size: int, *, seed: int, epoch: int, shuffle: bool = True
) -> list[np.ndarray]:
    """Split ``range(n)`` into minibatches of indices, in the epoch's order.

    Every index appears exactly once; the last batch holds the remainder and may be
    smaller (like a PyTorch DataLoader with ``drop_last=False``).

    Parameters
    ----------
    n : int
        Number of samples, >= 0.
    batch_size : int
        Indices per batch, >= 1.
    seed, epoch : int
        Decide the order, as for :func:`epoch_permutation`.
    shuffle : bool, default True
        Use :func:`epoch_permutation`'s order; False keeps ``0 .. n - 1`` in order.

    Returns
    -------
    list of numpy.ndarray
        ``ceil(n / batch_size)`` int64 arrays ``(batch_size,)``, the last one possibly
        shorter; views of one array.

    Raises
    ------
    ValueError
        ``batch_size`` < 1 or ``n`` < 0.
    """
    batch_size = operator.index(batch_size)
    if batch_size < 1:
        raise ValueError(f"minibatch_indices: batch_size must be >= 1, got {batch_size}")
    n = operator.index(n)
    if n < 0:
        raise ValueError(f"minibatch_indices: n must be >= 0, got {n}")
    order = (
        epoch_permutation(n, seed=seed, epoch=epoch) if shuffle else np.arange(n, dtype=np.int64)
    )
    return [order[start : start + batch_size] for start in range(0, n, batch_size)]
