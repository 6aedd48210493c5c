"""Proposal distributions and draws for sampled softmax, on the host (NumPy).

:func:`softreg.vocab.sampled_softmax_with_grad` scores each row against classes drawn from a
proposal ``q``; the closer ``q`` is to the model's softmax, the less the estimate varies.
Word frequencies are the usual choice: :func:`unigram_probs` counts them in the training
labels, :func:`log_uniform_probs` assumes them Zipfian with the classes numbered from the
most frequent (TensorFlow's ``log_uniform_candidate_sampler``). Every class keeps a nonzero
probability: a class ``q`` never draws could not be estimated without bias.
"""

from __future__ import annotations

import numpy as np


def log_uniform_probs(num_classes: int) -> np.ndarray:
    """Return Zipf's law over class ids, ``q(c) = log((c + 2) / (c + 1)) / log(k + 1)``.

    The classes are numbered from the most frequent; the terms telescope, so they sum to 1.

    Parameters
    ----------
    num_classes : int
        ``k``, at least 1.

    Returns
    -------
    numpy.ndarray of float64, shape (num_classes,)
        The probabilities.

    Raises
    ------
    ValueError
        ``num_classes`` < 1.
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    c = np.arange(num_classes, dtype=np.float64)
    return np.log1p(1.0 / (c + 1.0)) / np.log(num_classes + 1.0)


def unigram_probs(labels: np.ndarray, num_classes: int, *, uniform: float = 0.1) -> np.ndarray:
    """Return the class frequencies in ``labels`` mixed with the uniform distribution.

    ``(1 - uniform) * frequency + uniform / num_classes``. The uniform part keeps a class
    never seen in ``labels`` drawable; a mixture (rather than adding one to every count)
    keeps the proposal close to the frequencies when there are more classes than labels, as
    with a large vocabulary.

    Parameters
    ----------
    labels : numpy.ndarray of int, shape (n_samples,)
        Class indices in ``[0, num_classes)``.
    num_classes : int
        The number of classes.
    uniform : float, default 0.1
        The uniform distribution's share, in (0, 1].

    Returns
    -------
    numpy.ndarray of float64, shape (num_classes,)
        The probabilities.

    Raises
    ------
    ValueError
        ``uniform`` outside (0, 1], or a label >= ``num_classes``.
    """
    if not 0.0 < uniform <= 1.0:
        raise ValueError(f"uniform must be in (0, 1] (every class drawable), got {uniform}")
    counts = np.bincount(np.asarray(labels).reshape(-1), minlength=num_classes)
    if counts.shape[0] != num_classes:
        raise ValueError(f"labels go up to {counts.shape[0] - 1}, outside [0, {num_classes})")
    return (1.0 - uniform) * counts / max(counts.sum(), 1) + uniform / num_classes


def draw_classes(probs: np.ndarray, num_sampled: int, rng: np.random.Generator) -> np.ndarray:
    """Return ``num_sampled`` class ids drawn independently, with replacement, from ``probs``.

    These are the draws the log-Q correction ``log(num_sampled * q)`` assumes.

    Parameters
    ----------
    probs : numpy.ndarray, shape (num_classes,)
        The proposal ``q`` (its sum need not be exactly 1).
    num_sampled : int
        How many classes to draw, at least 1.
    rng : numpy.random.Generator
        The source of the draws.

    Returns
    -------
    numpy.ndarray of int64, shape (num_sampled,)
        Class ids in ``[0, num_classes)``.

    Raises
    ------
    ValueError
        ``num_sampled`` < 1.
    """
    if num_sampled < 1:
        raise ValueError(f"num_sampled must be >= 1, got {num_sampled}")
    cdf = np.cumsum(probs)
    draws = np.searchsorted(cdf, rng.random(num_sampled) * cdf[-1], side="right")
    return np.minimum(draws, len(probs) - 1).astype(np.int64)  # u * total rounding to total
