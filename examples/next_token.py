#!/usr/bin/env python
"""Next-token prediction with a 65,536-word vocabulary: softmax regression trained on the exact
loss in chunks of classes (no batch x vocabulary logits) and on sampled softmax.

The data are Zipf-distributed synthetic tokens (softreg.data.tokens.make_next_token): the next
token depends on the previous token's cluster, which the features encode. Both runs report the
exact cross-entropy on held-out pairs after every epoch, next to three reference points: a
uniform guess (log V, where training starts), the best loss without the input (the unigram
entropy) and the best loss there is (the conditional entropy).

    .venv/bin/python examples/next_token.py            # about 30-60 s on 2 CPU cores
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import softreg
from softreg import sampling, vocab
from softreg.data.tokens import make_next_token


def train(data, config: softreg.TrainConfig) -> tuple[softreg.FitResult, float]:
    model = softreg.SoftmaxRegression(num_inputs=data.X_train.shape[1],
                                      num_outputs=data.vocab_size, sigma=0.0)
    start = time.perf_counter()
    result = softreg.fit(model, (data.X_train, data.y_train), (data.X_test, data.y_test), config)
    return result, time.perf_counter() - start


def sampled_estimate(data, params, num_sampled: int, draws: int = 10) -> float:
    """The sampled softmax's estimate of the test loss with the training proposal, averaged
    over ``draws`` draws."""
    probs = sampling.unigram_probs(data.y_train, data.vocab_size)
    log_q = np.log(probs).astype(np.float32)
    rng = np.random.default_rng(0)
    return float(np.mean([
        vocab.sampled_softmax_with_grad(
            data.X_test, params["W"], params["b"], data.y_test,
            vocab.SampledClasses(sampling.draw_classes(probs, num_sampled, rng), log_q),
        )[0].mean() for _ in range(draws)]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab", type=int, default=65536, help="classes (default: 65536)")
    parser.add_argument("--train", type=int, default=16384, help="training pairs")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--chunk-size", type=int, default=4096)
    parser.add_argument("--sampled", type=int, default=1024, help="classes drawn per step")
    parser.add_argument("--lr", type=float, default=5.0)
    args = parser.parse_args(argv)

    data = make_next_token(args.train, 4096, vocab_size=args.vocab, seed=0)
    print(f"{args.train} training / 4096 test pairs, V = {data.vocab_size} classes, "
          f"{data.X_train.shape[1]} features; batch 256, SGD lr {args.lr:g}, momentum 0.9")
    print(f"reference losses: uniform guess {data.entropy_uniform:.3f}, best without the "
          f"input {data.entropy_unigram:.3f}, best possible {data.entropy_conditional:.3f}")
    base = {"dataset": "synthetic", "epochs": args.epochs, "batch_size": 256, "lr": args.lr,
            "momentum": 0.9, "log_every": 0}
    runs = {f"exact, chunks of {args.chunk_size}": {"chunk_size": args.chunk_size},
            f"sampled softmax, {args.sampled} classes": {"sampled": args.sampled}}
    print(f"\n{'run':<34}{'test loss after each epoch (exact)':<40}{'train s':>8}")
    results = {}
    for name, option in runs.items():
        result, seconds = train(data, softreg.TrainConfig(**base, **option))
        results[name] = result
        curve = "  ".join(f"{loss:.3f}" for loss in result.history.column("test_loss"))
        print(f"{name:<34}{curve:<40}{seconds:>8.1f}", flush=True)
    params = results[f"sampled softmax, {args.sampled} classes"].params
    final = results[f"sampled softmax, {args.sampled} classes"].history.final
    print(f"\nthe sampled run's final model: exact test loss {final.test_loss:.4f}; the sampled "
          f"softmax's estimate of it, mean of 10 draws: "
          f"{sampled_estimate(data, params, args.sampled):.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
