"""Next-token data with a large vocabulary: Zipf-distributed tokens with a structure to learn.

A softmax regression that predicts the next token from the previous one has one class per
word. :func:`make_next_token` draws such pairs without a corpus, on an explicit
``numpy.random.Generator``:

- token ids are ranked by frequency: ``p0(c)`` is proportional to ``(c + 1) ** -zipf`` (Zipf's
  law, as words in text);
- token ``c`` belongs to cluster ``c % n_clusters``, and each cluster has a fixed successor
  cluster (a random permutation);
- the previous token is drawn from ``p0``; with probability ``stickiness`` the next one is drawn
  from ``p0`` restricted to the successor of the previous token's cluster, else from ``p0``;
- the features of an example are the embedding of the previous token's cluster, a fixed
  random ``(n_clusters, n_features)`` matrix of full rank.

With ``n_features >= n_clusters`` softmax regression can represent the true conditional
distribution exactly, so the best loss it can reach is the conditional entropy
``H(next | cluster of previous)``, which :class:`NextTokenData` reports with the unigram
entropy (the best a model that ignores its input can do) and ``log(vocab_size)`` (a uniform
guess, where training starts).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["NextTokenData", "make_next_token"]


@dataclass(frozen=True)
class NextTokenData:
    """Next-token pairs drawn by :func:`make_next_token`, with the losses to compare against.

    Parameters
    ----------
    X_train : numpy.ndarray
        float32 ``(n_train, n_features)``: the embedding of the previous token's cluster.
    y_train : numpy.ndarray
        int64 ``(n_train,)``: the next token, in ``[0, vocab_size)``.
    X_test : numpy.ndarray
        float32 ``(n_test, n_features)``, as ``X_train``.
    y_test : numpy.ndarray
        int64 ``(n_test,)``, as ``y_train``.
    vocab_size : int
        Number of tokens, which is the number of classes.
    entropy_uniform : float
        ``log(vocab_size)`` in nats: the loss of a uniform guess, where training starts.
    entropy_unigram : float
        ``H(next)`` in nats: the best loss a model that ignores its input can reach.
    entropy_conditional : float
        ``H(next | cluster of previous)`` in nats: the best loss there is.

    Attributes
    ----------
    num_classes : int
        ``vocab_size``.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    vocab_size: int
    entropy_uniform: float
    entropy_unigram: float
    entropy_conditional: float

    @property
    def num_classes(self) -> int:
        """Number of classes: ``vocab_size``."""
        return self.vocab_size


def make_next_token(
    n_train: int = 16384,
    n_test: int = 4096,
    *,
    vocab_size: int = 65536,
    n_features: int = 32,
    n_clusters: int = 32,
    zipf: float = 1.0,
    stickiness: float = 0.8,
    seed: int = 0,
) -> NextTokenData:
    """Draw (previous-token features, next token) pairs, as the module docstring describes.

    Parameters
    ----------
    n_train, n_test : int, default 16384 and 4096
        Number of training (>= 1) and test (>= 0) pairs.
    vocab_size : int, default 65536
        Number of tokens (classes).
    n_features : int, default 32
        Width of the cluster embedding, >= 1 (``>= n_clusters`` to represent it exactly).
    n_clusters : int, default 32
        Number of token clusters, in ``[1, vocab_size]``.
    zipf : float, default 1.0
        Exponent of the token frequencies: ``p0(c)`` is proportional to ``(c + 1) ** -zipf``.
    stickiness : float, default 0.8
        Probability, in [0, 1], that the next token comes from the successor cluster.
    seed : int, default 0
        Decides everything: the clusters' successors, the embedding and the draws.

    Returns
    -------
    NextTokenData
        The pairs, the first ``n_train`` to train on, and the entropies to compare with.

    Raises
    ------
    ValueError
        An argument is outside its range above.
    """
    _check_arguments(n_train, n_test, n_features, n_clusters, vocab_size, stickiness)
    rng = np.random.default_rng(seed)
    p0 = _zipf(vocab_size, zipf)
    successor = rng.permutation(n_clusters)
    embedding = rng.normal(size=(n_clusters, n_features)) / math.sqrt(n_features)
    previous = _draw(np.cumsum(p0), rng.random(n_train + n_test))
    tables = _cluster_tables(p0, n_clusters)
    next_token = _next_tokens(previous, p0, successor, tables, stickiness, rng)
    X = embedding[previous % n_clusters].astype(np.float32)
    conditional, unigram = _entropies(p0, n_clusters, successor, stickiness, tables[2])
    return NextTokenData(
        X[:n_train],
        next_token[:n_train],
        X[n_train:],
        next_token[n_train:],
        vocab_size=vocab_size,
        entropy_uniform=math.log(vocab_size),
        entropy_unigram=unigram,
        entropy_conditional=conditional,
    )


def _check_arguments(
    n_train: int, n_test: int, n_features: int, n_clusters: int, vocab_size: int, stickiness: float
) -> None:
    """Raise ValueError for the first argument of :func:`make_next_token` out of range."""
    if not 1 <= n_clusters <= vocab_size:
        raise ValueError(f"n_clusters must be in [1, vocab_size], got {n_clusters}")
    if not 0.0 <= stickiness <= 1.0:
        raise ValueError(f"stickiness must be in [0, 1], got {stickiness}")
    if n_train < 1 or n_test < 0 or n_features < 1:
        raise ValueError("need n_train >= 1, n_test >= 0 and n_features >= 1")


def _next_tokens(
    previous: np.ndarray,
    p0: np.ndarray,
    successor: np.ndarray,
    tables: tuple[int, np.ndarray, np.ndarray],
    stickiness: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Draw the token after each of ``previous``: int64 ``(n,)`` in ``[0, len(p0))``."""
    by_cluster, cluster_cdf, cluster_mass = tables
    n, n_clusters = previous.shape[0], successor.shape[0]
    # Within cluster j: a point of the flattened table's cdf between the cluster's bounds.
    target = successor[previous % n_clusters]
    below = cluster_cdf[target * by_cluster] - p0[target]  # the cdf before the cluster's row
    # (1 - 1e-12): rounding must not carry u past the row's end, into the next cluster.
    u = below + rng.random(n) * cluster_mass[target] * (1 - 1e-12)
    flat = _draw(cluster_cdf, u)
    sticky_next = target + (flat - target * by_cluster) * n_clusters
    free_next = _draw(np.cumsum(p0), rng.random(n))
    stick = rng.random(n) < stickiness
    next_token = np.where(stick, sticky_next, free_next).astype(np.int64)
    return np.minimum(next_token, p0.shape[0] - 1)  # rounding at a cdf's very end


def _zipf(vocab_size: int, exponent: float) -> np.ndarray:
    """Return Zipf's law over ``vocab_size`` ranked tokens, float64 ``(vocab_size,)``."""
    weights = np.arange(1, vocab_size + 1, dtype=np.float64) ** -exponent
    return weights / weights.sum()


def _cluster_tables(p0: np.ndarray, n_clusters: int) -> tuple[int, np.ndarray, np.ndarray]:
    """Return ``per``, the cdf of the flattened token table, and each row's mass.

    Row ``j`` of the ``(n_clusters, per)`` table holds ``p0`` of tokens ``j, j + K, ...``
    (zero-padded).
    """
    per = -(-p0.shape[0] // n_clusters)
    table = np.zeros(per * n_clusters)
    table[: p0.shape[0]] = p0
    table = table.reshape(per, n_clusters).T  # row j: tokens j, j + K, j + 2K, ...
    return per, np.cumsum(table.reshape(-1)), table.sum(axis=1)


def _draw(cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Return the indices ``i`` with ``cdf[i - 1] <= u < cdf[i]`` (inverse-cdf sampling)."""
    return np.minimum(np.searchsorted(cdf, u, side="right"), cdf.shape[0] - 1)


def _entropies(
    p0: np.ndarray,
    n_clusters: int,
    successor: np.ndarray,
    stickiness: float,
    cluster_mass: np.ndarray,
) -> tuple[float, float]:
    """Return ``H(next | cluster of previous)`` and ``H(next)``, in nats, by definition."""
    token_cluster = np.arange(p0.shape[0]) % n_clusters
    conditional, marginal = 0.0, np.zeros_like(p0)
    for k in range(n_clusters):  # the previous token's cluster, with probability mass[k]
        j = successor[k]
        p = (1.0 - stickiness) * p0
        p[token_cluster == j] += stickiness * p0[token_cluster == j] / cluster_mass[j]
        conditional -= cluster_mass[k] * float(np.sum(p[p > 0] * np.log(p[p > 0])))
        marginal += cluster_mass[k] * p
    unigram = -float(np.sum(marginal[marginal > 0] * np.log(marginal[marginal > 0])))
    return conditional, unigram
