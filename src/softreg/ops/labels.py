"""Integer class labels: one-hot rows, each row's entry at its label, range checks, hits.

``y`` is ``(n_samples,)`` of class indices in ``[0, n_classes)``.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from softreg.backend import device, get_namespace


def one_hot(y: Any, num_classes: int, /, *, dtype: Any = None, xp: ModuleType | None = None) -> Any:
    """Return the indicator matrix of integer labels.

    Parameters
    ----------
    y : array of int, shape (n_samples,)
        Class indices.
    num_classes : int
        The number of columns.
    dtype : dtype, optional
        Of the result (default float32).
    xp : module, optional
        The array namespace of ``y`` (found from it when None).

    Returns
    -------
    array, shape (n_samples, num_classes)
        1 where the column is the row's label, else 0.
    """
    xp = get_namespace(y, xp=xp)
    return xp.astype(_label_mask(y, num_classes, xp), dtype if dtype is not None else xp.float32)


def pick(probs: Any, y: Any, /, *, xp: ModuleType | None = None) -> Any:
    """Return ``probs[range(n), y]``: the entry of each row at its label.

    Parameters
    ----------
    probs : array, shape (n_samples, n_classes)
        Probabilities, log-probabilities or scores.
    y : array of int, shape (n_samples,)
        Class indices.
    xp : module, optional
        The array namespace of the arrays (found from them when None).

    Returns
    -------
    array, shape (n_samples,)
        The picked entries.
    """
    xp = get_namespace(probs, y, xp=xp)
    # where, not a product with one_hot: 0 * -inf would be nan for a -inf log-probability.
    hits = _label_mask(y, probs.shape[1], xp)
    return xp.sum(xp.where(hits, probs, xp.zeros_like(probs)), axis=1)


def _label_mask(y: Any, num_classes: int, xp: ModuleType) -> Any:
    """``(n_samples, num_classes)`` booleans, True where the column is the row's label."""
    return y[:, None] == xp.arange(num_classes, device=device(y))[None, :]


def count_correct(scores: Any, y: Any, /, *, xp: ModuleType | None = None) -> Any:
    """Return the number of rows whose arg-max equals the label (the book's ``accuracy``).

    Works on logits or probabilities alike: softmax does not move the arg-max.

    Parameters
    ----------
    scores : array, shape (n_samples, n_classes)
        Logits or probabilities.
    y : array of int, shape (n_samples,)
        Class indices.
    xp : module, optional
        The array namespace of the arrays (found from them when None).

    Returns
    -------
    0-d array of int32
        The count, on the arrays' device.
    """
    xp = get_namespace(scores, y, xp=xp)
    # int32 counts: JAX has no int64 unless x64 mode is on, and 2**31 rows is far away.
    return xp.sum(xp.astype(xp.argmax(scores, axis=1) == y, xp.int32))


def accuracy(scores: Any, y: Any, /, *, xp: ModuleType | None = None) -> float:
    """Return the fraction of rows whose arg-max equals the label.

    Parameters
    ----------
    scores : array, shape (n_samples, n_classes)
        Logits or probabilities.
    y : array of int, shape (n_samples,)
        Class indices.
    xp : module, optional
        The array namespace of the arrays (found from them when None).

    Returns
    -------
    float
        The accuracy, in [0, 1].

    Raises
    ------
    ValueError
        No rows.
    """
    if y.shape[0] == 0:
        raise ValueError("accuracy of an empty batch is undefined")
    return float(count_correct(scores, y, xp=xp)) / y.shape[0]


def check_labels(y: Any, num_classes: int, /, *, xp: ModuleType | None = None) -> None:
    """Refuse out-of-range labels, which would silently pick nothing (a loss of 0).

    Parameters
    ----------
    y : array of int, shape (n_samples,)
        Class indices.
    num_classes : int
        Labels must lie in ``[0, num_classes)``.
    xp : module, optional
        The array namespace of ``y`` (found from it when None).

    Raises
    ------
    ValueError
        ``y`` is not 1-D, or a label is out of range (the message names it).
    """
    xp = get_namespace(y, xp=xp)
    if y.ndim != 1:
        raise ValueError(f"labels must be 1-D (n_samples,), got shape {tuple(y.shape)}")
    if y.shape[0] == 0:
        return
    low, high = int(xp.min(y)), int(xp.max(y))
    if low < 0 or high >= num_classes:
        raise ValueError(f"label {low if low < 0 else high} outside [0, {num_classes})")
