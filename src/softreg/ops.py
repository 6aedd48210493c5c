"""The chapter's math: softmax, log-softmax, cross-entropy and accuracy.

Every function takes arrays of one array-API namespace and an optional keyword ``xp``;
nothing here imports NumPy. Shapes: ``logits`` and ``probs`` are ``(n_samples, n_classes)``,
``y`` is ``(n_samples,)`` of integer class indices.

The book's naive versions are kept, under their own names, because the chapter teaches with
them: :func:`softmax_naive` overflows for a logit of 100 in float32 and
:func:`cross_entropy_naive` takes ``log`` of a probability that may have underflowed to 0.
Training uses :func:`cross_entropy_with_grad`, which works from logits through log-sum-exp.
"""

from __future__ import annotations

import numbers
from typing import Any

from softreg.backend import device, get_namespace, indexes_pairs_in_place, rows_last

REDUCTIONS = ("mean", "sum", "none")


def softmax_naive(x: Any, /, *, xp: Any = None) -> Any:
    """The book's softmax, ``exp(X) / exp(X).sum(1, keepdims=True)``: overflows, for teaching."""
    xp = get_namespace(x, xp=xp)
    x_exp = xp.exp(x)
    return x_exp / xp.sum(x_exp, axis=1, keepdims=True)


def softmax(x: Any, /, *, axis: int = -1, xp: Any = None) -> Any:
    """Stable softmax: subtracting the row maximum leaves the result unchanged but keeps
    every ``exp`` argument <= 0, so nothing overflows and the largest term is exactly 1.
    """
    xp = get_namespace(x, xp=xp)
    x_exp = xp.exp(x - xp.max(x, axis=axis, keepdims=True))
    return x_exp / xp.sum(x_exp, axis=axis, keepdims=True)


def logsumexp(x: Any, /, *, axis: int = -1, keepdims: bool = False, xp: Any = None) -> Any:
    """``log(sum(exp(x)))`` along ``axis`` without overflow or ``log(0)`` for finite input."""
    xp = get_namespace(x, xp=xp)
    x_max = _finite_max(x, axis, xp)
    out = xp.log(xp.sum(xp.exp(x - x_max), axis=axis, keepdims=True)) + x_max
    return out if keepdims else xp.squeeze(out, axis=axis)


def log_softmax(x: Any, /, *, axis: int = -1, xp: Any = None) -> Any:
    """``log(softmax(x))`` computed as ``(x - max) - log(sum(exp(x - max)))``: finite wherever
    ``x`` is. Subtracting the log-sum last keeps the large common offset out of the rounding
    (``x - logsumexp(x)`` loses digits when every score is large).
    """
    xp = get_namespace(x, xp=xp)
    shifted = x - _finite_max(x, axis, xp)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))


def _finite_max(x: Any, axis: int, xp: Any) -> Any:
    """Row maxima (keepdims) to shift by. A row of all -inf has max -inf and x - max = nan;
    shift such rows by 0 instead, so the result is log(0) = -inf, as torch gives.
    """
    x_max = xp.max(x, axis=axis, keepdims=True)
    return xp.where(xp.isfinite(x_max), x_max, xp.zeros_like(x_max))


def one_hot(y: Any, num_classes: int, /, *, dtype: Any = None, xp: Any = None) -> Any:
    """``(n_samples, num_classes)`` indicator matrix of integer labels ``y``."""
    xp = get_namespace(y, xp=xp)
    return xp.astype(_label_mask(y, num_classes, xp), dtype if dtype is not None else xp.float32)


def pick(probs: Any, y: Any, /, *, xp: Any = None) -> Any:
    """``probs[range(n), y]``: the entry of each row at its label, shape ``(n_samples,)``."""
    xp = get_namespace(probs, y, xp=xp)
    # where, not a product with one_hot: 0 * -inf would be nan for a -inf log-probability.
    hits = _label_mask(y, probs.shape[1], xp)
    return xp.sum(xp.where(hits, probs, xp.zeros_like(probs)), axis=1)


def _label_mask(y: Any, num_classes: int, xp: Any) -> Any:
    """``(n_samples, num_classes)`` booleans, True where the column is the row's label."""
    return y[:, None] == xp.arange(num_classes, device=device(y))[None, :]


def cross_entropy_naive(probs: Any, y: Any, /, *, xp: Any = None) -> Any:
    """The book's loss, ``-log(y_hat[range(len(y_hat)), y])``, per example.

    Takes probabilities, not logits: a probability that underflowed to 0 gives ``inf``.
    """
    xp = get_namespace(probs, y, xp=xp)
    check_labels(y, probs.shape[1], xp=xp)
    return -xp.log(pick(probs, y, xp=xp))


def nll_loss(
    log_probs: Any, y: Any, /, *, weight: Any = None, reduction: str = "mean", xp: Any = None
) -> Any:
    """Negative log-likelihood of log-probabilities, as ``torch.nn.functional.nll_loss``.

    ``log_probs`` is ``(n, k)``, ``y`` is ``(n,)``. ``weight`` (``(k,)``, finite, >= 0) scales
    each example's loss by the weight of its label, ``-weight[y_n] * log_probs[n, y_n]``;
    "mean" is then the weighted mean, ``sum(loss) / sum(weight[y])``, so rescaling every
    weight leaves it unchanged. Returns ``(n,)`` for ``reduction="none"``, else a 0-d array.
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
    xp: Any = None,
) -> Any:
    """Cross-entropy of raw scores, as ``torch.nn.functional.cross_entropy`` with class-index
    targets: ``nll_loss(log_softmax(logits), y)``, so ``log`` never sees an underflowed
    probability. ``logits`` is ``(n, k)``, ``y`` is ``(n,)``; ``weight`` is as in
    :func:`nll_loss`.

    ``label_smoothing`` ``s`` in [0, 1] mixes in the loss against the uniform target, as
    PyTorch does: ``(1 - s) * nll + (s / k) * smooth`` with ``smooth_n = -sum_c weight_c *
    log_softmax(logits)[n, c]``, reduced like ``nll`` (its "mean" also divides by
    ``sum(weight[y])``, not by ``n``). With ``s = 0`` the smoothing term is not computed at
    all, so a ``-inf`` logit off the label still gives a finite loss.
    """
    xp = get_namespace(logits, y, xp=xp)
    label_smoothing = _check_label_smoothing(label_smoothing)
    _check_reduction(reduction)
    num_classes = logits.shape[1]
    check_labels(y, num_classes, xp=xp)
    if weight is None and label_smoothing == 0.0:
        return _reduce(cross_entropy_unchecked(logits, y, xp=xp), reduction, xp)
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


def _weighted_nll(log_probs: Any, y: Any, weight: Any, reduction: str, xp: Any) -> Any:
    weight_y = xp.take(weight, y, axis=0)
    return _weighted_reduce(-pick(log_probs, y, xp=xp) * weight_y, weight_y, reduction, xp)


def _weighted_reduce(losses: Any, weight_y: Any, reduction: str, xp: Any) -> Any:
    """Like :func:`_reduce`, but "mean" divides by the labels' total weight, as PyTorch does
    (0/0 = nan when every label weighs 0).
    """
    if reduction == "mean":
        return xp.sum(losses) / xp.sum(weight_y)
    return _reduce(losses, reduction, xp)


def _class_weight(weight: Any, like: Any, xp: Any) -> Any:
    """``weight`` as a checked ``(n_classes,)`` array of ``like``'s dtype (PyTorch would refuse
    another dtype; casting is friendlier). A Python sequence is accepted too.
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
    """A float in [0, 1]. PyTorch lets nan through (and then ignores it): refuse it here."""
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, numbers.Real):
        raise ValueError(f"label_smoothing must be a float in [0, 1], got {label_smoothing!r}")
    value = float(label_smoothing)
    if not 0.0 <= value <= 1.0:  # false for nan
        raise ValueError(f"label_smoothing must be a float in [0, 1], got {value}")
    return value


def cross_entropy_unchecked(logits: Any, y: Any, /, *, xp: Any = None) -> Any:
    """Per-example cross-entropy of logits, ``-log_softmax(logits)[range(n), y]``, without the
    label range check: for hot paths (and jit-compiled ones, where labels are not concrete
    values) over data whose labels were checked once where they entered.
    """
    xp = get_namespace(logits, y, xp=xp)
    return -pick(log_softmax(logits, axis=1, xp=xp), y, xp=xp)


def cross_entropy_soft(
    logits: Any, targets: Any, /, *, reduction: str = "mean", xp: Any = None
) -> Any:
    """Cross-entropy from its definition, ``-sum_c targets[n, c] * log_softmax(logits)[n, c]``,
    for soft labels (label smoothing, distillation, mixed-up examples) that index picking
    cannot express. ``logits`` and ``targets`` are ``(n, k)``; each row of ``targets`` is a
    probability vector (checked). Returns ``(n,)`` for ``reduction="none"``, else a 0-d array.

    It reads all ``n * k`` entries, so for hard labels :func:`cross_entropy` is cheaper.
    A zero target contributes 0 even against a ``-inf`` logit (``0 * log 0 = 0``, the
    definition's convention); ``torch.nn.functional.cross_entropy`` gives nan there.
    """
    xp = get_namespace(logits, targets, xp=xp)
    _check_reduction(reduction)
    targets = _soft_targets(targets, logits, xp)
    log_probs = log_softmax(logits, axis=1, xp=xp)
    # Zero the log-probability first, not the product: 0 * -inf is nan (and a NumPy warning).
    log_probs = xp.where(targets == 0, xp.zeros_like(log_probs), log_probs)
    return _reduce(-xp.sum(targets * log_probs, axis=1), reduction, xp)


def _soft_targets(targets: Any, logits: Any, xp: Any) -> Any:
    """``targets`` as ``logits``' dtype, refused unless every row is a probability vector
    (finite, >= 0, summing to 1 within ``sqrt(eps)`` of the dtype: rounding, not mistakes).
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
    y: Any, num_classes: int, smoothing: float, /, *, dtype: Any = None, xp: Any = None
) -> Any:
    """PyTorch's label-smoothing target ``(1 - s) * one_hot(y) + s / k``, ``(n, k)``: with
    :func:`cross_entropy_soft` it gives ``cross_entropy(..., label_smoothing=s)``.
    """
    xp = get_namespace(y, xp=xp)
    s = _check_label_smoothing(smoothing)
    check_labels(y, num_classes, xp=xp)
    return one_hot(y, num_classes, dtype=dtype, xp=xp) * (1 - s) + s / num_classes


def cross_entropy_with_grad(
    logits: Any, y: Any, /, *, weight: Any = None, xp: Any = None
) -> tuple[Any, Any]:
    """Per-example losses and the gradient of their *mean* with respect to ``logits``.

    One forward pass serves both: with ``p = softmax(logits)``,
    ``d mean(loss) / d logits = (p - one_hot(y)) / n``. Returns ``(losses (n,), dlogits (n, k))``.
    ``weight`` (``(n,)``, optional) scales each example's loss and gradient: the losses are
    ``weight * loss`` and the gradient is that of their sum divided by ``n``. Labels are not
    range-checked here (this is the training hot path; data is validated once).
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
    logits: Any, y: Any, /, *, weight: Any = None, xp: Any = None
) -> tuple[Any, Any]:
    """:func:`cross_entropy_with_grad` the book's way: :func:`softmax_naive`, then
    ``-log(p_y)``. The same numbers while ``exp`` fits in the dtype; a logit above ~88 in
    float32 makes it ``inf / inf = nan`` (the chapter's exercise), so training on it shows
    what divergence looks like.
    """
    xp = get_namespace(logits, y, xp=xp)
    n, k = logits.shape
    probs = softmax_naive(logits, xp=xp)
    target = one_hot(y, k, dtype=logits.dtype, xp=xp)
    losses = -xp.log(xp.sum(probs * target, axis=1))
    return _weighted(losses, probs - target, weight, n)


def _weighted(losses: Any, dlosses: Any, weight: Any, n: int) -> tuple[Any, Any]:
    """Per-example losses and their gradient (``dlosses``, of the sum) as those of the mean,
    each example scaled by ``weight`` when given.
    """
    if weight is None:
        return losses, dlosses / n
    return losses * weight, dlosses * (weight[:, None] / n)


LOSS_GRADS = {"stable": cross_entropy_with_grad, "naive": cross_entropy_with_grad_naive}


def count_correct(scores: Any, y: Any, /, *, xp: Any = None) -> Any:
    """Number of rows whose arg-max equals the label (the book's ``accuracy``), a 0-d array.

    Works on logits or probabilities alike: softmax does not move the arg-max.
    """
    xp = get_namespace(scores, y, xp=xp)
    # int32 counts: JAX has no int64 unless x64 mode is on, and 2**31 rows is far away.
    return xp.sum(xp.astype(xp.argmax(scores, axis=1) == y, xp.int32))


def accuracy(scores: Any, y: Any, /, *, xp: Any = None) -> float:
    """Fraction of rows whose arg-max equals the label."""
    if y.shape[0] == 0:
        raise ValueError("accuracy of an empty batch is undefined")
    return float(count_correct(scores, y, xp=xp)) / y.shape[0]


def _check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _reduce(losses: Any, reduction: str, xp: Any) -> Any:
    if reduction == "none":
        return losses
    if reduction == "sum":
        return xp.sum(losses)
    if reduction == "mean":
        return xp.mean(losses)
    raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def check_labels(y: Any, num_classes: int, /, *, xp: Any = None) -> None:
    """Out-of-range labels would silently pick nothing (a loss of 0): refuse them."""
    xp = get_namespace(y, xp=xp)
    if y.ndim != 1:
        raise ValueError(f"labels must be 1-D (n_samples,), got shape {tuple(y.shape)}")
    if y.shape[0] == 0:
        return
    low, high = int(xp.min(y)), int(xp.max(y))
    if low < 0 or high >= num_classes:
        raise ValueError(f"label {low if low < 0 else high} outside [0, {num_classes})")
