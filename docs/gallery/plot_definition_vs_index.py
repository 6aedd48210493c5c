"""
Cross-entropy: the definition against index picking
===================================================

The chapter's exercise 2. Cross-entropy's definition is ``-sum_j t_j log p_j`` over every
class ``j``: it needs an ``(n, k)`` target matrix ``t``, which can hold soft labels (label
smoothing, say). With one-hot targets only one term per row is not zero, so the book picks
that entry by index instead. :func:`softreg.ops.cross_entropy` picks by index;
:func:`softreg.ops.cross_entropy_soft` follows the definition. They give the same numbers;
this example measures what each costs in time and memory as the number of classes grows.
"""

# %%
# The same numbers
# ----------------
# Random logits for 8192 rows of 10 classes. With one-hot targets the two agree to float32
# rounding, and with smoothed labels too (``label_smoothing`` against
# :func:`~softreg.ops.smooth_labels`).
import timeit

import numpy as np
from matplotlib import pyplot as plt

from softreg import ops

rng = np.random.default_rng(0)
n = 8192
logits = rng.normal(size=(n, 10)).astype(np.float32)
y = rng.integers(0, 10, size=n)
print("one-hot: ", ops.cross_entropy(logits, y), ops.cross_entropy_soft(logits, ops.one_hot(y, 10)))
print(
    "smoothed:",
    ops.cross_entropy(logits, y, label_smoothing=0.1),
    ops.cross_entropy_soft(logits, ops.smooth_labels(y, 10, 0.1)),
)

# %%
# Time and memory
# ---------------
# Each timing is the median of 7 rounds; a round times 3 calls of each method in turn, so
# drift in the machine's load hits both alike. The definition's cost includes building the
# one-hot matrix from the labels, as a caller holding labels must; its extra memory is that
# ``(n, k)`` float32 matrix, ``4 n k`` bytes, next to the ``(n,)`` labels index picking reads.


def median_ms(*fns, rounds=7, calls=3):
    """Median per-call time of each function in milliseconds, over interleaved rounds."""
    times = [[timeit.timeit(fn, number=calls) / calls for fn in fns] for _ in range(rounds)]
    return np.median(np.asarray(times), axis=0) * 1e3


n = 4096
classes = [10, 100, 1000]
index_ms, definition_ms, onehot_mb = [], [], []
for k in classes:
    z = rng.normal(size=(n, k)).astype(np.float32)
    labels = rng.integers(0, k, size=n)
    by_index, by_definition = median_ms(
        lambda z=z, labels=labels: ops.cross_entropy(z, labels),
        lambda z=z, labels=labels, k=k: ops.cross_entropy_soft(z, ops.one_hot(labels, k)),
    )
    index_ms.append(by_index)
    definition_ms.append(by_definition)
    onehot_mb.append(n * k * 4 / 1e6)
    print(
        f"k={k:>5}: index picking {by_index:7.2f} ms, definition {by_definition:7.2f} ms "
        f"({by_definition / by_index:.1f}x), one-hot targets {onehot_mb[-1]:5.1f} MB"
    )

fig, (ax_time, ax_mem) = plt.subplots(1, 2, figsize=(9, 3.5), layout="constrained")
ax_time.loglog(classes, index_ms, "o-", label="index picking: cross_entropy")
ax_time.loglog(classes, definition_ms, "s-", label="definition: cross_entropy_soft(one_hot)")
ax_time.set(xlabel="classes k", ylabel="ms per call (median)", title=f"time, n = {n}")
ax_time.legend(fontsize="small")
ax_mem.loglog(classes, onehot_mb, "s-", color="C1")
ax_mem.set(xlabel="classes k", ylabel="MB", title="extra memory of the definition (targets)")
plt.show()

# %%
# Both compute the log-softmax of the whole ``(n, k)`` logits. The definition adds work of
# the same size on top: it builds the one-hot matrix, checks it is a probability matrix,
# multiplies it with the log-probabilities and sums over ``k``, where index picking reads one
# entry per row. The ratios printed above are this run's; on a shared machine they move from
# run to run, which is why each is a median of interleaved rounds
# (``bench/bench_definition.py`` measures more sizes, and PyTorch). For one-hot labels,
# pick by index; keep the definition for soft targets.
