"""Synthetic classification data, NumPy only.

The example softreg grew from trains softmax regression on
``sklearn.datasets.make_classification(n_samples=1000, n_features=2, n_informative=2,
n_redundant=0, n_classes=3)`` with an 80/20 split. softreg's core depends on NumPy alone, so
this module re-implements that generator (and the split) on an explicit
:class:`numpy.random.Generator`, never the global random state.

:func:`make_classification` follows scikit-learn's construction (with its defaults
``hypercube=True, shift=0.0, scale=1.0, weights=None, n_repeated=0``), so the data behave the
same way: same shapes, class sizes and per-class structure. The numbers differ from
scikit-learn's for a given seed, since the random streams differ.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass

import numpy as np

__all__ = ["TabularDataset", "make_classification", "synthetic_dataset", "train_test_split"]

SeedLike = int | np.random.Generator


def _int_param(name: str, value: object, minimum: int) -> int:
    try:
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"make_classification: {name} must be an integer, got {value!r}") from None
    if number < minimum:
        raise ValueError(f"make_classification: {name} must be >= {minimum}, got {number}")
    return number


def _hypercube_vertices(n_vertices: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """``n_vertices`` distinct random vertices of {0, 1}**dim, float64 (n_vertices, dim)."""
    low = min(dim, 30)  # distinct codes are drawn for the first 30 coordinates only
    codes = rng.choice(2**low, size=n_vertices, replace=False, shuffle=True)
    bits = (codes[:, None] >> np.arange(low)[None, :]) & 1
    if dim > low:  # more coordinates than needed to keep the vertices distinct: any bits do
        bits = np.hstack([bits, rng.integers(0, 2, size=(n_vertices, dim - low))])
    return bits.astype(np.float64)


def make_classification(
    n_samples: int = 100,
    n_features: int = 20,
    *,
    n_informative: int = 2,
    n_redundant: int = 2,
    n_classes: int = 2,
    n_clusters_per_class: int = 2,
    class_sep: float = 1.0,
    flip_y: float = 0.01,
    shuffle: bool = True,
    seed: SeedLike = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """A random n_classes-class problem, as ``sklearn.datasets.make_classification`` makes it.

    Each class is ``n_clusters_per_class`` Gaussian clusters. The cluster centres are distinct
    random vertices of a hypercube of side ``2 * class_sep`` (centred on the origin) in the
    ``n_informative``-dimensional informative subspace; each cluster's points are standard
    normal draws multiplied by its own random matrix with entries uniform in [-1, 1] (a random
    covariance). ``n_redundant`` features are random linear combinations of the informative
    ones, the remaining ``n_features - n_informative - n_redundant`` are standard normal
    noise. Samples are split as evenly as possible over the clusters (so over the classes),
    then a fraction ``flip_y`` of the labels is replaced by a uniformly random class (which
    may be the same one). With ``shuffle`` the samples and the features are permuted;
    without it, the columns are informative, redundant, noise in that order and the rows
    come cluster by cluster.

    ``seed`` is an int or a :class:`numpy.random.Generator` (which is then advanced).

    Returns ``X`` float32 (n_samples, n_features) and ``y`` int64 (n_samples,) with labels
    in ``range(n_classes)``.
    """
    n_samples = _int_param("n_samples", n_samples, 1)
    n_features = _int_param("n_features", n_features, 1)
    n_informative = _int_param("n_informative", n_informative, 1)
    n_redundant = _int_param("n_redundant", n_redundant, 0)
    n_classes = _int_param("n_classes", n_classes, 1)
    n_clusters_per_class = _int_param("n_clusters_per_class", n_clusters_per_class, 1)
    if n_informative + n_redundant > n_features:
        raise ValueError(
            f"make_classification: n_informative + n_redundant must be <= n_features, got "
            f"n_informative={n_informative} + n_redundant={n_redundant} > "
            f"n_features={n_features}"
        )
    n_clusters = n_classes * n_clusters_per_class
    # Compare through bit_length rather than 2**n_informative, which may be astronomically big.
    if (n_clusters - 1).bit_length() > n_informative:
        raise ValueError(
            f"make_classification: n_classes * n_clusters_per_class must be <= "
            f"2**n_informative (one hypercube vertex per cluster), got n_classes={n_classes} "
            f"* n_clusters_per_class={n_clusters_per_class} = {n_clusters} > "
            f"2**n_informative = 2**{n_informative}"
        )
    class_sep = float(class_sep)
    if not math.isfinite(class_sep):
        raise ValueError(f"make_classification: class_sep must be finite, got {class_sep}")
    flip_y = float(flip_y)
    if not 0.0 <= flip_y <= 1.0:  # also rejects NaN
        raise ValueError(f"make_classification: flip_y must be in [0, 1], got {flip_y}")
    rng = np.random.default_rng(seed)

    # Cluster sizes: even split, the remainder going one each to the first clusters.
    sizes = np.full(n_clusters, n_samples // n_clusters, dtype=np.int64)
    sizes[: n_samples - int(sizes.sum())] += 1
    bounds = np.concatenate([[0], np.cumsum(sizes)])

    centroids = _hypercube_vertices(n_clusters, n_informative, rng) * (2 * class_sep) - class_sep
    X = np.empty((n_samples, n_features), dtype=np.float64)
    y = np.empty(n_samples, dtype=np.int64)
    informative = rng.standard_normal((n_samples, n_informative))
    for k in range(n_clusters):
        rows = slice(bounds[k], bounds[k + 1])
        A = rng.uniform(-1.0, 1.0, size=(n_informative, n_informative))
        informative[rows] = informative[rows] @ A + centroids[k]
        y[rows] = k % n_classes
    X[:, :n_informative] = informative

    stop = n_informative + n_redundant
    if n_redundant:
        B = rng.uniform(-1.0, 1.0, size=(n_informative, n_redundant))
        X[:, n_informative:stop] = informative @ B
    X[:, stop:] = rng.standard_normal((n_samples, n_features - stop))

    flip = rng.random(n_samples) < flip_y
    y[flip] = rng.integers(0, n_classes, size=int(flip.sum()))

    if shuffle:
        order = rng.permutation(n_samples)
        X, y = X[order], y[order]
        X = X[:, rng.permutation(n_features)]
    return X.astype(np.float32), y


def train_test_split(
    X: np.ndarray, y: np.ndarray, *, test_fraction: float = 0.2, seed: SeedLike = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Shuffle the rows with ``seed`` and split: ``X_train, X_test, y_train, y_test``.

    ``X`` is (n, ...) and ``y`` is (n, ...) with the same n; rows stay paired. The test part
    has ``ceil(test_fraction * n)`` rows (200 of 1000 by default, as scikit-learn counts);
    both parts must be non-empty. ``seed`` is an int or a :class:`numpy.random.Generator`.
    """
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim == 0 or y.ndim == 0:
        raise ValueError(
            f"train_test_split: X and y must have a sample axis, got shapes {X.shape} and {y.shape}"
        )
    n = X.shape[0]
    if y.shape[0] != n:
        raise ValueError(
            f"train_test_split: X and y must have the same number of rows, got "
            f"X.shape={X.shape} and y.shape={y.shape}"
        )
    test_fraction = float(test_fraction)
    if not 0.0 < test_fraction < 1.0:  # also rejects NaN
        raise ValueError(f"train_test_split: test_fraction must be in (0, 1), got {test_fraction}")
    # The small tolerance keeps 0.7 * 10 = 7.000000000000001 from becoming 8.
    n_test = math.ceil(test_fraction * n - 1e-9)
    if not 0 < n_test < n:
        raise ValueError(
            f"train_test_split: test_fraction={test_fraction} of n={n} rows leaves "
            f"{n_test} test and {n - n_test} training rows; both must be non-empty"
        )
    order = np.random.default_rng(seed).permutation(n)
    test, train = order[:n_test], order[n_test:]
    return X[train], X[test], y[train], y[test]


# The seed's call, with n_clusters_per_class=1: its own call leaves the default of 2, which asks
# for 3 x 2 = 6 clusters on the 4 corners of a 2-D square, and scikit-learn refuses it.
SYNTHETIC_RECIPE = {
    "n_samples": 1000,
    "n_features": 2,
    "n_informative": 2,
    "n_redundant": 0,
    "n_classes": 3,
    "n_clusters_per_class": 1,
}
SYNTHETIC_SEED = 0  # the data are fixed; the training seed varies only the model


@dataclass(frozen=True, eq=False)
class TabularDataset:
    """A train/test split of feature vectors (no images): the same attributes training and
    evaluation read from an image :class:`~softreg.data.Dataset`.
    """

    name: str
    class_names: tuple[str, ...]
    X_train: np.ndarray  # float32 (n_train, n_features)
    y_train: np.ndarray  # int64 (n_train,)
    X_test: np.ndarray
    y_test: np.ndarray
    source: str
    test_images: None = None  # nothing to draw in a prediction grid

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def train_labels(self) -> np.ndarray:
        return self.y_train

    @property
    def test_labels(self) -> np.ndarray:
        return self.y_test


def synthetic_dataset() -> TabularDataset:
    """The seed's NumPy example data: 1000 points, 2 features, 3 classes, split 80/20."""
    X, y = make_classification(**SYNTHETIC_RECIPE, seed=SYNTHETIC_SEED)
    X_train, X_test, y_train, y_test = train_test_split(X, y, seed=SYNTHETIC_SEED)
    classes = SYNTHETIC_RECIPE["n_classes"]
    return TabularDataset(
        name="synthetic",
        class_names=tuple(f"class {k}" for k in range(classes)),
        X_train=X_train,
        y_train=y_train,
        X_test=X_test,
        y_test=y_test,
        source=f"make_classification({SYNTHETIC_RECIPE}, seed={SYNTHETIC_SEED})",
    )
