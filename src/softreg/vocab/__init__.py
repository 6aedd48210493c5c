"""Softmax cross-entropy over a large vocabulary, without the ``(n_samples, n_classes)`` logits.

For next-word prediction the output layer ``h @ W + b`` has one column per word. At 8192
examples and 256k classes the logits alone take 8 GB in float32, and their gradient as much
again, while ``h``, ``W`` and their gradients are a few hundred MB. The functions here never
form them:

- :func:`linear_logsumexp` streams the classes in chunks of columns, keeping each row's
  running maximum and sum of exponentials (the online log-sum-exp), and its arg-max;
- :func:`linear_cross_entropy_backward` recomputes each chunk's logits, turns them into
  ``(softmax - one_hot) / n`` with the now known log-sum-exp, and adds the chunk's share to
  the gradients of ``h``, ``W`` and ``b``;
- :func:`linear_cross_entropy_with_grad` runs both; :func:`linear_cross_entropy` the first.

Extra memory is a few ``(n_samples, chunk_size)`` blocks; the price is computing ``h @ W``
twice (four matrix products in all instead of three).

:func:`sampled_softmax_with_grad` approximates instead: the softmax over each row's label and
``S`` classes drawn from a proposal ``q`` (shared by the batch, :class:`SampledClasses`),
their logits lowered by ``log(S * q)``, the expected number of times each is drawn (the log-Q
correction).

Shapes: ``h`` is ``(n_samples, n_features)``, ``W`` ``(n_features, n_classes)``, ``b``
``(n_classes,)`` or None, ``y`` ``(n_samples,)`` class indices. Like :mod:`softreg.ops`,
everything takes arrays of one array-API namespace and an optional ``xp``, except
:func:`linear_cross_entropy_backward`, the inner half of
:func:`linear_cross_entropy_with_grad`, which finds it from its arrays.

The modules: :mod:`~softreg.vocab.chunked` (the exact loss, chunk by chunk) and
:mod:`~softreg.vocab.sampled` (sampled softmax).
"""

from __future__ import annotations

from softreg.vocab.chunked import (
    AUTO_BLOCK,
    MIN_CHUNK,
    auto_chunk_size,
    linear_cross_entropy,
    linear_cross_entropy_backward,
    linear_cross_entropy_with_grad,
    linear_logsumexp,
    target_logits,
)
from softreg.vocab.sampled import SampledClasses, sampled_softmax_with_grad

__all__ = [
    "AUTO_BLOCK",
    "MIN_CHUNK",
    "SampledClasses",
    "auto_chunk_size",
    "linear_cross_entropy",
    "linear_cross_entropy_backward",
    "linear_cross_entropy_with_grad",
    "linear_logsumexp",
    "sampled_softmax_with_grad",
    "target_logits",
]
