"""The chapter's math: softmax, log-softmax, cross-entropy and accuracy.

Every function takes arrays of one array-API namespace and an optional keyword ``xp``;
nothing here imports NumPy. Shapes: ``logits`` and ``probs`` are ``(n_samples, n_classes)``,
``y`` is ``(n_samples,)`` of integer class indices.

The book's naive versions are kept, under their own names, because the chapter teaches with
them: :func:`softmax_naive` overflows for a logit of 100 in float32 and
:func:`cross_entropy_naive` takes ``log`` of a probability that may have underflowed to 0.
Training uses :func:`cross_entropy_with_grad`, which works from logits through log-sum-exp.

The functions live in four modules, all importable from here:

- :mod:`softreg.ops.softmax`: :func:`softmax`, :func:`softmax_naive`, :func:`logsumexp`,
  :func:`log_softmax`
- :mod:`softreg.ops.labels`: :func:`one_hot`, :func:`pick`, :func:`count_correct`,
  :func:`accuracy`, :func:`check_labels`
- :mod:`softreg.ops.losses`: :func:`cross_entropy`, :func:`nll_loss`,
  :func:`cross_entropy_soft`, :func:`smooth_labels`, :func:`cross_entropy_unchecked`,
  :func:`cross_entropy_naive`
- :mod:`softreg.ops.gradients`: :func:`cross_entropy_with_grad`,
  :func:`cross_entropy_with_grad_naive` (the loss and its gradient in one call)
"""

from __future__ import annotations

from softreg.ops.gradients import (
    LOSS_GRADS,
    cross_entropy_with_grad,
    cross_entropy_with_grad_naive,
)
from softreg.ops.labels import accuracy, check_labels, count_correct, one_hot, pick
from softreg.ops.losses import (
    REDUCTIONS,
    cross_entropy,
    cross_entropy_naive,
    cross_entropy_soft,
    cross_entropy_unchecked,
    nll_loss,
    smooth_labels,
)
from softreg.ops.softmax import log_softmax, logsumexp, softmax, softmax_naive

__all__ = [
    "LOSS_GRADS",
    "REDUCTIONS",
    "accuracy",
    "check_labels",
    "count_correct",
    "cross_entropy",
    "cross_entropy_naive",
    "cross_entropy_soft",
    "cross_entropy_unchecked",
    "cross_entropy_with_grad",
    "cross_entropy_with_grad_naive",
    "log_softmax",
    "logsumexp",
    "nll_loss",
    "one_hot",
    "pick",
    "smooth_labels",
    "softmax",
    "softmax_naive",
]
