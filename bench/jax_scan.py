"""The book's recipe as a strong JAX user writes it: the peer of softreg's JAX backend.

The images stay uint8 on the device (a quarter of float32's memory traffic) and each batch is
converted inside the compiled step, ``float32(x) / 255``, the arithmetic of softreg's features
(``softreg.data.labelled.to_features``, which the book recipe's model uses as they are:
``normalize="auto"`` is no scaling for softmax regression), so the two train the same model.
One ``jax.jit`` per epoch runs a ``lax.scan`` over the epoch's full batches and then the last,
partial one (the shapes are static: the tail has a fixed size), with the parameters
donated; a second jitted function counts the test set's hits after every epoch.
The epochs visit the examples in softreg's order (``epoch_permutation(n, seed, epoch)``,
drawn on the host and sent to the device once per epoch, as softreg does), from softreg's
initial ``W``: the same work, the same cost.

Both functions are compiled ahead of time (``jit(...).lower(...).compile()``), so the compile
time is reported apart and the timed loop runs compiled code only.
"""

from __future__ import annotations

import time

import numpy as np

from softreg.data.batching import epoch_permutation


def device_of(device: str):
    """The JAX device that ``device`` names: ``cpu``, or ``cuda``/``gpu`` (the first GPU)."""
    import jax

    return jax.devices("gpu" if device in ("cuda", "gpu") else "cpu")[0]


def make_functions(n: int, batch_size: int, lr: float):
    """The jitted epoch (``params, X, y, order -> params, (loss sum, hits)``) and evaluation
    (``params, X, y -> hits``) for ``n`` training examples."""
    import jax
    import jax.numpy as jnp

    full = n // batch_size
    lr = jnp.float32(lr)

    def batch_loss(params, xb, yb):
        W, b = params
        logits = (xb.astype(jnp.float32) / jnp.float32(255)) @ W + b
        losses = (
            jax.nn.logsumexp(logits, axis=1)
            - jnp.take_along_axis(logits, yb[:, None], axis=1)[:, 0]
        )
        hits = jnp.sum(jnp.argmax(logits, axis=1) == yb, dtype=jnp.int32)
        return jnp.mean(losses), (jnp.sum(losses), hits)

    grad = jax.grad(batch_loss, has_aux=True)

    def step(carry, idx, X, y):
        params, (loss_sum, hits) = carry
        g, (batch_sum, batch_hits) = grad(params, X[idx], y[idx])
        params = jax.tree_util.tree_map(lambda p, d: p - lr * d, params, g)
        return (params, (loss_sum + batch_sum, hits + batch_hits))

    def epoch(params, X, y, order):
        batches = order[: full * batch_size].reshape(full, batch_size)
        sums = (jnp.float32(0), jnp.int32(0))
        carry, _ = jax.lax.scan(lambda c, idx: (step(c, idx, X, y), None), (params, sums), batches)
        if n % batch_size:  # the last, partial batch: a static shape, the same jit
            carry = step(carry, order[full * batch_size :], X, y)
        return carry

    def evaluate(params, X, y):
        W, b = params
        logits = (X.astype(jnp.float32) / jnp.float32(255)) @ W + b
        return jnp.sum(jnp.argmax(logits, axis=1) == y, dtype=jnp.int32)

    return jax.jit(epoch, donate_argnums=(0,)), jax.jit(evaluate)


def train(data, limit: int | None, epochs: int, recipe: dict, device: str = "cpu") -> dict:
    """Train the book's recipe on ``data`` (a softreg dataset: uint8 images) and return the
    benchmark row's result: training and compile seconds, final accuracies and loss."""
    import jax
    import jax.numpy as jnp

    dev = device_of(device)
    images = data.train_images[:limit]
    n = images.shape[0]
    put = lambda a: jax.device_put(np.ascontiguousarray(a), dev)  # noqa: E731
    X, y = put(images.reshape(n, -1)), put(data.train_labels[:limit].astype(np.int32))
    test_images = data.test_images[:limit]
    X_test = put(test_images.reshape(test_images.shape[0], -1))
    y_test = put(data.test_labels[:limit].astype(np.int32))
    W0 = np.random.default_rng(recipe["seed"]).normal(0.0, recipe["sigma"], size=(X.shape[1], 10))
    params = (put(W0.astype(np.float32)), put(np.zeros(10, np.float32)))
    sharding = jax.sharding.SingleDeviceSharding(dev)
    order_spec = jax.ShapeDtypeStruct((n,), jnp.int32, sharding=sharding)

    start = time.perf_counter()
    epoch_fn, eval_fn = make_functions(n, recipe["batch_size"], recipe["lr"])
    epoch_fn = epoch_fn.lower(params, X, y, order_spec).compile()
    eval_fn = eval_fn.lower(params, X_test, y_test).compile()
    seconds_compile = time.perf_counter() - start

    start = time.perf_counter()
    for e in range(epochs):
        order = put(epoch_permutation(n, seed=recipe["seed"], epoch=e).astype(np.int32))
        params, sums = epoch_fn(params, X, y, order)
        test_acc = int(eval_fn(params, X_test, y_test)) / X_test.shape[0]
    seconds = time.perf_counter() - start
    return {
        "seconds_train": seconds,
        "seconds_compile": seconds_compile,
        "test_acc": test_acc,
        "train_loss": float(sums[0]) / n,
        "train_acc": int(sums[1]) / n,
        "jax": jax.__version__,
        "device": str(dev),
    }
