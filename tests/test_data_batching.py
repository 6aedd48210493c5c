"""Tests for softreg.data.batching: per-epoch permutations and minibatch slicing."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from softreg.data import epoch_permutation, minibatch_indices


def test_permutation_is_a_pure_function_of_seed_and_epoch() -> None:
    a = epoch_permutation(1000, seed=3, epoch=5)
    b = epoch_permutation(1000, seed=3, epoch=5)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.int64
    assert a.shape == (1000,)
    # The documented recipe, so a resumed run can recompute it independently.
    np.testing.assert_array_equal(a, np.random.default_rng((3, 5)).permutation(1000))


def test_permutation_differs_across_epochs_and_seeds() -> None:
    base = epoch_permutation(1000, seed=3, epoch=0)
    assert not np.array_equal(base, epoch_permutation(1000, seed=3, epoch=1))
    assert not np.array_equal(base, epoch_permutation(1000, seed=4, epoch=0))
    # (seed, epoch) is a tuple key, not a sum: (3, 1) and (4, 0) must differ too.
    assert not np.array_equal(
        epoch_permutation(1000, seed=3, epoch=1), epoch_permutation(1000, seed=4, epoch=0)
    )


@given(n=st.integers(0, 500), seed=st.integers(0, 2**32), epoch=st.integers(0, 100))
def test_permutation_covers_every_index_once(n: int, seed: int, epoch: int) -> None:
    perm = epoch_permutation(n, seed=seed, epoch=epoch)
    np.testing.assert_array_equal(np.sort(perm), np.arange(n))


def test_permutation_rejects_negative_n() -> None:
    with pytest.raises(ValueError, match="-1"):
        epoch_permutation(-1, seed=0, epoch=0)


@pytest.mark.parametrize("batch_size", [1, 7, 50, 55])
def test_minibatch_sizes(batch_size: int) -> None:
    n = 50
    batches = minibatch_indices(n, batch_size, seed=0, epoch=2)
    full, rest = divmod(n, batch_size)
    expected_sizes = [batch_size] * full + ([rest] if rest else [])
    assert [len(b) for b in batches] == expected_sizes
    assert all(b.dtype == np.int64 for b in batches)
    np.testing.assert_array_equal(np.concatenate(batches), epoch_permutation(n, seed=0, epoch=2))


@given(
    n=st.integers(0, 300),
    batch_size=st.integers(1, 400),
    seed=st.integers(0, 1000),
    epoch=st.integers(0, 1000),
)
def test_minibatches_partition_the_indices(n: int, batch_size: int, seed: int, epoch: int) -> None:
    batches = minibatch_indices(n, batch_size, seed=seed, epoch=epoch)
    assert len(batches) == -(-n // batch_size)
    assert all(len(b) == batch_size for b in batches[:-1])
    joined = np.concatenate(batches) if batches else np.empty(0, dtype=np.int64)
    np.testing.assert_array_equal(np.sort(joined), np.arange(n))


def test_minibatches_without_shuffle_are_in_order() -> None:
    batches = minibatch_indices(10, 4, seed=0, epoch=0, shuffle=False)
    assert [b.tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_minibatches_of_nothing() -> None:
    assert minibatch_indices(0, 3, seed=0, epoch=0) == []


@pytest.mark.parametrize("batch_size", [0, -4])
def test_batch_size_must_be_positive(batch_size: int) -> None:
    with pytest.raises(ValueError, match=f"batch_size must be >= 1, got {batch_size}"):
        minibatch_indices(10, batch_size, seed=0, epoch=0)


def test_batch_size_must_be_an_integer() -> None:
    with pytest.raises(TypeError):
        minibatch_indices(10, 2.5, seed=0, epoch=0)  # type: ignore[arg-type]
