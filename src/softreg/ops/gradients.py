"""Softmax cross-entropy and its gradient with respect to the logits, in one call.

One forward pass serves both: with ``p = softmax(logits)``, the gradient of the mean loss is
``(p - one_hot(y)) / n``. Training uses :func:`cross_entropy_with_grad`, which works from the
logits through log-sum-exp; :func:`cross_entropy_with_grad_naive` is the book's way, kept to
show what divergence looks like.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from softreg.array_extras import indexes_pairs_in_place, rows_last
from softreg.backend import device, get_namespace
from softreg.ops.labels import one_hot
from softreg.ops.softmax import softmax_naive


def cross_entropy_with_grad(
    logits: Any, y: Any, /, *, weight: Any = None, xp: ModuleType | None = None
) -> tuple[Any, Any]:
    """Return per-example losses and the gradient of their *mean* with respect to ``logits``.

    One forward pass serves both: with ``p = softmax(logits)``,
    ``d mean(loss) / d logits = (p - one_hot(y)) / n``. Labels are not range-checked here
    (this is the training hot path; data is validated once).

    Parameters
    ----------
    logits : array, shape (n_samples, n_classes)
        Raw scores.
    y : array of int, shape (n_samples,)
        Class indices in ``[0, n_classes)`` (not checked).
    weight : array, shape (n_samples,), optional
        Scales each example's loss and gradient.
    xp : module, optional
        The array namespace of the arrays (found from them when None).

    Returns
    -------
    losses : array, shape (n_samples,)
        Cross-entropy per example, times ``weight`` when given.
    dlogits : array, shape (n_samples, n_classes)
        The gradient of ``sum(losses) / n_samples``.
    """
    xp = get_namespace(logits, y, xp=xp)
    n, k = logits.shape
    logits = rows_last(logits)
    shifted = logits - xp.max(logits, axis=1, keepdims=True)
    exp = xp.exp(shifted)
    sum_exp = xp.sum(exp, axis=1, keepdims=True)
    # -log p_y = log(sum exp) - shifted_y; the row max cancels.
    if indexes_pairs_in_place(xp):
        # Each row's label entry picked by index and the gradient formed in place: the same
        # numbers as the one-hot form below in half the calls (a step's largest fixed cost).
        rows = xp.arange(n, device=device(y))
        losses = xp.log(sum_exp[:, 0]) - shifted[rows, y]
        exp /= sum_exp
        exp[rows, y] -= 1
        return _weighted(losses, exp, weight, n)
    target = one_hot(y, k, dtype=logits.dtype, xp=xp)
    losses = xp.log(sum_exp[:, 0]) - xp.sum(shifted * target, axis=1)
    return _weighted(losses, exp / sum_exp - target, weight, n)


def cross_entropy_with_grad_naive(
    logits: Any, y: Any, /, *, weight: Any = None, xp: ModuleType | None = None
) -> tuple[Any, Any]:
    """Return :func:`cross_entropy_with_grad`'s results computed the book's way.

    :func:`~softreg.ops.softmax_naive`, then ``-log(p_y)``. The same numbers while ``exp``
    fits in the dtype; a logit above ~88 in float32 makes it ``inf / inf = nan`` (the
    chapter's exercise), so training on it shows what divergence looks like.

    Parameters
    ----------
    logits : array, shape (n_samples, n_classes)
        Raw scores.
    y : array of int, shape (n_samples,)
        Class indices (not checked).
    weight : array, shape (n_samples,), optional
        Scales each example's loss and gradient.
    xp : module, optional
        The array namespace of the arrays (found from them when None).

    Returns
    -------
    losses : array, shape (n_samples,)
        Cross-entropy per example, times ``weight`` when given.
    dlogits : array, shape (n_samples, n_classes)
        The gradient of ``sum(losses) / n_samples``.
    """
    xp = get_namespace(logits, y, xp=xp)
    n, k = logits.shape
    probs = softmax_naive(logits, xp=xp)
    target = one_hot(y, k, dtype=logits.dtype, xp=xp)
    losses = -xp.log(xp.sum(probs * target, axis=1))
    return _weighted(losses, probs - target, weight, n)


def _weighted(losses: Any, dlosses: Any, weight: Any, n: int) -> tuple[Any, Any]:
    """Turn losses and ``dlosses`` (the gradient of their sum) into those of the mean.

    Each example is scaled by ``weight`` when given.
    """
    if weight is None:
        return losses, dlosses / n
    return losses * weight, dlosses * (weight[:, None] / n)


# The loss-and-gradient function of each TrainConfig.softmax.
LOSS_GRADS = {"stable": cross_entropy_with_grad, "naive": cross_entropy_with_grad_naive}
