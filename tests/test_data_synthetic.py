"""softreg.data.synthetic: the NumPy-only make_classification and train_test_split.

The generator is checked against its own specification everywhere, and against
scikit-learn's generator (same construction, different random stream) where scikit-learn
is installed.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from softreg.data.synthetic import make_classification, train_test_split

# The example softreg re-builds; n_clusters_per_class=1 because sklearn's default of 2 would
# need 3 * 2 = 6 hypercube vertices in 2 dimensions, which do not exist (see the validation
# test below).
EXAMPLE = dict(
    n_samples=1000,
    n_features=2,
    n_informative=2,
    n_redundant=0,
    n_classes=3,
    n_clusters_per_class=1,
)
SEEDS = range(10)


def sklearn_make_classification(*, seed: int, **kwargs):
    datasets = pytest.importorskip("sklearn.datasets")
    return datasets.make_classification(**kwargs, random_state=seed)


# --- A tiny multinomial logistic regression, written out here so the test owns every step ----


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)  # stable: exp of values <= 0
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


def one_hot(y: np.ndarray, k: int) -> np.ndarray:
    return (y[:, None] == np.arange(k)[None, :]).astype(np.float64)


def heldout_accuracy(X, y, k: int, *, seed: int, lr: float = 0.5, steps: int = 400) -> float:
    """Full-batch gradient descent on the mean cross-entropy; accuracy on the 20% split."""
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_fraction=0.2, seed=seed)
    X_train = X_train.astype(np.float64)
    W = np.zeros((X.shape[1], k))
    b = np.zeros(k)
    Y = one_hot(y_train, k)
    for _ in range(steps):
        grad = (softmax(X_train @ W + b) - Y) / len(y_train)  # d(mean CE)/d(logits)
        W -= lr * (X_train.T @ grad)
        b -= lr * grad.sum(axis=0)
    return float(np.mean(np.argmax(X_test @ W + b, axis=1) == y_test))


# --- Shapes, dtypes, seeds -------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, shape",
    [
        ({}, (100, 20)),
        (EXAMPLE, (1000, 2)),
        (dict(n_samples=7, n_features=5, n_informative=3, n_redundant=1, n_classes=4), (7, 5)),
    ],
)
def test_shapes_and_dtypes(kwargs, shape):
    X, y = make_classification(**kwargs)
    assert X.shape == shape and X.dtype == np.float32
    assert y.shape == shape[:1] and y.dtype == np.int64
    assert np.isfinite(X).all()
    assert set(np.unique(y)) <= set(range(kwargs.get("n_classes", 2)))


def test_same_seed_same_data_other_seed_other_data():
    X0, y0 = make_classification(**EXAMPLE, seed=3)
    X1, y1 = make_classification(**EXAMPLE, seed=3)
    X2, y2 = make_classification(**EXAMPLE, seed=4)
    np.testing.assert_array_equal(X0, X1)
    np.testing.assert_array_equal(y0, y1)
    assert not np.array_equal(X0, X2)
    assert not np.array_equal(y0, y2)


def test_generator_seed_and_no_global_random_state():
    saved = np.random.get_state()  # noqa: NPY002 - the legacy global state, on purpose
    try:
        np.random.seed(987_654)  # noqa: NPY002 - a state the generator would not set itself
        before = np.random.get_state()  # noqa: NPY002
        X_int, y_int = make_classification(**EXAMPLE, seed=5)
        X_gen, y_gen = make_classification(**EXAMPLE, seed=np.random.default_rng(5))
        after = np.random.get_state()  # noqa: NPY002
    finally:
        np.random.set_state(saved)  # noqa: NPY002
    np.testing.assert_array_equal(X_int, X_gen)
    np.testing.assert_array_equal(y_int, y_gen)
    assert before[0] == after[0] and np.array_equal(before[1], after[1])
    assert before[2:] == after[2:]


# --- Class balance ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
def test_every_class_present_and_balanced(seed):
    _, y = make_classification(**EXAMPLE, seed=seed)  # default flip_y=0.01
    counts = np.bincount(y, minlength=3)
    assert len(counts) == 3
    assert counts.min() >= 300 and counts.max() <= 367  # 1000/3 give or take the flips


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        (EXAMPLE, [334, 333, 333]),
        # 10 samples over 2 classes x 2 clusters: 3, 3, 2, 2 -> class 0 gets clusters 0 and 2
        (dict(n_samples=10, n_features=4, n_classes=2, n_clusters_per_class=2), [5, 5]),
        # 11 over 3 x 2 clusters: 2, 2, 2, 2, 2, 1 -> class k gets clusters k and k + 3
        (dict(n_samples=11, n_features=6, n_informative=3, n_classes=3), [4, 4, 3]),
    ],
)
def test_class_sizes_without_flips(kwargs, expected):
    _, y = make_classification(**kwargs, flip_y=0.0)
    np.testing.assert_array_equal(np.bincount(y, minlength=len(expected)), expected)


@pytest.mark.parametrize(
    "kwargs",
    [
        EXAMPLE,
        dict(n_samples=11, n_features=6, n_informative=3, n_classes=3),
        dict(
            n_samples=203,
            n_features=6,
            n_informative=3,
            n_redundant=1,
            n_classes=5,
            n_clusters_per_class=1,
        ),
    ],
)
def test_class_sizes_match_sklearn(kwargs):
    _, y_sk = sklearn_make_classification(**kwargs, flip_y=0.0, seed=0)
    _, y = make_classification(**kwargs, flip_y=0.0, seed=0)
    k = kwargs["n_classes"]
    np.testing.assert_array_equal(np.bincount(y, minlength=k), np.bincount(y_sk, minlength=k))


def test_flip_y_replaces_that_fraction_of_labels_at_random():
    kwargs = dict(EXAMPLE, n_samples=3000, shuffle=False)
    X_clean, y_clean = make_classification(**kwargs, flip_y=0.0, seed=2)
    X_flip, y_flip = make_classification(**kwargs, flip_y=0.5, seed=2)
    np.testing.assert_array_equal(X_clean, X_flip)  # flips come after X is drawn
    # Half the labels are redrawn uniformly from 3 classes: 2/3 of those change.
    assert np.mean(y_clean != y_flip) == pytest.approx(0.5 * 2 / 3, abs=0.04)
    assert np.bincount(y_flip[y_clean != y_flip], minlength=3).min() > 250  # any class


# --- Structure -------------------------------------------------------------------------------


def test_unshuffled_layout_informative_redundant_noise():
    n_inf, n_red, n_noise = 3, 2, 4
    X, y = make_classification(
        4000,
        n_inf + n_red + n_noise,
        n_informative=n_inf,
        n_redundant=n_red,
        n_classes=2,
        n_clusters_per_class=2,
        flip_y=0.0,
        shuffle=False,
        seed=1,
    )
    # Rows come cluster by cluster; cluster k belongs to class k % n_classes.
    np.testing.assert_array_equal(y, np.repeat([0, 1, 0, 1], 1000))
    X = X.astype(np.float64)
    informative = X[:, :n_inf]
    # Redundant columns are exact linear combinations of the informative ones ...
    coef = np.linalg.lstsq(informative, X[:, n_inf : n_inf + n_red], rcond=None)[0]
    np.testing.assert_allclose(informative @ coef, X[:, n_inf : n_inf + n_red], atol=1e-4)
    # ... noise columns are standard normal and unrelated to them.
    noise = X[:, n_inf + n_red :]
    np.testing.assert_allclose(noise.mean(axis=0), 0.0, atol=0.06)
    np.testing.assert_allclose(noise.std(axis=0), 1.0, atol=0.05)
    coef = np.linalg.lstsq(informative, noise, rcond=None)[0]
    assert np.all(np.var(noise - informative @ coef, axis=0) > 0.95)


@pytest.mark.parametrize("seed", SEEDS)
def test_shuffle_permutes_rows_and_columns_of_the_same_data(seed):
    kwargs = dict(n_samples=50, n_features=6, n_informative=2, n_redundant=1, seed=seed)
    X_plain, y_plain = make_classification(**kwargs, shuffle=False)
    X, y = make_classification(**kwargs, shuffle=True)
    columns = _match(X, X_plain)
    assert sorted(columns) == list(range(6))  # a permutation of the columns ...

    # ... and of the rows: the same set of samples, labels still attached.
    def samples(X, y):
        return {(*row, label) for row, label in zip(X.tolist(), y.tolist(), strict=True)}

    assert samples(X, y) == samples(X_plain[:, columns], y_plain)
    np.testing.assert_array_equal(np.sort(y), np.sort(y_plain))
    assert not np.array_equal(y, y_plain)


def _match(X, X_plain):
    """For each column of X, the column of X_plain holding the same values."""
    a, b = np.sort(X, axis=0), np.sort(X_plain, axis=0)
    return [int(np.flatnonzero((b == a[:, [j]]).all(axis=0))[0]) for j in range(X.shape[1])]


def test_shuffle_moves_columns_for_some_seed():
    moved = []
    for seed in SEEDS:
        kwargs = dict(n_samples=50, n_features=6, n_informative=2, n_redundant=1, seed=seed)
        X, _ = make_classification(**kwargs, shuffle=True)
        X_plain, _ = make_classification(**kwargs, shuffle=False)
        moved.append(_match(X, X_plain) != list(range(6)))
    assert sum(moved) >= 5


def test_rank_is_informative_plus_noise():
    kwargs = dict(n_samples=500, n_features=10, n_informative=3, n_redundant=4)
    X, _ = make_classification(**kwargs, seed=0)
    assert np.linalg.matrix_rank(X.astype(np.float64), tol=1e-3) == 10 - 4


def test_rank_matches_sklearn():
    kwargs = dict(n_samples=500, n_features=10, n_informative=3, n_redundant=4)
    X_sk, _ = sklearn_make_classification(**kwargs, seed=0)
    X, _ = make_classification(**kwargs, seed=0)
    rank = np.linalg.matrix_rank
    assert rank(X.astype(np.float64), tol=1e-3) == rank(X_sk, tol=1e-3)


def test_class_means_sit_on_distinct_hypercube_vertices():
    class_sep = 10.0
    X, y = make_classification(
        8000,
        3,
        n_informative=3,
        n_redundant=0,
        n_classes=8,
        n_clusters_per_class=1,
        class_sep=class_sep,
        flip_y=0.0,
        seed=0,
    )
    means = np.stack([X[y == c].mean(axis=0) for c in range(8)]) / class_sep
    np.testing.assert_allclose(np.abs(means), 1.0, atol=0.05)
    assert len({tuple(v) for v in np.sign(means)}) == 8  # all 8 corners, none shared


def class_mean_distances_and_spread(X, y, k):
    means = np.stack([X[y == c].mean(axis=0) for c in range(k)])
    distances = sorted(
        np.linalg.norm(means[i] - means[j]) for i, j in itertools.combinations(range(k), 2)
    )
    spread = np.stack([X[y == c].std(axis=0) for c in range(k)])
    return np.array(distances), spread


def test_class_means_and_spread_of_the_example():
    kwargs = dict(EXAMPLE, flip_y=0.0)
    spreads = []
    for seed in SEEDS:
        X, y = make_classification(**kwargs, seed=seed)
        distances, spread = class_mean_distances_and_spread(X, y, 3)
        # 3 corners of the square [-1, 1]**2: two sides and one diagonal.
        np.testing.assert_allclose(distances, [2.0, 2.0, 2 * np.sqrt(2)], atol=0.25)
        spreads.append(spread)
    # Per-cluster std is the norm of a column of a 2x2 uniform(-1, 1) matrix: mean ~0.77.
    assert 0.6 < np.mean(spreads) < 0.95


def test_class_statistics_comparable_to_sklearn():
    kwargs = dict(EXAMPLE, flip_y=0.0)
    ours, theirs = [], []
    for seed in SEEDS:
        X_sk, y_sk = sklearn_make_classification(**kwargs, seed=seed)
        X, y = make_classification(**kwargs, seed=seed)
        d_sk, s_sk = class_mean_distances_and_spread(X_sk, y_sk, 3)
        d, s = class_mean_distances_and_spread(X, y, 3)
        np.testing.assert_allclose(d, d_sk, atol=0.4)  # same geometry: sides and diagonal
        ours.append(s)
        theirs.append(s_sk)
    assert np.mean(ours) == pytest.approx(np.mean(theirs), abs=0.15)
    assert np.std(ours) == pytest.approx(np.std(theirs), abs=0.15)


# --- Separability: the example's experiment --------------------------------------------------


def test_example_is_learnable_by_softmax_regression():
    accuracies = [
        heldout_accuracy(*make_classification(**EXAMPLE, seed=s), 3, seed=s) for s in SEEDS
    ]
    assert min(accuracies) > 0.7  # chance is 1/3
    assert np.mean(accuracies) > 0.8


def test_without_class_separation_accuracy_is_near_chance():
    accuracies = [
        heldout_accuracy(*make_classification(**dict(EXAMPLE, class_sep=0.0), seed=s), 3, seed=s)
        for s in range(3)
    ]
    assert np.mean(accuracies) < 0.55


def test_example_accuracy_comparable_to_sklearn_generator():
    ours = [heldout_accuracy(*make_classification(**EXAMPLE, seed=s), 3, seed=s) for s in SEEDS]
    theirs = [
        heldout_accuracy(*sklearn_make_classification(**EXAMPLE, seed=s), 3, seed=s) for s in SEEDS
    ]
    assert min(ours) > 0.7 and min(theirs) > 0.7
    assert np.mean(ours) == pytest.approx(np.mean(theirs), abs=0.08)


# --- The one-hot broadcasting bug of the original example ------------------------------------


@pytest.mark.parametrize("n, k", [(5, 3), (1000, 3), (3, 3)])
def test_one_hot_broadcasting(n, k):
    y = np.arange(n) % k
    if n != k:
        # The original (y == np.arange(k)) compares (n,) with (k,): no broadcast exists.
        with pytest.raises(ValueError, match="broadcast"):
            _ = y == np.arange(k)
    else:
        # With n == k it "works" silently but gives an (n,) elementwise comparison.
        wrong = y == np.arange(k)
        assert wrong.shape == (n,) and wrong.shape != (n, k)
    correct = y[:, None] == np.arange(k)[None, :]
    assert correct.shape == (n, k)
    np.testing.assert_array_equal(correct.sum(axis=1), 1)
    np.testing.assert_array_equal(np.argmax(correct, axis=1), y)
    np.testing.assert_array_equal(one_hot(y, k), correct)


# --- Argument validation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_samples=0), r"n_samples must be >= 1, got 0"),
        (dict(n_features=0, n_informative=0, n_redundant=0), r"n_features must be >= 1, got 0"),
        (dict(n_informative=0), r"n_informative must be >= 1, got 0"),
        (dict(n_redundant=-1), r"n_redundant must be >= 0, got -1"),
        (dict(n_classes=0), r"n_classes must be >= 1, got 0"),
        (dict(n_clusters_per_class=0), r"n_clusters_per_class must be >= 1, got 0"),
        (
            dict(n_features=3, n_informative=2, n_redundant=2),
            r"n_informative \+ n_redundant must be <= n_features.*n_informative=2.*"
            r"n_redundant=2.*n_features=3",
        ),
        (
            dict(n_features=4, n_informative=2, n_redundant=0, n_classes=5, n_clusters_per_class=1),
            r"n_classes \* n_clusters_per_class must be <= 2\*\*n_informative.*n_classes=5"
            r".*= 5 > 2\*\*n_informative = 2\*\*2",
        ),
        # The original example's call: 3 classes x 2 clusters (the default) > 2**2 vertices.
        (
            dict(EXAMPLE, n_clusters_per_class=2),
            r"n_clusters_per_class=2 = 6 > 2\*\*n_informative = 2\*\*2",
        ),
        (dict(flip_y=1.5), r"flip_y must be in \[0, 1\], got 1.5"),
        (dict(flip_y=-0.1), r"flip_y must be in \[0, 1\], got -0.1"),
        (dict(class_sep=float("inf")), r"class_sep must be finite, got inf"),
    ],
)
def test_make_classification_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_classification(**kwargs)


def test_sklearn_also_rejects_the_original_example_call():
    with pytest.raises(ValueError, match="n_clusters_per_class"):
        sklearn_make_classification(**dict(EXAMPLE, n_clusters_per_class=2), seed=0)


def test_make_classification_rejects_non_integer_counts():
    with pytest.raises(TypeError, match=r"n_samples must be an integer, got 10.5"):
        make_classification(10.5)


def test_many_informative_features_still_give_distinct_vertices():
    X, y = make_classification(
        64,
        40,
        n_informative=35,
        n_redundant=0,
        n_classes=4,
        n_clusters_per_class=16,
        class_sep=50.0,
        flip_y=0.0,
        shuffle=False,
        seed=0,
    )
    assert X.shape == (64, 40)
    # One sample per cluster, each near its own vertex: the sign patterns are all distinct.
    assert len({tuple(r) for r in np.sign(X[:, :35])}) == 64


# --- train_test_split ------------------------------------------------------------------------


def test_split_sizes_partition_and_pairing():
    X = np.arange(2000, dtype=np.float32).reshape(1000, 2)
    y = np.arange(1000, dtype=np.int64)
    X_train, X_test, y_train, y_test = train_test_split(X, y, seed=0)
    assert X_train.shape == (800, 2) and X_test.shape == (200, 2)
    assert y_train.shape == (800,) and y_test.shape == (200,)
    np.testing.assert_array_equal(np.sort(np.concatenate([y_train, y_test])), y)
    np.testing.assert_array_equal(X_train[:, 0], 2 * y_train)  # rows stay paired
    np.testing.assert_array_equal(X_test[:, 0], 2 * y_test)
    assert not np.array_equal(y_test, np.arange(800, 1000))  # shuffled, not the tail


@pytest.mark.parametrize("n, fraction, n_test", [(1000, 0.2, 200), (10, 0.7, 7), (10, 0.25, 3)])
def test_split_test_size(n, fraction, n_test):
    X, y = np.zeros((n, 3)), np.zeros(n)
    _, X_test, _, y_test = train_test_split(X, y, test_fraction=fraction)
    assert len(X_test) == len(y_test) == n_test


def test_split_is_seeded():
    X, y = make_classification(**EXAMPLE)
    a = train_test_split(X, y, seed=1)
    b = train_test_split(X, y, seed=np.random.default_rng(1))
    c = train_test_split(X, y, seed=2)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[1], c[1])


@pytest.mark.parametrize(
    "n_y, fraction, match",
    [
        (9, 0.2, r"same number of rows.*X.shape=\(10, 2\).*y.shape=\(9,\)"),
        (10, 0.0, r"test_fraction must be in \(0, 1\), got 0.0"),
        (10, 1.0, r"test_fraction must be in \(0, 1\), got 1.0"),
        (10, float("nan"), r"test_fraction must be in \(0, 1\), got nan"),
        (10, 0.95, r"test_fraction=0.95 of n=10 rows leaves 10 test and 0 training rows"),
    ],
)
def test_split_rejects_bad_arguments(n_y, fraction, match):
    with pytest.raises(ValueError, match=match):
        train_test_split(np.zeros((10, 2)), np.zeros(n_y), test_fraction=fraction)
