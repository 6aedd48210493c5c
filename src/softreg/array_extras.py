"""What softreg's computations need beyond the array API standard, library by library.

In the spirit of array-api-extra: :func:`segment_sum`, the gradient of a gather, which the
standard lacks; which namespaces allow item assignment and NumPy's pair indexing, so that a
computation can take the faster path where it exists; and :func:`rows_last`, a NumPy memory
layout that makes row reductions faster.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from softreg.backend import device, get_namespace


def rows_last(x: Any) -> Any:
    """Return ``x`` laid out for reductions along its last axis.

    A 2-D NumPy array in column-major order, where ``max``/``sum``/``argmax`` over the 10
    scores of 256 rows run three times as fast (each reduction becomes a vectorised pass
    over contiguous columns); an array of any other library as it is (they choose their own
    layouts). Values are unchanged.

    Parameters
    ----------
    x : array, shape (n_samples, n_classes)
        Scores, say.

    Returns
    -------
    array, shape (n_samples, n_classes)
        ``x``'s values.
    """
    if isinstance(x, np.ndarray) and x.ndim == 2:
        return np.asfortranarray(x)
    return x


# Namespaces whose arrays cannot be assigned into (``x[:, a:b] = ...``): build results by
# concatenation there instead.
_IMMUTABLE = ("jax.numpy", "softreg._tensorflow_xp")


# Namespaces whose arrays take NumPy's advanced indexing, ``x[rows, cols]`` with integer arrays
# (the standard leaves it out, and array-api-strict refuses it), in place (``x[rows, cols] -= 1``).
_INDEXES_PAIRS = ("numpy", "array_api_compat.numpy", "array_api_compat.torch")


def indexes_pairs_in_place(xp: ModuleType) -> bool:
    """Return whether ``x[rows, cols]`` with integer arrays reads and updates arrays of ``xp``.

    Parameters
    ----------
    xp : module
        An array namespace.

    Returns
    -------
    bool
        True for NumPy and PyTorch.
    """
    return xp.__name__ in _INDEXES_PAIRS


def supports_item_assignment(xp: ModuleType) -> bool:
    """Return whether arrays of ``xp`` take ``x[key] = value``.

    The standard has it; JAX and TensorFlow arrays are immutable.

    Parameters
    ----------
    xp : module
        An array namespace.

    Returns
    -------
    bool
        False for JAX and TensorFlow.
    """
    return xp.__name__ not in _IMMUTABLE


def segment_sum(
    values: Any, index: Any, num_segments: int, /, *, xp: ModuleType | None = None
) -> Any:
    """Return the sums of the rows of ``values`` that share an entry of ``index``.

    Row ``i`` of the result is the sum of ``values[k]`` over every ``k`` with
    ``index[k] == i``. It is the adjoint of ``xp.take(x, index, axis=0)``, the gradient of a
    gather, which the array API standard lacks; each library has its own
    (``jax.ops.segment_sum``, TensorFlow's ``unsorted_segment_sum``).

    Parameters
    ----------
    values : array, shape (k, ...)
        The rows to add up.
    index : array of int, shape (k,)
        The segment of each row, in ``[0, num_segments)``.
    num_segments : int
        The number of result rows.
    xp : module, optional
        The array namespace of the arrays (found from them when None).

    Returns
    -------
    array, shape (num_segments, ...)
        The sums; zeros for a segment no row names.
    """
    xp = get_namespace(values, index, xp=xp)
    name = xp.__name__
    shape = (num_segments, *values.shape[1:])
    if xp is np:
        out = np.zeros(shape, dtype=values.dtype)
        np.add.at(out, index, values)
        return out
    if name == "array_api_compat.torch":
        out = xp.zeros(shape, dtype=values.dtype, device=device(values))
        return out.index_add_(0, xp.astype(index, xp.int64), values)
    if name == "jax.numpy":
        return xp.zeros(shape, dtype=values.dtype).at[index].add(values)
    if name == "softreg._tensorflow_xp":
        import tensorflow as tf

        return tf.math.unsorted_segment_sum(values, index, num_segments)
    # Any other namespace (the strict reference): a product with the (m, k) indicator matrix.
    rows = xp.arange(num_segments, dtype=index.dtype, device=device(index))
    return xp.astype(rows[:, None] == index[None, :], values.dtype) @ values
