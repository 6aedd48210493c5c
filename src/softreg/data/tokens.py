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
    X_train: np.ndarray  # (n_train, n_features) float32: the previous token's embedding
    y_train: np.ndarray  # (n_train,) int64: the next token
    X_test: np.ndarray
    y_test: np.ndarray
    vocab_size: int
    entropy_uniform: float  # log(vocab_size), nats
    entropy_unigram: float  # H(next): the best loss without looking at the input
    entropy_conditional: float  # H(next | previous cluster): the best loss there is

    @property
    def num_classes(self) -> int:
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
    """Draw ``n_train + n_test`` (previous-token features, next token) pairs as described in
    the module docstring, with ``seed`` deciding everything.
    """
    if not 1 <= n_clusters <= vocab_size:
        raise ValueError(f"n_clusters must be in [1, vocab_size], got {n_clusters}")
    if not 0.0 <= stickiness <= 1.0:
        raise ValueError(f"stickiness must be in [0, 1], got {stickiness}")
    if n_train < 1 or n_test < 0 or n_features < 1:
        raise ValueError("need n_train >= 1, n_test >= 0 and n_features >= 1")
    rng = np.random.default_rng(seed)
    p0 = _zipf(vocab_size, zipf)
    successor = rng.permutation(n_clusters)
    embedding = rng.normal(size=(n_clusters, n_features)) / math.sqrt(n_features)

    n = n_train + n_test
    previous = _draw(np.cumsum(p0), rng.random(n))
    cluster = previous % n_clusters
    by_cluster, cluster_cdf, cluster_mass = _cluster_tables(p0, n_clusters)
    # Within cluster j: a point of the flattened table's cdf between the cluster's bounds.
    target = successor[cluster]
    below = cluster_cdf[target * by_cluster] - p0[target]  # the cdf before the cluster's row
    # (1 - 1e-12): rounding must not carry u past the row's end, into the next cluster.
    u = below + rng.random(n) * cluster_mass[target] * (1 - 1e-12)
    flat = _draw(cluster_cdf, u)
    sticky_next = target + (flat - target * by_cluster) * n_clusters
    free_next = _draw(np.cumsum(p0), rng.random(n))
    stick = rng.random(n) < stickiness
    next_token = np.where(stick, sticky_next, free_next).astype(np.int64)
    next_token = np.minimum(next_token, vocab_size - 1)  # rounding at a cdf's very end

    X = embedding[cluster].astype(np.float32)
    conditional, unigram = _entropies(p0, n_clusters, successor, stickiness, cluster_mass)
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


def _zipf(vocab_size: int, exponent: float) -> np.ndarray:
    weights = np.arange(1, vocab_size + 1, dtype=np.float64) ** -exponent
    return weights / weights.sum()


def _cluster_tables(p0: np.ndarray, n_clusters: int) -> tuple[int, np.ndarray, np.ndarray]:
    """Row ``j`` of a ``(n_clusters, per)`` table holds ``p0`` of tokens ``j, j + K, ...``
    (zero-padded); returns ``per``, the cdf of the flattened table and each row's mass.
    """
    per = -(-p0.shape[0] // n_clusters)
    table = np.zeros(per * n_clusters)
    table[: p0.shape[0]] = p0
    table = table.reshape(per, n_clusters).T  # row j: tokens j, j + K, j + 2K, ...
    return per, np.cumsum(table.reshape(-1)), table.sum(axis=1)


def _draw(cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Indices ``i`` with ``cdf[i - 1] <= u < cdf[i]`` (inverse-cdf sampling)."""
    return np.minimum(np.searchsorted(cdf, u, side="right"), cdf.shape[0] - 1)


def _entropies(
    p0: np.ndarray,
    n_clusters: int,
    successor: np.ndarray,
    stickiness: float,
    cluster_mass: np.ndarray,
) -> tuple[float, float]:
    """``H(next | cluster of previous)`` and ``H(next)``, in nats, from the definition."""
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
