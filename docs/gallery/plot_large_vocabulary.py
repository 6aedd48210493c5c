"""
A large vocabulary: chunked and sampled softmax
===============================================

In next-word prediction every word of the vocabulary is a class, and the output layer's
``(n, V)`` logits and their gradient soon fill the memory. :mod:`softreg.vocab` trains the
same softmax regression without forming them: exactly, streaming the classes in chunks
(``TrainConfig(chunk_size=...)``), or approximately, with sampled softmax over a few drawn
classes (``TrainConfig(sampled=...)``). The data are synthetic Zipf-distributed tokens from
:func:`softreg.data.tokens.make_next_token`, small here: 8,192 training pairs and a
vocabulary of 8,192 words.
"""

# %%
# The same loss, chunk by chunk
# -----------------------------
# :func:`~softreg.vocab.linear_cross_entropy` streams the classes; its loss equals the one
# from the full logits, while its largest temporary is ``(n, chunk_size)``.
import time

import numpy as np
from matplotlib import pyplot as plt

import softreg
from softreg import ops, vocab
from softreg.data.tokens import make_next_token

data = make_next_token(8192, 2048, vocab_size=8192, seed=0)
rng = np.random.default_rng(0)
W = (0.01 * rng.normal(size=(data.X_train.shape[1], data.vocab_size))).astype(np.float32)
b = np.zeros(data.vocab_size, dtype=np.float32)
h, y = data.X_test, data.y_test
full = ops.cross_entropy(h @ W + b, y)
chunked = vocab.linear_cross_entropy(h, W, b, y, chunk_size=1024)
print(f"full logits: {full:.6f}   chunks of 1024: {float(chunked):.6f}")
print(
    f"largest temporary: {h.shape[0] * data.vocab_size * 4 / 1e6:.0f} MB for the logits, "
    f"{h.shape[0] * 1024 * 4 / 1e6:.0f} MB for one chunk"
)

# %%
# Training both ways
# ------------------
# Softmax regression, batch 256, SGD with lr 5 and momentum 0.9, 3 epochs: once on the exact
# loss in chunks of 1024 classes, once on sampled softmax with 256 classes drawn per step.
# Both report the exact test loss after each epoch, next to three reference points: a
# uniform guess (``log V``, where training starts), the best loss without looking at the
# input (the unigram entropy) and the best loss there is (the conditional entropy).
runs = {"exact, chunks of 1024": {"chunk_size": 1024}, "sampled, 256 classes": {"sampled": 256}}
curves, seconds = {}, {}
for name, option in runs.items():
    model = softreg.SoftmaxRegression(
        num_inputs=data.X_train.shape[1], num_outputs=data.vocab_size, sigma=0.0
    )
    config = softreg.TrainConfig(
        dataset="synthetic", epochs=3, batch_size=256, lr=5.0, momentum=0.9, log_every=0, **option
    )
    start = time.perf_counter()
    result = softreg.fit(model, (data.X_train, data.y_train), (data.X_test, data.y_test), config)
    seconds[name] = time.perf_counter() - start
    curves[name] = result.history.column("test_loss")
    print(f"{name}: test loss {', '.join(f'{x:.3f}' for x in curves[name])}; {seconds[name]:.1f} s")

print(
    f"reference: uniform guess {data.entropy_uniform:.3f}, best without the input "
    f"{data.entropy_unigram:.3f}, best possible {data.entropy_conditional:.3f}"
)

fig, (ax_loss, ax_time) = plt.subplots(1, 2, figsize=(9, 3.5), layout="constrained")
for name, curve in curves.items():
    ax_loss.plot(range(1, len(curve) + 1), curve, "o-", label=name)
for value, label, style in (
    (data.entropy_uniform, "uniform guess", ":"),
    (data.entropy_unigram, "best without the input", "--"),
    (data.entropy_conditional, "best possible", "-."),
):
    ax_loss.axhline(value, color="grey", ls=style, label=label)
ax_loss.set(xlabel="epoch", ylabel="exact test loss (nats)", title=f"V = {data.vocab_size}")
ax_loss.set_xticks(range(1, 4))
ax_loss.legend(fontsize="small")
ax_time.barh(list(seconds), list(seconds.values()), color=["C0", "C1"])
ax_time.set(xlabel="training time, s (this run)", title="3 epochs")
plt.show()

# %%
# Sampled softmax computes ``n * (S + 1)`` logits a step instead of ``n * V``; the exact
# loss computes every logit twice (once for the log-sum-exp, once for the gradient), a chunk
# at a time. ``examples/next_token.py`` runs the same comparison at V = 65,536.
