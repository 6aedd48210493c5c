"""The exact softmax cross-entropy of ``h @ W + b``, computed over chunks of classes.

The forward pass streams the classes keeping each row's running log-sum-exp; the backward
pass recomputes each chunk's logits. Memory: a few ``(n_samples, chunk_size)`` blocks.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator
from typing import Any

from softreg import array_extras, ops
from softreg.backend import device, get_namespace

__all__ = [
    "AUTO_BLOCK",
    "MIN_CHUNK",
    "auto_chunk_size",
    "linear_cross_entropy",
    "linear_cross_entropy_backward",
    "linear_cross_entropy_with_grad",
    "linear_logsumexp",
    "target_logits",
]

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
    """Return the log-sum-exp and the arg-max of each row of ``h @ W + b``, chunk by chunk.

    Parameters
    ----------
    h : array
        Features, ``(n_samples, n_features)``.
    W : array
        Output weights, ``(n_features, n_classes)``.
    b : array or None, default None
        Output biases, ``(n_classes,)``.
    chunk_size : int or None, default None
        Classes per chunk; None: as many as keep a block at :data:`AUTO_BLOCK` entries, at
        least :data:`MIN_CHUNK` (:func:`auto_chunk_size`).
    xp : namespace or None, default None
        The arrays' namespace; None: found from ``h`` and ``W``.

    Returns
    -------
    lse : array
        ``logsumexp(h @ W + b, axis=1)``, ``(n_samples,)``.
    argmax : array
        ``argmax(h @ W + b, axis=1)``, ``(n_samples,)``; ties go to the first class, as
        ``argmax``'s.

    Raises
    ------
    ValueError
        ``chunk_size`` is not an integer >= 1 or None.
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
    """Return each row's logit at its label, ``(h @ W + b)[range(n), y]``.

    Only the labels' columns of ``W`` are read.

    Parameters
    ----------
    h : array
        Features, ``(n_samples, n_features)``.
    W : array
        Output weights, ``(n_features, n_classes)``.
    b : array or None
        Output biases, ``(n_classes,)``.
    y : array
        Labels, ``(n_samples,)`` integers in ``[0, n_classes)`` (not checked).
    xp : namespace or None, default None
        The arrays' namespace; None: found from ``h`` and ``W``.

    Returns
    -------
    array
        ``(n_samples,)``.
    """
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
    """Return the cross-entropy of ``softmax(h @ W + b)`` against ``y``, over chunks of classes.

    The same numbers as ``ops.cross_entropy(h @ W + b, y, reduction=reduction)``, but the
    ``(n_samples, n_classes)`` logits never exist (see :func:`linear_logsumexp`).

    Parameters
    ----------
    h, W, b, y : array
        As for :func:`target_logits`; the labels are checked here.
    chunk_size : int or None, default None
        Classes per chunk (see :func:`linear_logsumexp`).
    reduction : str, default "mean"
        ``"mean"``, ``"sum"`` or ``"none"``.
    xp : namespace or None, default None
        The arrays' namespace; None: found from ``h``, ``W`` and ``y``.

    Returns
    -------
    array
        ``(n_samples,)`` losses for ``reduction="none"``, else a 0-d array.

    Raises
    ------
    ValueError
        The shapes do not fit together, a label is out of range, or ``reduction`` or
        ``chunk_size`` is invalid.
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
) -> tuple[Any, Any, Any]:
    """Return the gradients of the mean loss, recomputing the logits chunk by chunk.

    Chunk ``c`` of the logits gives ``G_c = (softmax - one_hot)[:, c] / n`` (rows scaled by
    ``weight`` when given), then ``dW[:, c] = h.T @ G_c``, ``db[c] = sum(G_c)`` and
    ``dh += G_c @ W[:, c].T``. The namespace is that of ``h``, ``W`` and ``y``. Labels are
    not range-checked (the training hot path).

    Parameters
    ----------
    h, W, b, y : array
        As for :func:`linear_cross_entropy`.
    lse : array
        Each row's log-sum-exp, ``(n_samples,)``, from :func:`linear_logsumexp`.
    chunk_size : int or None, default None
        Classes per chunk (see :func:`linear_logsumexp`).
    weight : array or None, default None
        Per-example weights, ``(n_samples,)``, scaling each example's loss.
    input_grad : bool, default True
        Compute ``dh``; False when ``h`` is the data (softmax regression).

    Returns
    -------
    dh : array or None
        ``(n_samples, n_features)``; None when ``input_grad`` is false.
    dW : array
        ``(n_features, n_classes)``.
    db : array or None
        ``(n_classes,)``; None when ``b`` is None.
    """
    xp = get_namespace(h, W, y)
    step = _chunk_columns(chunk_size, h.shape[0], W.shape[1])
    dh = xp.zeros_like(h) if input_grad else None
    out = _OutputGrads(W, xp)
    for start, stop, grad in _dlogit_chunks(h, W, b, y, lse, weight, step, xp):
        out.put(start, stop, h.T @ grad, xp.sum(grad, axis=0))  # (d, chunk), (chunk,)
        if dh is not None:
            dh += grad @ W[:, start:stop].T
    dW, db = out.result()
    return dh, dW, (db if b is not None else None)


def _dlogit_chunks(
    h: Any, W: Any, b: Any, y: Any, lse: Any, weight: Any, step: int, xp: Any
) -> Iterator[tuple[int, int, Any]]:
    """Yield ``(start, stop, G)``: the gradient of the mean loss for each chunk's logits."""
    n, num_classes = h.shape[0], W.shape[1]
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
    for start in range(0, num_classes, step):
        stop = min(start + step, num_classes)
        z = _chunk_logits(h, W, b, start, stop)  # (n, chunk)
        z -= shift[:, None]
        grad = xp.exp(z)  # softmax / n, (n, chunk)
        del z
        columns = xp.arange(start, stop, dtype=y.dtype, device=device(y))
        grad -= xp.where(y[:, None] == columns[None, :], scale, no_scale)  # minus one_hot / n
        yield start, stop, grad


class _OutputGrads:
    """``dW`` and ``db`` filled chunk by chunk, in place or (JAX, TensorFlow) joined."""

    def __init__(self, W: Any, xp: Any):
        self.xp = xp
        self.writable = array_extras.supports_item_assignment(xp)
        if self.writable:
            self.dW = xp.zeros_like(W)
            self.db = xp.zeros((W.shape[1],), dtype=W.dtype, device=device(W))
        else:
            self.dW_parts: list[Any] = []
            self.db_parts: list[Any] = []

    def put(self, start: int, stop: int, dW_chunk: Any, db_chunk: Any) -> None:
        """Set columns ``start:stop`` of ``dW`` and ``db``."""
        if self.writable:
            self.dW[:, start:stop] = dW_chunk
            self.db[start:stop] = db_chunk
        else:
            self.dW_parts.append(dW_chunk)
            self.db_parts.append(db_chunk)

    def result(self) -> tuple[Any, Any]:
        """Return ``(dW, db)``, every column set."""
        if self.writable:
            return self.dW, self.db
        return self.xp.concat(self.dW_parts, axis=1), self.xp.concat(self.db_parts, axis=0)


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
    """Return per-example losses and the gradients of their mean, over chunks of classes.

    One pass of :func:`linear_logsumexp`, one of :func:`linear_cross_entropy_backward`, with
    at most a few ``(n_samples, chunk_size)`` blocks in memory. The same numbers as
    ``ops.cross_entropy_with_grad(h @ W + b, y, weight=weight)`` followed by
    ``dh = dlogits @ W.T``, ``dW = h.T @ dlogits``, ``db = dlogits.sum(0)``.

    Parameters
    ----------
    h, W, b, y : array
        As for :func:`linear_cross_entropy`.
    chunk_size : int or None, default None
        Classes per chunk (see :func:`linear_logsumexp`).
    weight : array or None, default None
        Per-example weights, ``(n_samples,)``, scaling each example's loss and gradient.
    input_grad : bool, default True
        Compute ``dh``; False when ``h`` is the data.
    xp : namespace or None, default None
        The arrays' namespace; None: found from ``h``, ``W`` and ``y``.

    Returns
    -------
    losses : array
        ``(n_samples,)``, each times its weight when ``weight`` is given.
    dh, dW, db : array or None
        As :func:`linear_cross_entropy_backward` returns them.

    Raises
    ------
    ValueError
        The shapes do not fit together, a label is out of range, or ``chunk_size`` is
        invalid.
    """
    xp = get_namespace(h, W, y, xp=xp)
    _check_inputs(h, W, b, y, xp)
    lse, _ = linear_logsumexp(h, W, b, chunk_size=chunk_size, xp=xp)
    losses = lse - target_logits(h, W, b, y, xp=xp)
    dh, dW, db = linear_cross_entropy_backward(
        h, W, b, y, lse, chunk_size=chunk_size, weight=weight, input_grad=input_grad
    )
    return (losses if weight is None else losses * weight), dh, dW, db


def _chunk_logits(h: Any, W: Any, b: Any, start: int, stop: int) -> Any:
    """Return columns ``start:stop`` of ``h @ W + b``: a fresh ``(n, stop - start)`` array."""
    z = h @ W[:, start:stop]
    if b is not None:
        z += b[start:stop]
    return z


def _chunk_columns(chunk_size: int | None, n: int, num_classes: int) -> int:
    """Return the chunk width: ``chunk_size`` (checked) or the automatic one, <= classes."""
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
    """Return the chunk width ``chunk_size=None`` stands for, for ``n`` rows.

    Parameters
    ----------
    n : int
        The rows of ``h``.

    Returns
    -------
    int
        The most classes that keep an ``(n, chunk)`` block at :data:`AUTO_BLOCK` entries,
        at least :data:`MIN_CHUNK`.
    """
    return max(MIN_CHUNK, AUTO_BLOCK // max(n, 1))


def _check_inputs(h: Any, W: Any, b: Any, y: Any, xp: Any) -> None:
    """Refuse shapes that do not fit together, and labels out of range.

    Out-of-range labels would gather another row's column, or clamp silently on JAX.
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
