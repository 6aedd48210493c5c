"""Sampled softmax: the loss over each row's label and ``S`` drawn classes, log-Q corrected.

Instead of all ``n_classes`` logits, each row is scored against its label and ``S`` classes
drawn from a proposal ``q`` shared by the batch (:mod:`softreg.sampling` makes the draws),
their logits lowered by ``log(S * q)``, the expected number of times each is drawn (the log-Q
correction). It approximates; :mod:`softreg.vocab.chunked` computes the exact loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from softreg import array_extras
from softreg.backend import get_namespace
from softreg.vocab.chunked import target_logits

__all__ = ["SampledClasses", "sampled_softmax_with_grad"]


@dataclass(frozen=True)
class SampledClasses:
    """The classes drawn for one step of sampled softmax, and what they were drawn from.

    Parameters
    ----------
    classes : array
        ``(S,)`` class indices, drawn independently *with replacement* from the proposal
        ``q`` and shared by every row (see :func:`softreg.sampling.draw_classes`).
    log_q : array
        ``log q``, ``(n_classes,)``: the proposal's log-probabilities.
    """

    classes: Any
    log_q: Any


def sampled_softmax_with_grad(
    h: Any,
    W: Any,
    b: Any,
    y: Any,
    sample: SampledClasses,
    /,
    *,
    weight: Any = None,
    remove_accidental_hits: bool = True,
    xp: Any = None,
) -> tuple[Any, Any, Any, Any]:
    """Return sampled-softmax losses and their mean's gradients, from ``n * (S + 1)`` logits.

    Row ``i`` is scored against its label and the ``S`` draws, each draw's logit lowered by
    ``log(S * q)``. Then ``exp(loss)`` is an unbiased estimate of the exact
    ``exp(cross-entropy)``: the draws' corrected exponentials add up, on average, to the sum
    over every class but the label. That needs the label left out of its own row's draws
    (``remove_accidental_hits``); keeping them inflates the estimate by 1 on average. The
    loss itself is biased low (``log`` is concave) and the bias shrinks as ``S`` grows.
    Labels are not range-checked (the training hot path).

    Parameters
    ----------
    h, W, b, y : array
        As for :func:`~softreg.vocab.linear_cross_entropy`.
    sample : SampledClasses
        This step's draws ``(S,)`` and the proposal's ``log q`` ``(n_classes,)``.
    weight : array or None, default None
        Per-example weights, ``(n_samples,)``, scaling each example's loss and gradient.
    remove_accidental_hits : bool, default True
        Leave each row's label out of its draws.
    xp : namespace or None, default None
        The arrays' namespace; None: found from ``h``, ``W`` and ``y``.

    Returns
    -------
    losses : array
        ``(n_samples,)``, each times its weight when ``weight`` is given.
    dh : array
        ``(n_samples, n_features)``.
    dW : array
        ``(n_features, n_classes)``: dense, nonzero only in the label and sampled columns.
    db : array or None
        ``(n_classes,)``, likewise; None when ``b`` is None.
    """
    xp = get_namespace(h, W, y, xp=xp)
    W_sampled = xp.take(W, sample.classes, axis=1)  # (d, S)
    z = _corrected_logits(h, W_sampled, b, y, sample, remove_accidental_hits, xp)  # (n, S)
    z_true = target_logits(h, W, b, y, xp=xp)  # (n,), not corrected: it is never sampled
    losses, g_true, g_sampled = _loss_terms(z_true, z, weight, xp)
    dh = g_true[:, None] * xp.take(W, y, axis=1).T + g_sampled @ W_sampled.T
    # W's columns y_i get g_true_i * h_i and the sampled ones (h.T @ g_sampled)[:, j]; a
    # class that appears more than once gets the sum (segment_sum, the adjoint of take).
    columns = xp.concat([xp.astype(y, sample.classes.dtype), sample.classes])
    k = W.shape[1]
    dW = _sum_by_class(g_true[:, None] * h, (h.T @ g_sampled).T, columns, k, xp).T
    db = None if b is None else _sum_by_class(g_true, xp.sum(g_sampled, axis=0), columns, k, xp)
    return (losses if weight is None else losses * weight), dh, dW, db


def _corrected_logits(
    h: Any,
    W_sampled: Any,
    b: Any,
    y: Any,
    sample: SampledClasses,
    remove_accidental_hits: bool,
    xp: Any,
) -> Any:
    """Return the draws' logits ``(n, S)`` lowered by ``log(S * q)``; a row's label -inf."""
    sampled = sample.classes
    z = h @ W_sampled - (xp.take(sample.log_q, sampled, axis=0) + math.log(sampled.shape[0]))
    if b is not None:
        z += xp.take(b, sampled, axis=0)
    if remove_accidental_hits:
        hits = y[:, None] == xp.astype(sampled, y.dtype)[None, :]
        z = xp.where(hits, xp.full_like(z, -math.inf), z)
    return z


def _loss_terms(z_true: Any, z: Any, weight: Any, xp: Any) -> tuple[Any, Any, Any]:
    """Return the losses ``(n,)`` and the mean's gradients for ``z_true`` ``(n,)`` and ``z``.

    The gradients are with respect to the labels' logits ``(n,)`` and the draws' ``(n, S)``.
    """
    n = z.shape[0]
    top = xp.maximum(z_true, xp.max(z, axis=1))
    e_true, e_sampled = xp.exp(z_true - top), xp.exp(z - top[:, None])
    total = e_true + xp.sum(e_sampled, axis=1)
    losses = xp.log(total) + top - z_true
    scale = (weight / n) if weight is not None else xp.full_like(total, 1.0 / max(n, 1))
    g_true = (e_true / total - 1.0) * scale  # d mean / d z_true, (n,)
    g_sampled = e_sampled * (scale / total)[:, None]  # d mean / d z, (n, S)
    return losses, g_true, g_sampled


def _sum_by_class(of_labels: Any, of_sampled: Any, columns: Any, num_classes: int, xp: Any) -> Any:
    """Return ``(num_classes, ...)`` sums of the labels' rows and the draws' rows, by class."""
    rows = xp.concat([of_labels, of_sampled])
    return array_extras.segment_sum(rows, columns, num_classes, xp=xp)
