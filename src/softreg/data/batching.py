"""Minibatch order as a pure function of (seed, epoch).

Because each epoch's permutation is derived from ``(seed, epoch)`` alone, resuming a run
at epoch k reproduces the exact data order without saving any RNG state.
"""

from __future__ import annotations

import operator

import numpy as np

__all__ = ["epoch_permutation", "minibatch_indices"]


def epoch_permutation(n: int, *, seed: int, epoch: int) -> np.ndarray:
    """A permutation of ``range(n)``, int64 (n,), determined by ``seed`` and ``epoch``.

    ``seed`` and ``epoch`` must be non-negative integers (NumPy's SeedSequence rule).
    """
    n = operator.index(n)
    if n < 0:
        raise ValueError(f"epoch_permutation: n must be >= 0, got {n}")
    rng = np.random.default_rng((seed, epoch))
    return rng.permutation(n).astype(np.int64, copy=False)


def minibatch_indices(
    n: int, batch_size: int, *, seed: int, epoch: int, shuffle: bool = True
) -> list[np.ndarray]:
    """Split ``range(n)`` into batches of ``batch_size`` index arrays (int64), in the
    order of :func:`epoch_permutation` or, with ``shuffle=False``, in order.

    Every index appears exactly once; the last batch holds the remainder and may be
    smaller (like a PyTorch DataLoader with ``drop_last=False``). The batches are views
    of one array.

    Raises
    ------
        ValueError: ``batch_size`` < 1 or ``n`` < 0.
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
