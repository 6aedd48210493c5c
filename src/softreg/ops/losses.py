"""Cross-entropy losses from logits, log-probabilities, probabilities or soft targets.

Shapes: ``logits`` and ``probs`` are ``(n_samples, n_classes)``, ``y`` is ``(n_samples,)`` of
integer class indices. :func:`cross_entropy` and :func:`nll_loss` follow PyTorch's functions
of those names (class weights, label smoothing, reductions). The book's
:func:`cross_entropy_naive` is kept for teaching: it takes ``log`` of a probability that may
have underflowed to 0.
"""

from __future__ import annotations

import numbers
from types import ModuleType
from typing import Any

from softreg.backend import device, get_namespace
from softreg.ops.labels import check_labels, one_hot, pick
from softreg.ops.softmax import log_softmax

# What reduction= accepts: the mean or sum over the batch, or the per-example losses.
REDUCTIONS = ("mean", "sum", "none")


def cross_entropy_naive(probs: Any, y: Any, /, *, xp: ModuleType | None = None) -> Any:
    """Return the book's loss, ``-log(y_hat[range(len(y_hat)), y])``, per example.

    Takes probabilities, not logits: a probability that underflowed to 0 gives ``inf``.

    Parameters
    ----------
    probs : array, shape (n_samples, n_classes)
        Probabilities.
    y : array of int, shape (n_samples,)
        Class indices.
    xp : module, optional
        The array namespace of the arrays (found from them when None).

    Returns
    -------
    array, shape (n_samples,)
        The losses.

    Raises
    ------
    ValueError
        A label out of range.
    """
    xp = get_namespace(probs, y, xp=xp)
    check_labels(y, probs.shape[1], xp=xp)
    return -xp.log(pick(probs, y, xp=xp))


def nll_loss(
    log_probs: Any,
    y: Any,
    /,
    *,
    weight: Any = None,
    reduction: str = "mean",
    xp: ModuleType | None = None,
) -> Any:
    """Return the negative log-likelihood of log-probabilities, as PyTorch's ``nll_loss``.

    With ``weight`` each example's loss is scaled by the weight of its label,
    ``-weight[y_n] * log_probs[n, y_n]``; "mean" is then the weighted mean,
    ``sum(loss) / sum(weight[y])``, so rescaling every weight leaves it unchanged.

    Parameters
    ----------
    log_probs : array, shape (n_samples, n_classes)
        Log-probabilities.
    y : array of int, shape (n_samples,)
        Class indices.
    weight : array or sequence, shape (n_classes,), optional
        Class weights, finite and >= 0.
    reduction : {"mean", "sum", "none"}, default "mean"
        How the per-example losses are combined.
    xp : module, optional
        The array namespace of the arrays (found from them when None).

    Returns
    -------
    array
        ``(n_samples,)`` for ``reduction="none"``, else 0-d.

    Raises
    ------
    ValueError
        A label out of range, an unknown reduction, or bad class weights.
    """
    xp = get_namespace(log_probs, y, xp=xp)
    _check_reduction(reduction)
    num_classes = log_probs.shape[1]
    check_labels(y, num_classes, xp=xp)
    if weight is None:
        return _reduce(-pick(log_probs, y, xp=xp), reduction, xp)
    return _weighted_nll(log_probs, y, _class_weight(weight, log_probs, xp), reduction, xp)


def cross_entropy(
    logits: Any,
    y: Any,
    /,
    *,
    weight: Any = None,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
    xp: ModuleType | None = None,
) -> Any:
    """Return the cross-entropy of raw scores, as PyTorch's ``cross_entropy`` with indices.

    ``nll_loss(log_softmax(logits), y)``, so ``log`` never sees an underflowed probability.
    ``label_smoothing`` ``s`` mixes in the loss against the uniform target, as PyTorch does:
    ``(1 - s) * nll + (s / k) * smooth`` with ``smooth_n = -sum_c weight_c *
    log_softmax(logits)[n, c]``, reduced like ``nll`` (its "mean" also divides by
    ``sum(weight[y])``, not by ``n``). With ``s = 0`` the smoothing term is not computed at
    all, so a ``-inf`` logit off the label still gives a finite loss.

    Parameters
    ----------
    logits : array, shape (n_samples, n_classes)
        Raw scores.
    y : array of int, shape (n_samples,)
        Class indices.
    weight : array or sequence, shape (n_classes,), optional
        Class weights, as in :func:`nll_loss`.
    label_smoothing : float, default 0.0
        ``s`` in [0, 1].
    reduction : {"mean", "sum", "none"}, default "mean"
        How the per-example losses are combined.
    xp : module, optional
        The array namespace of the arrays (found from them when None).

    Returns
    -------
    array
        ``(n_samples,)`` for ``reduction="none"``, else 0-d.

    Raises
    ------
    ValueError
        A label out of range, an unknown reduction, bad class weights, or ``label_smoothing``
        outside [0, 1].
    """
    xp = get_namespace(logits, y, xp=xp)
    label_smoothing = _check_label_smoothing(label_smoothing)
    _check_reduction(reduction)
    check_labels(y, logits.shape[1], xp=xp)
    if weight is None and label_smoothing == 0.0:
        return _reduce(cross_entropy_unchecked(logits, y, xp=xp), reduction, xp)
    return _cross_entropy_general(logits, y, weight, label_smoothing, reduction, xp)


def _cross_entropy_general(
    logits: Any, y: Any, weight: Any, label_smoothing: float, reduction: str, xp: ModuleType
) -> Any:
    """:func:`cross_entropy` with class weights or label smoothing (checked inputs)."""
    num_classes = logits.shape[1]
    log_probs = log_softmax(logits, axis=1, xp=xp)
    if weight is None:
        nll = _reduce(-pick(log_probs, y, xp=xp), reduction, xp)
        smooth = _reduce(-xp.sum(log_probs, axis=1), reduction, xp)
    else:
        weight = _class_weight(weight, logits, xp)
        nll = _weighted_nll(log_probs, y, weight, reduction, xp)
        if label_smoothing == 0.0:
            return nll
        smooth = -xp.sum(log_probs * weight[None, :], axis=1)
        smooth = _weighted_reduce(smooth, xp.take(weight, y, axis=0), reduction, xp)
    return (1 - label_smoothing) * nll + smooth * (label_smoothing / num_classes)


def _weighted_nll(log_probs: Any, y: Any, weight: Any, reduction: str, xp: ModuleType) -> Any:
    """Return the class-weighted negative log-likelihood, reduced."""
    weight_y = xp.take(weight, y, axis=0)
    return _weighted_reduce(-pick(log_probs, y, xp=xp) * weight_y, weight_y, reduction, xp)


def _weighted_reduce(losses: Any, weight_y: Any, reduction: str, xp: ModuleType) -> Any:
    """Like :func:`_reduce`, but "mean" divides by the labels' total weight.

    As PyTorch does: 0/0 = nan when every label weighs 0.
    """
    if reduction == "mean":
        return xp.sum(losses) / xp.sum(weight_y)
    return _reduce(losses, reduction, xp)


def _class_weight(weight: Any, like: Any, xp: ModuleType) -> Any:
    """``weight`` as a checked ``(n_classes,)`` array of ``like``'s dtype.

    PyTorch would refuse another dtype; casting is friendlier. A Python sequence is accepted
    too.
    """
    num_classes = like.shape[1]
    if isinstance(weight, (list, tuple)):
        weight = xp.asarray(weight, dtype=like.dtype, device=device(like))
    elif weight.dtype != like.dtype:
        weight = xp.astype(weight, like.dtype)
    if weight.ndim != 1 or weight.shape[0] != num_classes:
        raise ValueError(
            f"weight must be 1-D with one entry per class ({num_classes}), "
            f"got shape {tuple(weight.shape)}"
        )
    # Checked after the cast: a float64 weight may overflow to inf in float32.
    if not bool(xp.all(xp.isfinite(weight))):
        raise ValueError("weight must be finite, got an inf or nan entry")
    if not bool(xp.all(weight >= 0)):
        raise ValueError(f"weight must be non-negative, got {float(xp.min(weight))}")
    return weight


def _check_label_smoothing(label_smoothing: Any) -> float:
    """Return ``label_smoothing`` as a float in [0, 1].

    PyTorch lets nan through (and then ignores it): refuse it here.
    """
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, numbers.Real):
        raise ValueError(f"label_smoothing must be a float in [0, 1], got {label_smoothing!r}")
    value = float(label_smoothing)
    if not 0.0 <= value <= 1.0:  # false for nan
        raise ValueError(f"label_smoothing must be a float in [0, 1], got {value}")
    return value


def cross_entropy_unchecked(logits: Any, y: Any, /, *, xp: ModuleType | None = None) -> Any:
    """Return per-example cross-entropy of logits, without the label range check.

    ``-log_softmax(logits)[range(n), y]``: for hot paths (and jit-compiled ones, where labels
    are not concrete values) over data whose labels were checked once where they entered.

    Parameters
    ----------
    logits : array, shape (n_samples, n_classes)
        Raw scores.
    y : array of int, shape (n_samples,)
        Class indices in ``[0, n_classes)`` (not checked).
    xp : module, optional
        The array namespace of the arrays (found from them when None).

    Returns
    -------
    array, shape (n_samples,)
        The losses.
    """
    xp = get_namespace(logits, y, xp=xp)
    return -pick(log_softmax(logits, axis=1, xp=xp), y, xp=xp)


def cross_entropy_soft(
    logits: Any, targets: Any, /, *, reduction: str = "mean", xp: ModuleType | None = None
) -> Any:
    """Return cross-entropy from its definition, against soft targets.

    ``-sum_c targets[n, c] * log_softmax(logits)[n, c]``, for soft labels (label smoothing,
    distillation, mixed-up examples) that index picking cannot express. It reads all
    ``n * k`` entries, so for hard labels :func:`cross_entropy` is cheaper. A zero target
    contributes 0 even against a ``-inf`` logit (``0 * log 0 = 0``, the definition's
    convention); ``torch.nn.functional.cross_entropy`` gives nan there.

    Parameters
    ----------
    logits : array, shape (n_samples, n_classes)
        Raw scores.
    targets : array, shape (n_samples, n_classes)
        Each row a probability vector: finite, >= 0, summing to 1 (checked).
    reduction : {"mean", "sum", "none"}, default "mean"
        How the per-example losses are combined.
    xp : module, optional
        The array namespace of the arrays (found from them when None).

    Returns
    -------
    array
        ``(n_samples,)`` for ``reduction="none"``, else 0-d.

    Raises
    ------
    ValueError
        Targets of another shape or not probability vectors, or an unknown reduction.
    """
    xp = get_namespace(logits, targets, xp=xp)
    _check_reduction(reduction)
    targets = _soft_targets(targets, logits, xp)
    log_probs = log_softmax(logits, axis=1, xp=xp)
    # Zero the log-probability first, not the product: 0 * -inf is nan (and a NumPy warning).
    log_probs = xp.where(targets == 0, xp.zeros_like(log_probs), log_probs)
    return _reduce(-xp.sum(targets * log_probs, axis=1), reduction, xp)


def _soft_targets(targets: Any, logits: Any, xp: ModuleType) -> Any:
    """``targets`` as ``logits``' dtype, refused unless every row is a probability vector.

    Finite, >= 0, summing to 1 within ``sqrt(eps)`` of the dtype: rounding, not mistakes.
    """
    if targets.ndim != 2 or tuple(targets.shape) != tuple(logits.shape):
        raise ValueError(
            f"targets must have the logits' shape {tuple(logits.shape)}, got {tuple(targets.shape)}"
        )
    if targets.dtype != logits.dtype:
        targets = xp.astype(targets, logits.dtype)
    if targets.shape[0] == 0:
        return targets
    if not bool(xp.all(xp.isfinite(targets))):
        raise ValueError("targets must be finite, got an inf or nan entry")
    if not bool(xp.all(targets >= 0)):
        raise ValueError(f"targets must be non-negative, got {float(xp.min(targets))}")
    tol = float(xp.finfo(logits.dtype).eps) ** 0.5
    worst = float(xp.max(xp.abs(xp.sum(targets, axis=1) - 1)))
    if worst > tol:
        raise ValueError(
            f"each row of targets must sum to 1 (within {tol:.2g}); a row is off by {worst:.3g}"
        )
    return targets


def smooth_labels(
    y: Any,
    num_classes: int,
    smoothing: float,
    /,
    *,
    dtype: Any = None,
    xp: ModuleType | None = None,
) -> Any:
    """Return PyTorch's label-smoothing target ``(1 - s) * one_hot(y) + s / k``.

    With :func:`cross_entropy_soft` it gives ``cross_entropy(..., label_smoothing=s)``.

    Parameters
    ----------
    y : array of int, shape (n_samples,)
        Class indices.
    num_classes : int
        ``k``.
    smoothing : float
        ``s`` in [0, 1].
    dtype : dtype, optional
        Of the result (default float32).
    xp : module, optional
        The array namespace of ``y`` (found from it when None).

    Returns
    -------
    array, shape (n_samples, num_classes)
        Each row a probability vector.

    Raises
    ------
    ValueError
        ``smoothing`` outside [0, 1], or a label out of range.
    """
    xp = get_namespace(y, xp=xp)
    s = _check_label_smoothing(smoothing)
    check_labels(y, num_classes, xp=xp)
    return one_hot(y, num_classes, dtype=dtype, xp=xp) * (1 - s) + s / num_classes


def _check_reduction(reduction: str) -> None:
    """Refuse a reduction not in :data:`REDUCTIONS`."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _reduce(losses: Any, reduction: str, xp: ModuleType) -> Any:
    """Per-example losses combined as ``reduction`` asks."""
    if reduction == "none":
        return losses
    if reduction == "sum":
        return xp.sum(losses)
    if reduction == "mean":
        return xp.mean(losses)
    raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
