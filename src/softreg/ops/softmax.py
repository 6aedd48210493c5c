"""Softmax, log-sum-exp and log-softmax: the stable versions, and the book's naive one.

The book's :func:`softmax_naive` is kept, under its own name, because the chapter teaches with
it: it overflows for a logit of 100 in float32. The others subtract each row's maximum first,
so ``exp`` never sees a positive argument.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from softreg.backend import get_namespace


def softmax_naive(x: Any, /, *, xp: ModuleType | None = None) -> Any:
    """Return the book's softmax, ``exp(X) / exp(X).sum(1, keepdims=True)``.

    For teaching: it overflows (``inf / inf = nan``) once a logit passes ~88 in float32.

    Parameters
    ----------
    x : array, shape (n_samples, n_classes)
        Logits.
    xp : module, optional
        The array namespace of ``x`` (found from it when None).

    Returns
    -------
    array, shape (n_samples, n_classes)
        Probabilities, each row summing to 1 while nothing overflows.
    """
    xp = get_namespace(x, xp=xp)
    x_exp = xp.exp(x)
    return x_exp / xp.sum(x_exp, axis=1, keepdims=True)


def softmax(x: Any, /, *, axis: int = -1, xp: ModuleType | None = None) -> Any:
    """Return the stable softmax of ``x`` along ``axis``.

    Subtracting the row maximum leaves the result unchanged but keeps every ``exp`` argument
    <= 0, so nothing overflows and the largest term is exactly 1.

    Parameters
    ----------
    x : array
        Logits, such as ``(n_samples, n_classes)``.
    axis : int, default -1
        The axis that sums to 1.
    xp : module, optional
        The array namespace of ``x`` (found from it when None).

    Returns
    -------
    array
        Probabilities of ``x``'s shape.
    """
    xp = get_namespace(x, xp=xp)
    x_exp = xp.exp(x - xp.max(x, axis=axis, keepdims=True))
    return x_exp / xp.sum(x_exp, axis=axis, keepdims=True)


def logsumexp(
    x: Any, /, *, axis: int = -1, keepdims: bool = False, xp: ModuleType | None = None
) -> Any:
    """Return ``log(sum(exp(x)))`` along ``axis``, without overflow or ``log(0)``.

    Finite for finite input; a slice of all ``-inf`` gives ``-inf``.

    Parameters
    ----------
    x : array
        Logits, such as ``(n_samples, n_classes)``.
    axis : int, default -1
        The axis to reduce.
    keepdims : bool, default False
        Keep the reduced axis, with length 1.
    xp : module, optional
        The array namespace of ``x`` (found from it when None).

    Returns
    -------
    array
        ``x``'s shape without ``axis`` (or with length 1 there), such as ``(n_samples,)``.
    """
    xp = get_namespace(x, xp=xp)
    x_max = _finite_max(x, axis, xp)
    out = xp.log(xp.sum(xp.exp(x - x_max), axis=axis, keepdims=True)) + x_max
    return out if keepdims else xp.squeeze(out, axis=axis)


def log_softmax(x: Any, /, *, axis: int = -1, xp: ModuleType | None = None) -> Any:
    """Return ``log(softmax(x))``, finite wherever ``x`` is.

    Computed as ``(x - max) - log(sum(exp(x - max)))``. Subtracting the log-sum last keeps
    the large common offset out of the rounding (``x - logsumexp(x)`` loses digits when every
    score is large).

    Parameters
    ----------
    x : array
        Logits, such as ``(n_samples, n_classes)``.
    axis : int, default -1
        The axis of the classes.
    xp : module, optional
        The array namespace of ``x`` (found from it when None).

    Returns
    -------
    array
        Log-probabilities of ``x``'s shape.
    """
    xp = get_namespace(x, xp=xp)
    shifted = x - _finite_max(x, axis, xp)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))


def _finite_max(x: Any, axis: int, xp: ModuleType) -> Any:
    """Row maxima (keepdims) to shift by.

    A row of all -inf has max -inf and x - max = nan; shift such rows by 0 instead, so the
    result is log(0) = -inf, as torch gives.
    """
    x_max = xp.max(x, axis=axis, keepdims=True)
    return xp.where(xp.isfinite(x_max), x_max, xp.zeros_like(x_max))
