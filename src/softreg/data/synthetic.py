"""Synthetic classification data, NumPy only.

The example softreg grew from trains softmax regression on
``sklearn.datasets.make_classification(n_samples=1000, n_features=2, n_informative=2,
n_redundant=0, n_classes=3)`` with an 80/20 split. softreg's core depends on NumPy alone, so
this module re-implements that generator (and the split) on an explicit
:class:`numpy.random.Generator`, never the global random state.

How :func:`make_classification` builds the data: each class is ``n_clusters_per_class``
Gaussian clusters. The cluster centres are distinct random vertices of a hypercube of side
``2 * class_sep`` (centred on the origin) in the ``n_informative``-dimensional informative
subspace; each cluster's points are standard normal draws multiplied by its own random
matrix with entries uniform in [-1, 1] (a random covariance). ``n_redundant`` features are
random linear combinations of the informative ones, the remaining ``n_features -
n_informative - n_redundant`` are standard normal noise. Samples are split as evenly as
possible over the clusters (so over the classes), then a fraction ``flip_y`` of the labels
is replaced by a uniformly random class (which may be the same one). With ``shuffle`` the
samples and the features are permuted; without it, the columns are informative, redundant,
noise in that order and the rows come cluster by cluster (cluster ``k`` belongs to class
``k % n_classes``).

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

from softreg.data.labelled import TabularDataset

__all__ = ["make_classification", "synthetic_dataset", "train_test_split"]

SeedLike = int | np.random.Generator


def make_classification(  # noqa: PLR0913 - scikit-learn's signature, name for name
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
    """Generate a random classification problem as ``sklearn.datasets.make_classification``.

    How the data are built is described in :mod:`softreg.data.synthetic`.

    Parameters
    ----------
    n_samples, n_features : int, default 100 and 20
        Number of samples (>= 1) and of features (>= ``n_informative + n_redundant``).
    n_informative, n_redundant : int, default 2
        Informative features, the subspace the clusters live in (>= 1), and random linear
        combinations of them (>= 0).
    n_classes, n_clusters_per_class : int, default 2
        Classes, and Gaussian clusters per class, each >= 1; one hypercube vertex per
        cluster, so their product must be at most ``2**n_informative``.
    class_sep : float, default 1.0
        Half the side of the hypercube, finite: larger values make the task easier.
    flip_y : float, default 0.01
        Fraction of labels redrawn uniformly at random, in [0, 1].
    shuffle : bool, default True
        Permute the samples and the features.
    seed : int or numpy.random.Generator, default 0
        Seeds a new generator, or is the generator drawn from (it is then advanced).

    Returns
    -------
    X : numpy.ndarray
        float32 ``(n_samples, n_features)``.
    y : numpy.ndarray
        int64 ``(n_samples,)``, labels in ``range(n_classes)``.

    Raises
    ------
    TypeError
        A count is not an integer.
    ValueError
        A value is out of its range above.
    """
    shape = _checked_shape(
        n_samples, n_features, n_informative, n_redundant, n_classes, n_clusters_per_class
    )
    class_sep, flip_y = _checked_class_sep(class_sep), _checked_flip_y(flip_y)
    rng = np.random.default_rng(seed)
    X, y = _clustered_samples(shape, class_sep, rng)
    _flip_labels(y, flip_y, shape.n_classes, rng)
    if shuffle:
        X, y = _shuffled(X, y, rng)
    return X.astype(np.float32), y


@dataclass(frozen=True)
class _Shape:
    """The validated counts of a :func:`make_classification` call."""

    n_samples: int
    n_features: int
    n_informative: int
    n_redundant: int
    n_classes: int
    n_clusters_per_class: int

    @property
    def n_clusters(self) -> int:
        return self.n_classes * self.n_clusters_per_class


def _checked_shape(
    n_samples: object,
    n_features: object,
    n_informative: object,
    n_redundant: object,
    n_classes: object,
    n_clusters_per_class: object,
) -> _Shape:
    """Check the counts (in this order) and how they fit together."""
    shape = _Shape(
        n_samples=_int_param("n_samples", n_samples, 1),
        n_features=_int_param("n_features", n_features, 1),
        n_informative=_int_param("n_informative", n_informative, 1),
        n_redundant=_int_param("n_redundant", n_redundant, 0),
        n_classes=_int_param("n_classes", n_classes, 1),
        n_clusters_per_class=_int_param("n_clusters_per_class", n_clusters_per_class, 1),
    )
    if shape.n_informative + shape.n_redundant > shape.n_features:
        raise ValueError(
            f"make_classification: n_informative + n_redundant must be <= n_features, got "
            f"n_informative={shape.n_informative} + n_redundant={shape.n_redundant} > "
            f"n_features={shape.n_features}"
        )
    # Compare through bit_length rather than 2**n_informative, which may be astronomically big.
    if (shape.n_clusters - 1).bit_length() > shape.n_informative:
        raise ValueError(
            f"make_classification: n_classes * n_clusters_per_class must be <= "
            f"2**n_informative (one hypercube vertex per cluster), got "
            f"n_classes={shape.n_classes} * n_clusters_per_class="
            f"{shape.n_clusters_per_class} = {shape.n_clusters} > "
            f"2**n_informative = 2**{shape.n_informative}"
        )
    return shape


def _int_param(name: str, value: object, minimum: int) -> int:
    """Return ``value`` as an int >= ``minimum``, or raise TypeError / ValueError."""
    try:
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"make_classification: {name} must be an integer, got {value!r}") from None
    if number < minimum:
        raise ValueError(f"make_classification: {name} must be >= {minimum}, got {number}")
    return number


def _checked_class_sep(class_sep: float) -> float:
    """Return ``class_sep`` as a float after checking that it is finite."""
    class_sep = float(class_sep)
    if not math.isfinite(class_sep):
        raise ValueError(f"make_classification: class_sep must be finite, got {class_sep}")
    return class_sep


def _checked_flip_y(flip_y: float) -> float:
    """Return ``flip_y`` as a float after checking that it lies in [0, 1]."""
    flip_y = float(flip_y)
    if not 0.0 <= flip_y <= 1.0:  # also rejects NaN
        raise ValueError(f"make_classification: flip_y must be in [0, 1], got {flip_y}")
    return flip_y


def _clustered_samples(
    shape: _Shape, class_sep: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Draw float64 ``X`` (n_samples, n_features) and int64 ``y`` (n_samples,), unshuffled."""
    n_informative, stop = shape.n_informative, shape.n_informative + shape.n_redundant
    # Cluster sizes: even split, the remainder going one each to the first clusters.
    sizes = np.full(shape.n_clusters, shape.n_samples // shape.n_clusters, dtype=np.int64)
    sizes[: shape.n_samples - int(sizes.sum())] += 1
    bounds = np.concatenate([[0], np.cumsum(sizes)])

    vertices = _hypercube_vertices(shape.n_clusters, n_informative, rng)
    centroids = vertices * (2 * class_sep) - class_sep
    X = np.empty((shape.n_samples, shape.n_features), dtype=np.float64)
    y = np.empty(shape.n_samples, dtype=np.int64)
    informative = rng.standard_normal((shape.n_samples, n_informative))
    for k in range(shape.n_clusters):
        rows = slice(bounds[k], bounds[k + 1])
        A = rng.uniform(-1.0, 1.0, size=(n_informative, n_informative))  # its covariance
        informative[rows] = informative[rows] @ A + centroids[k]
        y[rows] = k % shape.n_classes
    X[:, :n_informative] = informative
    if shape.n_redundant:
        B = rng.uniform(-1.0, 1.0, size=(n_informative, shape.n_redundant))
        X[:, n_informative:stop] = informative @ B
    X[:, stop:] = rng.standard_normal((shape.n_samples, shape.n_features - stop))
    return X, y


def _flip_labels(y: np.ndarray, flip_y: float, n_classes: int, rng: np.random.Generator) -> None:
    """Redraw a random fraction ``flip_y`` of the labels ``y`` (in place) uniformly."""
    flip = rng.random(y.shape[0]) < flip_y
    y[flip] = rng.integers(0, n_classes, size=int(flip.sum()))


def _shuffled(
    X: np.ndarray, y: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Permute the rows of ``X`` and ``y`` together, then the columns of ``X``."""
    order = rng.permutation(X.shape[0])
    X, y = X[order], y[order]
    return X[:, rng.permutation(X.shape[1])], y


def _hypercube_vertices(n_vertices: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``n_vertices`` distinct random vertices of {0, 1}**dim, float64 (n_vertices, dim)."""
    low = min(dim, 30)  # distinct codes are drawn for the first 30 coordinates only
    codes = rng.choice(2**low, size=n_vertices, replace=False, shuffle=True)
    bits = (codes[:, None] >> np.arange(low)[None, :]) & 1
    if dim > low:  # more coordinates than needed to keep the vertices distinct: any bits do
        bits = np.hstack([bits, rng.integers(0, 2, size=(n_vertices, dim - low))])
    return bits.astype(np.float64)


def train_test_split(
    X: np.ndarray, y: np.ndarray, *, test_fraction: float = 0.2, seed: SeedLike = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Shuffle the rows with a seed and split them into a training and a test part.

    Rows stay paired. The test part has ``ceil(test_fraction * n_samples)`` rows (200 of
    1000 by default, as scikit-learn counts); both parts must be non-empty.

    Parameters
    ----------
    X : array_like
        ``(n_samples, ...)``, e.g. ``(n_samples, n_features)``.
    y : array_like
        ``(n_samples, ...)``, e.g. labels ``(n_samples,)``.
    test_fraction : float, default 0.2
        Fraction of the rows for the test part, in (0, 1).
    seed : int or numpy.random.Generator, default 0
        Seeds a new generator, or is the generator to draw the permutation from.

    Returns
    -------
    X_train, X_test, y_train, y_test : numpy.ndarray
        The rows of ``X`` and ``y`` in the shuffled order, test part
        ``(n_test, ...)``, training part ``(n_samples - n_test, ...)``.

    Raises
    ------
    ValueError
        ``X`` or ``y`` has no sample axis, their numbers of rows differ,
        ``test_fraction`` is outside (0, 1), or it leaves a part empty.
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


def synthetic_dataset() -> TabularDataset:
    """Return the fixed example data: 1000 points, 2 features, 3 classes, split 80/20.

    ``make_classification(**SYNTHETIC_RECIPE, seed=SYNTHETIC_SEED)`` split by
    :func:`train_test_split` with the same seed: every call returns the same numbers.

    Returns
    -------
    TabularDataset
        Named ``"synthetic"``, classes ``"class 0"`` to ``"class 2"``; float32 features
        ``(800, 2)`` and ``(200, 2)``, int64 labels ``(800,)`` and ``(200,)``.
    """
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
