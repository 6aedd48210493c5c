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
``S`` classes drawn from a proposal ``q`` (shared by the batch), their logits lowered by
``log(S * q)``, the expected number of times each is drawn (the log-Q correction).

Shapes: ``h`` is ``(n_samples, n_features)``, ``W`` ``(n_features, n_classes)``, ``b``
``(n_classes,)`` or None, ``y`` ``(n_samples,)`` class indices. Like :mod:`softreg.ops`,
everything takes arrays of one array-API namespace and an optional ``xp``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from softreg import backend, ops
from softreg.backend import device, get_namespace

# chunk_size=None: as many classes as keep one (n_samples, chunk) block at 2**21 entries
# (8 MB in float32), a few such blocks at a time whatever the batch and the vocabulary; small
# blocks are faster too (at 256 rows, 512 to 8192 classes took 170-190 ms a step, 32768 took
# 280). But no fewer than MIN_CHUNK classes, so that there are fewer, larger matrix products:
# at N = 8192, d = 256, chunks of 128, 512 and 2048 classes ran as fast on one thread.
AUTO_BLOCK = 2**21
MIN_CHUNK = 512


def linear_logsumexp(
    h: Any, W: Any, b: Any = None, /, *, chunk_size: int | None = None, xp: Any = None
) -> tuple[Any, Any]:
    """``logsumexp(h @ W + b, axis=1)`` and ``argmax(h @ W + b, axis=1)``, both
    ``(n_samples,)``, computed ``chunk_size`` columns at a time (``None``: as many as keep a
    block at :data:`AUTO_BLOCK` entries, at least :data:`MIN_CHUNK`). Ties go to the first
    class, as ``argmax``'s.
    """
    xp = get_namespace(h, W, xp=xp)
    num_classes = W.shape[1]
    step = _chunk_columns(chunk_size, h.shape[0], num_classes)
    run_max = run_sum = best = None
    for start in range(0, num_classes, step):
        z = _chunk_logits(h, W, b, start, min(start + step, num_classes))  # (n, chunk)
        z_max = xp.max(z, axis=1)
        z_arg = xp.argmax(z, axis=1) + start
        if run_max is None:
            run_max, best = z_max, z_arg
            z -= z_max[:, None]
            run_sum = xp.sum(xp.exp(z), axis=1)
            continue
        best = xp.where(z_max > run_max, z_arg, best)  # strict: an earlier tie wins
        new_max = xp.maximum(run_max, z_max)
        z -= new_max[:, None]
        # Rescale the sum so far to the new maximum, then add this chunk's terms (all <= 1).
        run_sum = run_sum * xp.exp(run_max - new_max) + xp.sum(xp.exp(z), axis=1)
        run_max = new_max
    return xp.log(run_sum) + run_max, best


def target_logits(h: Any, W: Any, b: Any, y: Any, /, *, xp: Any = None) -> Any:
    """``(h @ W + b)[range(n), y]``, ``(n_samples,)``, from the labels' columns alone."""
    xp = get_namespace(h, W, xp=xp)
    picked = xp.sum(h * xp.take(W, y, axis=1).T, axis=1)  # (n, d) * (n, d), summed
    return picked if b is None else picked + xp.take(b, y, axis=0)


def linear_cross_entropy(
    h: Any,
    W: Any,
    b: Any,
    y: Any,
    /,
    *,
    chunk_size: int | None = None,
    reduction: str = "mean",
    xp: Any = None,
) -> Any:
    """Cross-entropy of ``softmax(h @ W + b)`` against labels ``y``, as
    ``ops.cross_entropy(h @ W + b, y, reduction=reduction)`` gives it, but over chunks of
    ``chunk_size`` classes (see :func:`linear_logsumexp`), so that the ``(n_samples,
    n_classes)`` logits never exist. Returns ``(n,)`` for ``reduction="none"``, else 0-d.
    """
    xp = get_namespace(h, W, y, xp=xp)
    if reduction not in ops.REDUCTIONS:
        raise ValueError(f"reduction must be one of {ops.REDUCTIONS}, got {reduction!r}")
    _check_inputs(h, W, b, y, xp)
    lse, _ = linear_logsumexp(h, W, b, chunk_size=chunk_size, xp=xp)
    losses = lse - target_logits(h, W, b, y, xp=xp)
    if reduction == "none":
        return losses
    return xp.sum(losses) if reduction == "sum" else xp.mean(losses)


def linear_cross_entropy_backward(
    h: Any,
    W: Any,
    b: Any,
    y: Any,
    lse: Any,
    /,
    *,
    chunk_size: int | None = None,
    weight: Any = None,
    input_grad: bool = True,
    xp: Any = None,
) -> tuple[Any, Any, Any]:
    """Gradients ``(dh, dW, db)`` of the mean loss, given each row's log-sum-exp ``lse``
    (``(n,)``, from :func:`linear_logsumexp`), recomputing the logits chunk by chunk.

    Chunk ``c`` of the logits gives ``G_c = (softmax - one_hot)[:, c] / n`` (rows scaled by
    ``weight`` (``(n,)``) when given), then ``dW[:, c] = h.T @ G_c``, ``db[c] = sum(G_c)`` and
    ``dh += G_c @ W[:, c].T``. ``dh`` is None when ``input_grad`` is false (softmax
    regression: ``h`` is the data). Labels are not range-checked (the training hot path).
    """
    xp = get_namespace(h, W, y, xp=xp)
    n, num_classes = h.shape[0], W.shape[1]
    step = _chunk_columns(chunk_size, n, num_classes)
    # softmax / n = exp(z - lse - log n): the 1/n (times the weight) folded into the shift
    # saves a pass over each block. A weight of 0 makes the shift +inf and the block's row 0.
    if weight is None:
        shift = lse + math.log(n) if n else lse
        scale = xp.full_like(h[:, :1], 1.0 / max(n, 1))  # (n, 1)
    else:
        positive = weight > 0
        log_weight = xp.log(xp.where(positive, weight, xp.ones_like(weight)))
        shift = xp.where(positive, lse + math.log(n) - log_weight, xp.full_like(lse, math.inf))
        scale = weight[:, None] / n
    no_scale = xp.zeros_like(scale)
    dh = xp.zeros_like(h) if input_grad else None
    writable = backend.supports_item_assignment(xp)
    if writable:
        dW, db = xp.zeros_like(W), xp.zeros((num_classes,), dtype=W.dtype, device=device(W))
    else:  # JAX, TensorFlow: gather the chunks, join them at the end
        dW_parts, db_parts = [], []
    for start in range(0, num_classes, step):
        stop = min(start + step, num_classes)
        z = _chunk_logits(h, W, b, start, stop)  # (n, chunk)
        z -= shift[:, None]
        grad = xp.exp(z)  # softmax / n, (n, chunk)
        del z
        columns = xp.arange(start, stop, dtype=y.dtype, device=device(y))
        grad -= xp.where(y[:, None] == columns[None, :], scale, no_scale)  # minus one_hot / n
        dW_chunk, db_chunk = h.T @ grad, xp.sum(grad, axis=0)  # (d, chunk), (chunk,)
        if input_grad:
            dh += grad @ W[:, start:stop].T
        if writable:
            dW[:, start:stop] = dW_chunk
            db[start:stop] = db_chunk
        else:
            dW_parts.append(dW_chunk)
            db_parts.append(db_chunk)
    if not writable:
        dW, db = xp.concat(dW_parts, axis=1), xp.concat(db_parts, axis=0)
    return dh, dW, (db if b is not None else None)


def linear_cross_entropy_with_grad(
    h: Any,
    W: Any,
    b: Any,
    y: Any,
    /,
    *,
    chunk_size: int | None = None,
    weight: Any = None,
    input_grad: bool = True,
    xp: Any = None,
) -> tuple[Any, Any, Any, Any]:
    """Per-example losses ``(n,)`` of ``softmax(h @ W + b)`` against ``y`` and the gradients
    ``(dh, dW, db)`` of their mean, with at most a few ``(n, chunk_size)`` blocks in memory:
    one pass of :func:`linear_logsumexp`, one of :func:`linear_cross_entropy_backward`.

    The same numbers as ``ops.cross_entropy_with_grad(h @ W + b, y, weight=weight)`` followed
    by ``dh = dlogits @ W.T``, ``dW = h.T @ dlogits``, ``db = dlogits.sum(0)``: ``weight``
    (``(n,)``) scales each example's loss and gradient. ``db`` is None when ``b`` is None.
    """
    xp = get_namespace(h, W, y, xp=xp)
    _check_inputs(h, W, b, y, xp)
    lse, _ = linear_logsumexp(h, W, b, chunk_size=chunk_size, xp=xp)
    losses = lse - target_logits(h, W, b, y, xp=xp)
    dh, dW, db = linear_cross_entropy_backward(
        h, W, b, y, lse, chunk_size=chunk_size, weight=weight, input_grad=input_grad, xp=xp
    )
    return (losses if weight is None else losses * weight), dh, dW, db


def sampled_softmax_with_grad(
    h: Any,
    W: Any,
    b: Any,
    y: Any,
    sampled: Any,
    log_q: Any,
    /,
    *,
    weight: Any = None,
    remove_accidental_hits: bool = True,
    xp: Any = None,
) -> tuple[Any, Any, Any, Any]:
    """Sampled softmax: per-example losses ``(n,)`` and the gradients ``(dh, dW, db)`` of
    their mean, from ``n * (S + 1)`` logits instead of ``n * n_classes``.

    ``sampled`` (``(S,)``) are classes drawn *with replacement* from a proposal ``q``, shared
    by every row; ``log_q`` (``(n_classes,)``) is ``log q``. Row ``i`` is scored against its
    label and the ``S`` draws, each draw's logit lowered by ``log(S * q)``, its expected
    count (the log-Q correction). Then ``exp(loss)`` is an unbiased estimate of the exact
    ``exp(cross-entropy)``: the draws' corrected exponentials add up, on average, to the sum
    over every class but the label. That needs the label left out of its own row's draws
    (``remove_accidental_hits``); keeping them inflates the estimate by 1 on average. The
    loss itself is biased low (``log`` is concave) and the bias shrinks as ``S`` grows.

    ``dW`` and ``db`` are dense (``W``'s and ``b``'s shapes) but nonzero only in the label
    and sampled columns. Labels are not range-checked (the training hot path).
    """
    xp = get_namespace(h, W, y, xp=xp)
    n, num_sampled = h.shape[0], sampled.shape[0]
    W_sampled = xp.take(W, sampled, axis=1)  # (d, S)
    z = h @ W_sampled - (xp.take(log_q, sampled, axis=0) + math.log(num_sampled))  # (n, S)
    if b is not None:
        z += xp.take(b, sampled, axis=0)
    if remove_accidental_hits:
        hits = y[:, None] == xp.astype(sampled, y.dtype)[None, :]
        z = xp.where(hits, xp.full_like(z, -math.inf), z)
    z_true = target_logits(h, W, b, y, xp=xp)  # (n,), not corrected: it is never sampled
    top = xp.maximum(z_true, xp.max(z, axis=1))
    e_true, e_sampled = xp.exp(z_true - top), xp.exp(z - top[:, None])
    total = e_true + xp.sum(e_sampled, axis=1)
    losses = xp.log(total) + top - z_true
    scale = (weight / n) if weight is not None else xp.full_like(total, 1.0 / max(n, 1))
    g_true = (e_true / total - 1.0) * scale  # d mean / d z_true, (n,)
    g_sampled = e_sampled * (scale / total)[:, None]  # d mean / d z, (n, S)
    W_true = xp.take(W, y, axis=1)  # (d, n)
    dh = g_true[:, None] * W_true.T + g_sampled @ W_sampled.T
    # W's columns y_i get g_true_i * h_i and the sampled ones (h.T @ g_sampled)[:, j]; a
    # class that appears more than once gets the sum (segment_sum, the adjoint of take).
    columns = xp.concat([xp.astype(y, sampled.dtype), sampled])
    num_classes = W.shape[1]
    dW = backend.segment_sum(
        xp.concat([g_true[:, None] * h, (h.T @ g_sampled).T]), columns, num_classes, xp=xp
    ).T
    db = None
    if b is not None:
        db = backend.segment_sum(
            xp.concat([g_true, xp.sum(g_sampled, axis=0)]), columns, num_classes, xp=xp
        )
    return (losses if weight is None else losses * weight), dh, dW, db


def _chunk_logits(h: Any, W: Any, b: Any, start: int, stop: int) -> Any:
    """Columns ``start:stop`` of ``h @ W + b``: a fresh ``(n, stop - start)`` array."""
    z = h @ W[:, start:stop]
    if b is not None:
        z += b[start:stop]
    return z


def _chunk_columns(chunk_size: int | None, n: int, num_classes: int) -> int:
    """The chunk width: ``chunk_size`` (checked), or for None the most columns that keep an
    ``(n, chunk)`` block at :data:`AUTO_BLOCK` entries, at least :data:`MIN_CHUNK`; never
    more than the classes.
    """
    if chunk_size is None:
        chunk_size = auto_chunk_size(n)
    elif (
        isinstance(chunk_size, bool)
        or not isinstance(chunk_size, numbers.Integral)
        or chunk_size < 1
    ):
        raise ValueError(
            f"chunk_size must be an integer >= 1 (or None: automatic), got {chunk_size!r}"
        )
    return max(1, min(int(chunk_size), num_classes))


def auto_chunk_size(n: int) -> int:
    """The chunk width ``chunk_size=None`` stands for, for ``n`` rows."""
    return max(MIN_CHUNK, AUTO_BLOCK // max(n, 1))


def _check_inputs(h: Any, W: Any, b: Any, y: Any, xp: Any) -> None:
    """Shapes that fit together, and labels in range (out-of-range ones would gather another
    row's column, or clamp silently on JAX).
    """
    if h.ndim != 2 or W.ndim != 2 or h.shape[1] != W.shape[0]:
        raise ValueError(
            f"h (n_samples, n_features) and W (n_features, n_classes) do not fit: "
            f"shapes {tuple(h.shape)} and {tuple(W.shape)}"
        )
    if W.shape[1] == 0:
        raise ValueError("W has no classes (shape (n_features, 0))")
    if b is not None and tuple(b.shape) != (W.shape[1],):
        raise ValueError(
            f"b must have shape ({W.shape[1]},), one entry per class, got {tuple(b.shape)}"
        )
    ops.check_labels(y, W.shape[1], xp=xp)
    if y.shape[0] != h.shape[0]:
        raise ValueError(f"{h.shape[0]} rows of h but {y.shape[0]} labels")
