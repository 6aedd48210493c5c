"""The fused step's numba kernels: one batch's loss, hits and gradient, and the SGD update.

Imported only by :mod:`softreg.fused` when a fused step is built (``import softreg`` never
imports numba). Every kernel computes in float32, as the array path does.

Numerical notes. The two products, the logits ``x @ W`` and the gradient
``dlogits.T @ x``, are compiled with the fastmath flags :data:`DOT` (``contract``:
multiply-adds fused; ``reassoc``: each logit's sum over the features split into vector
lanes and partial sums): the order of those sums is fixed by the compiled code, not by the
data or the threads, and the gradient still adds the rows in order. Everything else (the
inputs' conversion and standardisation, the softmax, the loss, the arg-max, the update)
keeps IEEE arithmetic (``fastmath=False``), and no flag assumes finite values, so a NaN
or infinite loss is still seen. So a kernel's result depends on its inputs and its fixed
partition of the rows alone: the same numbers on any number of threads and on every run
on the same machine; another CPU (another vector width, or none of its fused
multiply-adds) may round the products differently in the last bit.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

TILE = 32
"""Rows a thread converts and computes at once: their inputs stay in cache between passes."""

DOT = {"contract", "reassoc"}
"""The fastmath flags of the two products (logits, gradient): fused multiply-adds, and
the logits' sums over features reassociated into vector lanes (an order fixed at compile
time). Nothing else: no ``nnan``/``ninf``/``arcp``/``afn``, so the softmax, the loss, the
standardisation and the update keep IEEE arithmetic."""


@njit(cache=True, fastmath=False)
def _load_tile(X, idx, scaling, xr):  # pragma: no cover (compiled)
    """Write the rows ``idx`` of ``X`` into ``xr[r, :]`` as float32, standardised if asked.

    Standardised when ``mean`` is not empty. uint8 inputs read as ``float32(b) / divisor``
    when ``divisor`` is not 0 (vectorised, IEEE division), else are looked up in
    ``byte_values``.
    """
    mean, scale, byte_values, divisor = scaling
    scaled, as_bytes = mean.shape[0] > 0, byte_values.shape[0] > 0
    for r in range(idx.shape[0]):
        row, xi = X[idx[r]], xr[r]
        if divisor != 0:
            for j in range(xi.shape[0]):
                xi[j] = np.float32(row[j]) / divisor
        elif as_bytes:
            for j in range(xi.shape[0]):
                xi[j] = byte_values[np.intp(row[j])]
        else:
            for j in range(xi.shape[0]):
                xi[j] = np.float32(row[j])
        if scaled:
            for j in range(xi.shape[0]):
                xi[j] = (xi[j] - mean[j]) / scale[j]


@njit(cache=True, fastmath=DOT)
def _row_logits(x, WT, b, z):  # pragma: no cover (compiled)
    """Write ``x @ W + b`` of one row into ``z`` (``WT``: ``W`` transposed, contiguous).

    Five classes per pass over the row (then one at a time): each logit's sum over the
    features vectorised (reassociated, with fused multiply-adds) in an order fixed by the
    compiled code, the same for every row; then ``b`` added.
    """
    c = WT.shape[0]
    for k in range(0, c - c % 5, 5):
        w0, w1, w2, w3, w4 = WT[k], WT[k + 1], WT[k + 2], WT[k + 3], WT[k + 4]
        a0 = a1 = a2 = a3 = a4 = np.float32(0)
        for j in range(x.shape[0]):
            v = x[j]
            a0 += v * w0[j]
            a1 += v * w1[j]
            a2 += v * w2[j]
            a3 += v * w3[j]
            a4 += v * w4[j]
        z[k], z[k + 1], z[k + 2], z[k + 3], z[k + 4] = a0, a1, a2, a3, a4
    for k in range(c - c % 5, c):
        w, a = WT[k], np.float32(0)
        for j in range(x.shape[0]):
            a += x[j] * w[j]
        z[k] = a
    for k in range(c):
        z[k] += b[k]


@njit(cache=True, fastmath=DOT)
def _pair_accumulate(xr, gp, gq, m4, p, q):  # pragma: no cover (compiled)
    """Add ``gp[r] * xr[r]`` to ``p`` and ``gq[r] * xr[r]`` to ``q``, rows ``0:m4`` in order."""
    for r in range(0, m4, 4):
        x0, x1, x2, x3 = xr[r], xr[r + 1], xr[r + 2], xr[r + 3]
        g0, g1, g2, g3 = gp[r], gp[r + 1], gp[r + 2], gp[r + 3]
        h0, h1, h2, h3 = gq[r], gq[r + 1], gq[r + 2], gq[r + 3]
        for j in range(p.shape[0]):
            u0, u1, u2, u3 = x0[j], x1[j], x2[j], x3[j]
            a = p[j] + g0 * u0
            a = a + g1 * u1
            a = a + g2 * u2
            p[j] = a + g3 * u3
            e = q[j] + h0 * u0
            e = e + h1 * u1
            e = e + h2 * u2
            q[j] = e + h3 * u3


@njit(cache=True, fastmath=DOT)
def _tile_accumulate(xr, G, m, dWT, db):  # pragma: no cover (compiled)
    """Add the tile's gradient: ``dWT[k] += G[r, k] * xr[r]`` and ``db += G[r]``, row by row.

    Two classes and four rows per pass over ``dWT`` (:func:`_pair_accumulate`), the rows
    added in order (fused multiply-adds, vectorised over the features, not reassociated).
    """
    c, m4 = dWT.shape[0], m - m % 4
    for k in range(c):
        if k % 2 == 0 and k + 1 < c:
            _pair_accumulate(xr, G[:, k], G[:, k + 1], m4, dWT[k], dWT[k + 1])
        acc = dWT[k]
        if k % 2 == 0 and k + 1 == c:  # the last of an odd number of classes
            for r in range(m4):
                g, xj = G[r, k], xr[r]
                for j in range(acc.shape[0]):
                    acc[j] += g * xj[j]
        for r in range(m4, m):
            g, xj = G[r, k], xr[r]
            for j in range(acc.shape[0]):
                acc[j] += g * xj[j]
    for r in range(m):
        for k in range(db.shape[0]):
            db[k] += G[r, k]


@njit(cache=True, fastmath=False)
def _argmax(z):  # pragma: no cover (compiled)
    """Return NumPy's ``argmax``: the first largest entry, or the first NaN."""
    best = 0
    for k in range(1, z.shape[0]):
        if z[best] != z[best]:
            break
        if z[k] > z[best] or z[k] != z[k]:
            best = k
    return best


@njit(cache=True, fastmath=False)
def _loss_and_dlogits(z, label, weighted, weight, n):  # pragma: no cover (compiled)
    """Return the row's cross-entropy; turn its logits ``z`` into its ``dlogits``.

    As :func:`softreg.ops.cross_entropy_with_grad` computes them, operation for operation:
    ``log(sum(exp(z - max))) - (z[label] - max)``, ``softmax(z) - one_hot(label)``, then
    divided by the batch's ``n``, or times ``weight / n`` when ``weighted``.
    """
    top = z[_argmax(z)]
    picked = z[label] - top
    total = np.float32(0)
    for k in range(z.shape[0]):
        z[k] = np.exp(z[k] - top)
        total += z[k]
    loss = np.log(total) - picked
    for k in range(z.shape[0]):
        z[k] /= total
    z[label] -= np.float32(1)
    if not weighted:
        for k in range(z.shape[0]):
            z[k] /= n
        return loss
    factor = weight / n
    for k in range(z.shape[0]):
        z[k] *= factor
    return loss * weight


@njit(parallel=True, cache=True, fastmath=False)
def batch_partials(data, params, scaling, out):  # pragma: no cover (compiled)
    """One batch's per-row losses and hits, and its mean gradient in ``parts`` sums.

    Rows ``idx[t * B // parts:(t + 1) * B // parts]`` go to part ``t``: a fixed partition,
    whatever the number of threads, so the result is the same on any number of threads.

    Parameters
    ----------
    data : tuple
        ``(X, y, idx, weight)``, below.
    params : tuple
        ``(W, b)``.
    scaling : tuple
        ``(mean, scale, byte_values)``.
    out : tuple
        ``(dW_parts, db_parts, losses, hits)``, written.
    X : array, shape (n_samples, n_features)
        uint8 or float32 inputs.
    y : array of int, shape (n_samples,)
        Labels.
    idx : array of int, shape (B,)
        The batch's rows.
    weight : float32 array, shape (n_samples,) or (0,)
        Sample weights; empty: none.
    W, b : float32 arrays, shapes (n_features, n_classes) and (n_classes,)
        The parameters.
    mean, scale : float32 arrays, shape (n_features,) or (0,)
        The standardisation (empty: none).
    byte_values : float32 array, shape (256,) or (0,)
        What each byte of uint8 inputs reads as (empty: float inputs).
        The input standardisation; empty: none.
    dW_parts, db_parts : float32 arrays, shapes (parts, n_classes, n_features), (parts, n_classes)
        Written: each part's share of the gradient of the batch's mean loss (``dW``
        transposed: each class's row is one contiguous sum over the part's rows).
    losses : float32 array, shape (B,)
        Written: each row's (weighted) loss.
    hits : int32 array, shape (B,)
        Written: 1 where the row's arg-max is its label.
    """
    (X, y, idx, weight), (W, b) = data, params
    dW_parts, db_parts, losses, hits = out
    B, parts, d = idx.shape[0], dW_parts.shape[0], W.shape[0]
    n = np.float32(B)
    weighted = weight.shape[0] > 0
    WT = np.ascontiguousarray(W.T)
    for t in prange(parts):
        dWT, db = dW_parts[t], db_parts[t]
        dWT[:] = 0
        db[:] = 0
        xr = np.empty((TILE, d), np.float32)
        Z = np.empty((TILE, W.shape[1]), np.float32)
        hi = (t + 1) * B // parts
        for s in range(t * B // parts, hi, TILE):
            m = min(TILE, hi - s)
            _load_tile(X, idx[s : s + m], scaling, xr)
            for r in range(m):
                i, z = idx[s + r], Z[r]
                _row_logits(xr[r], WT, b, z)
                w = weight[i] if weighted else n
                hits[s + r] = _argmax(z) == y[i]
                losses[s + r] = _loss_and_dlogits(z, y[i], weighted, w, n)
            _tile_accumulate(xr, Z, m, dWT, db)


@njit(cache=True, fastmath=False)
def sgd_update(p, parts, buf, lr, weight_decay, momentum, nesterov):  # pragma: no cover (compiled)
    """Sum the gradient's parts and apply :meth:`softreg.optim.SGD.update` to ``p`` in place.

    Float32 throughout, operation for operation as the array path: ``g = grad + wd * p``;
    ``buf = momentum * buf + g``; ``p -= lr * (g + momentum * buf if nesterov else buf)``.

    Parameters
    ----------
    p : float32 array, shape (m, c)
        A parameter (a bias as ``(1, c)``).
    parts : float32 array, shape (parts, m, c)
        The gradient's parts, summed in order.
    buf : float32 array, shape (m, c) or (0, c)
        The momentum buffer (empty: no momentum).
    lr, weight_decay, momentum : float32
        The step's rate and the optimiser's constants.
    nesterov : bool
        Nesterov momentum.
    """
    for j in range(p.shape[0]):
        for k in range(p.shape[1]):
            g = parts[0, j, k]
            for t in range(1, parts.shape[0]):
                g += parts[t, j, k]
            if weight_decay != 0:
                g = g + weight_decay * p[j, k]
            step = g
            if buf.shape[0] > 0:
                buf[j, k] = buf[j, k] * momentum
                buf[j, k] += g
                step = g + momentum * buf[j, k] if nesterov else buf[j, k]
            p[j, k] -= lr * step


@njit(cache=True, fastmath=False)
def _block_sum(a, lo, n):  # pragma: no cover (compiled)
    """Return NumPy's sum of ``a[lo:lo + n]``, ``n <= 128``: 8 running sums, then the rest."""
    if n < 8:
        total = np.float32(0)
        for i in range(lo, lo + n):
            total += a[i]
        return total
    r = a[lo : lo + 8].copy()
    end = lo + n - n % 8
    for i in range(lo + 8, end, 8):
        for q in range(8):
            r[q] += a[i + q]
    total = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
    for i in range(end, lo + n):
        total += a[i]
    return total


@njit(cache=True, fastmath=False)
def pairwise_sum(a):  # pragma: no cover (compiled)
    """Return ``numpy.sum(a)`` of a float32 vector, to the bit: NumPy's pairwise summation.

    Blocks of at most 128 (:func:`_block_sum`); longer runs split in two halves (the first a
    multiple of 8) and added, left + right. The recursion walked with a stack.
    """
    starts, sizes = np.zeros(64, np.int64), np.zeros(64, np.int64)
    lefts, left_done = np.zeros(64, np.float32), np.zeros(64, np.bool_)
    sizes[0], top, value, have = a.shape[0], 0, np.float32(0), False
    while top >= 0:
        lo, n = starts[top], sizes[top]
        half = n // 2 - (n // 2) % 8
        if n <= 128 and not have:  # a block: its sum goes back to its parent
            value, have, top = _block_sum(a, lo, n), True, top - 1
        elif have and not left_done[top]:  # the left half's sum: now the right half
            lefts[top], left_done[top], have = value, True, False
            starts[top + 1], sizes[top + 1], left_done[top + 1] = lo + half, n - half, False
            top += 1
        elif have:  # both halves: left + right goes back to the parent
            value, top = lefts[top] + value, top - 1
        else:  # descend into the left half
            starts[top + 1], sizes[top + 1], left_done[top + 1] = lo, half, False
            top += 1
    return np.float32(0) + value


@njit(parallel=True, cache=True, fastmath=False)
def train_batch(data, params, scaling, optim, out):  # pragma: no cover (compiled)
    """Take one SGD step: the batch's gradient (:func:`batch_partials`), then the update.

    Parameters
    ----------
    data, params, scaling, out : tuple
        As :func:`batch_partials` takes them.
    optim : tuple
        ``(lr, weight_decay, momentum, nesterov, buf_W, buf_b, check)``: see
        :func:`sgd_update` (``buf_W`` of ``W``'s shape, ``buf_b`` as ``(1, n_classes)``;
        without momentum both have no rows, and the same types, so one compiled kernel
        serves both); ``check``: update nothing when the batch's loss is not finite.

    Returns
    -------
    tuple
        ``(loss, correct, updated)``: the batch's summed loss (float32, as ``numpy.sum``),
        its number of correct predictions, and whether the parameters were updated.
    """
    batch_partials(data, params, scaling, out)
    W, b = params
    dW, db, losses, hits = out
    lr, weight_decay, momentum, nesterov, buf_W, buf_b, check = optim
    loss = pairwise_sum(losses)
    correct = hits.sum()
    if check and not np.isfinite(loss):
        return loss, correct, False
    Wt, bufs = W.T, buf_W.T
    for k in prange(Wt.shape[0]):
        buf = bufs[k : k + 1] if buf_W.shape[0] > 0 else bufs[:0]
        sgd_update(Wt[k : k + 1], dW[:, k : k + 1], buf, lr, weight_decay, momentum, nesterov)
    sgd_update(b[None, :], db[:, None, :], buf_b, lr, weight_decay, momentum, nesterov)
    return loss, correct, True
