#!/usr/bin/env python
"""Benchmark the book's softmax-regression recipe: softreg against a plain NumPy loop (and the
book's PyTorch pipeline when torch is installed).

Rows, each run in a fresh Python process of its own so that import costs and peak memory are
separated (the worker is this script with ``--worker ROW``; it prints one JSON line):

    floor-numpy   a lower bound: only the gathers, matmuls and updates any NumPy loop must do
    plain-numpy   a hand-written NumPy minibatch loop doing the book's arithmetic
    softreg-fit   softreg.fit with the book's TrainConfig (library call, no callbacks), NumPy,
                  with kernel="array" (the array-API path) where TrainConfig has a kernel field
    softreg-fused the same call with kernel="fused" (numba's fused CPU step; skipped when
                  TrainConfig has no kernel field or numba is missing)
    softreg-torch the same call with --backend torch (skipped when torch is missing)
    softreg-jax   the same call with --backend jax (jit compile time reported apart)
    jax-scan      the recipe as a strong JAX user writes it (bench/jax_scan.py): uint8 images
                  on the device, one jitted lax.scan per epoch with donated parameters,
                  softreg's initial W and data order; compile time reported apart
    softreg-tf    the same call with --backend tensorflow (tf.function; compile time apart)
    softreg-cli   the whole ``softreg train --quiet`` command, plots and all (the default
                  kernel and backend, whatever the command picks)
    book-pytorch  d2l 3.6 from scratch: per-example ToTensor-like conversion in a Dataset,
                  DataLoader(batch 256, shuffle, 4 workers), autograd, the book's sgd;
                  from softreg's initial W, in softreg's data order (same model, same cost)
    torch-concise, torch-inmemory, sklearn-logreg[-best], sklearn-sgd, softreg-best-linear:
                  the peers and the best-linear recipe (see bench/README.md)

All rows train on the same features (softreg.load_dataset): the softreg.fit rows, jax-scan and
the book's rows on the uint8 images converted as ToTensor converts them (softreg.fit as
``softreg train`` does, on ``data.train_inputs``), the others on the same float32 features
``data.X_train``; Fashion-MNIST, W ~ N(0, 0.01),
b = 0, minibatch SGD lr 0.1, batch 256, with the test accuracy computed after every epoch.

``--device cuda`` (or ``gpu``) runs the rows that can take a device (DEVICE_ROWS: softreg-torch,
softreg-jax, jax-scan, book-pytorch) on the first GPU and reports the others as skipped.

Per row: training seconds (the training loop including the per-epoch test evaluation; median
and min over --repeat runs), whole-process wall seconds (interpreter start to exit, as seen by
this script), peak RSS (ru_maxrss) and final test accuracy. BLAS threads are left at the
machine's default: this measures what a user gets.

    SOFTREG_DATA=../shared/data .venv/bin/python bench/bench_recipe.py
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _harness import (
    add_data_dir_option,
    add_json_option,
    add_limit_option,
    data_dir,
    goal,
    machine_info,
    missing_libraries,
    peak_rss_mb,
    positive_int,
    print_goals,
    report_header,
    run_process,
    run_rounds,
    run_worker,
    warn_if_busy,
    write_report,
)

from softreg.data.batching import epoch_permutation

ROWS = (
    "floor-numpy",
    "plain-numpy",
    "softreg-fit",
    "softreg-fused",
    "softreg-torch",
    "softreg-jax",
    "jax-scan",
    "softreg-tf",
    "softreg-cli",
    "book-pytorch",
    "torch-concise",
    "torch-inmemory",
    "sklearn-logreg",
    "sklearn-logreg-best",
    "sklearn-sgd",
    "softreg-best-linear",
)
# Rows that take tens of seconds: run once per benchmark, whatever --repeat says.
SLOW_ROWS = (
    "book-pytorch",
    "torch-concise",
    "sklearn-logreg",
    "sklearn-logreg-best",
    "sklearn-sgd",
)
# softreg.fit rows: the backend each one trains on
FIT_BACKENDS = {
    "softreg-fit": "numpy",
    "softreg-fused": "numpy",
    "softreg-torch": "torch",
    "softreg-jax": "jax",
    "softreg-tf": "tensorflow",
}
# softreg.fit rows that ask for a kernel (where TrainConfig has the field): row -> kernel
FIT_KERNELS = {"softreg-fit": "array", "softreg-fused": "fused"}
# rows that train with TrainConfig(kernel=...) only: skipped where the field does not exist
NEEDS_KERNEL = ("softreg-fused",)
# rows that can run on a GPU (--device cuda/gpu); the others run on the CPU only
DEVICE_ROWS = ("softreg-torch", "softreg-jax", "jax-scan", "book-pytorch")
DEVICES = ("cpu", "cuda", "gpu")
# rows that need a library besides NumPy: row -> module
NEEDS = {
    "softreg-fused": "numba",
    "softreg-torch": "torch",
    "softreg-jax": "jax",
    "softreg-tf": "tensorflow",
    "jax-scan": "jax",
    "book-pytorch": "torch",
    "torch-concise": "torch",
    "torch-inmemory": "torch",
    "sklearn-logreg": "sklearn",
    "sklearn-logreg-best": "sklearn",
    "sklearn-sgd": "sklearn",
}
DATASETS = ("fashion-mnist", "mnist")
DATASET = "fashion-mnist"  # set from --dataset in main()
RECIPE = {"batch_size": 256, "lr": 0.1, "seed": 0, "sigma": 0.01}
GOAL_BOOK_SPEEDUP = 80.0  # default train and fastest fit row at least 80x faster than the book
# softreg.fit rows, candidates for "the fastest softreg.fit row"
FIT_ROWS = ("softreg-fit", "softreg-fused", "softreg-torch", "softreg-jax", "softreg-tf")
GOAL_ACC_PP = 0.5  # ... at the book's test accuracy within 0.5 percentage points
GOAL_RSS_FACTOR = 2.0  # peak RSS at most 2x the float32 dataset
GOAL_BEST_LINEAR_ACC = 0.850  # Fashion-MNIST test accuracy of the best-linear recipe
GOAL_BEST_LINEAR_SPEEDUP = 10.0  # ... at least 10x faster than LogisticRegression at its best
# ratios of training times the report gives besides each row's over softreg-fit's
PEER_RATIOS = (("softreg-jax", "jax-scan"), ("softreg-torch", "torch-inmemory"))
DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "recipe.json"
# The standard uncompressed IDX names (softreg's loader accepts them without .gz).
IDX_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


# --------------------------------------------------------------------------------------------
# Workers: each runs in its own process and prints one JSON object as its last stdout line.


def load_data(data_dir: str | None):
    """Load the dataset (uint8 images in memory) and return it with the seconds it took."""
    import softreg

    t = time.perf_counter()
    data = softreg.load_dataset(DATASET, data_dir=data_dir, download=False)
    return data, time.perf_counter() - t


def features(data, limit: int | None) -> tuple[tuple, tuple]:
    """The float32 features ``(X_train, y_train), (X_test, y_test)`` (made on first use: the
    rows that train on the stored images never hold them)."""
    return (data.X_train[:limit], data.y_train[:limit]), (data.X_test[:limit], data.y_test[:limit])


def stored_inputs(data, limit: int | None) -> tuple[tuple, tuple]:
    """The inputs as stored, as ``softreg train`` trains on them: uint8 images."""
    return (
        (data.train_inputs[:limit], data.y_train[:limit]),
        (data.test_inputs[:limit], data.y_test[:limit]),
    )


def train_plain_numpy(train, test, epochs: int) -> dict:
    """The book's recipe as a straightforward NumPy loop.

    The initial weights and each epoch's order are drawn as softreg draws them (a Generator
    seeded with ``seed``, then one seeded with ``(seed, epoch)`` per epoch), so the two rows
    should reach the same accuracy: a check that they really do the same work.
    """
    X, y = train
    X_test, y_test = test
    lr, batch_size, seed = RECIPE["lr"], RECIPE["batch_size"], RECIPE["seed"]
    n, num_inputs = X.shape
    num_classes = 10
    W = np.random.default_rng(seed).normal(0.0, RECIPE["sigma"], size=(num_inputs, num_classes))
    W = W.astype(np.float32)
    b = np.zeros(num_classes, dtype=np.float32)
    eye = np.eye(num_classes, dtype=np.float32)

    start = time.perf_counter()
    for epoch in range(epochs):
        order = np.random.default_rng((seed, epoch)).permutation(n)
        loss_sum, correct = 0.0, 0
        for begin in range(0, n, batch_size):
            idx = order[begin : begin + batch_size]
            Xb, yb = X[idx], y[idx]
            logits = Xb @ W + b
            shifted = logits - logits.max(axis=1, keepdims=True)
            exp = np.exp(shifted)
            sum_exp = exp.sum(axis=1, keepdims=True)
            p = exp / sum_exp
            onehot = eye[yb]
            loss_sum += float(np.sum(np.log(sum_exp[:, 0]) - np.sum(shifted * onehot, axis=1)))
            correct += int(np.sum(logits.argmax(axis=1) == yb))
            dlogits = (p - onehot) / len(idx)
            W -= lr * (Xb.T @ dlogits)
            b -= lr * dlogits.sum(axis=0)
        test_acc = float(np.mean((X_test @ W + b).argmax(axis=1) == y_test))
    seconds = time.perf_counter() - start
    return {
        "seconds_train": seconds,
        "test_acc": test_acc,
        "train_loss": loss_sum / n,
        "train_acc": correct / n,
    }


def train_floor_numpy(train, test, epochs: int) -> dict:
    """A lower bound on any NumPy implementation of the recipe: only the work whose size the
    data fixes. Per batch the gather of its rows, the forward and the backward matmul and the
    update of W and b; per epoch the permutation and the test set's forward matmul. Left out:
    everything on the 256 x 10 logits (softmax, loss, its gradient, the counts), for which a
    constant stands in, so nothing is learnt (no test accuracy)."""
    X, y = train
    X_test = test[0]
    lr, batch_size, seed = RECIPE["lr"], RECIPE["batch_size"], RECIPE["seed"]
    n, num_inputs = X.shape
    W = np.zeros((num_inputs, 10), dtype=np.float32)
    b = np.zeros(10, dtype=np.float32)
    dlogits = np.full((batch_size, 10), 1e-6, dtype=np.float32)
    start = time.perf_counter()
    for epoch in range(epochs):
        order = np.random.default_rng((seed, epoch)).permutation(n)
        for begin in range(0, n, batch_size):
            idx = order[begin : begin + batch_size]
            Xb, _ = X[idx], y[idx]
            _ = Xb @ W + b
            W -= lr * (dlogits[: len(idx)].T @ Xb).T
            b -= lr * dlogits[0]
        _ = X_test @ W + b
    return {"seconds_train": time.perf_counter() - start, "test_acc": None}


def has_kernel_field() -> bool:
    """Whether this softreg's TrainConfig has a ``kernel`` field (the fused CPU step)."""
    import dataclasses

    import softreg

    return any(f.name == "kernel" for f in dataclasses.fields(softreg.TrainConfig))


def train_softreg_fit(
    train, test, epochs: int, backend: str, *, kernel: str | None = None, device: str = "cpu"
) -> dict:
    """softreg.fit with the book's TrainConfig on ``backend`` and ``device``, with ``kernel``
    when given (None: TrainConfig's default, or a softreg without the field)."""
    import softreg

    extra = {} if kernel is None else {"kernel": kernel}
    model = softreg.SoftmaxRegression(
        num_inputs=int(np.prod(train[0].shape[1:])), num_outputs=10, sigma=RECIPE["sigma"]
    )
    config = softreg.TrainConfig(
        dataset=DATASET,
        epochs=epochs,
        batch_size=RECIPE["batch_size"],
        lr=RECIPE["lr"],
        seed=RECIPE["seed"],
        sigma=RECIPE["sigma"],
        backend=backend,
        device=device,
        **extra,
    )
    result = softreg.fit(model, train, test, config)
    final = result.history.final
    return {
        "seconds_train": result.seconds_train,
        "test_acc": final.test_acc,
        "train_loss": final.train_loss,
        "train_acc": final.train_acc,
        "seconds_compile": result.seconds_compile,
        "backend": backend,
        "device": device,
        "kernel": getattr(config, "kernel", None),
        "versions": softreg.backend.versions(backend),
    }


def book_dataset_class():
    """torchvision's ``FashionMNIST``/``MNIST`` dataset with ``transforms.ToTensor()``,
    reproduced (torchvision has no wheel for this torch build): the images are kept as a uint8
    tensor; ``__getitem__`` makes a PIL image of one (``Image.fromarray(img.numpy(),
    mode="L")``) and ``ToTensor`` turns it back into a (1, 28, 28) float32 tensor / 255 via
    ``np.array(pic, copy=True)``, ``view``, ``permute``, ``contiguous``, ``div(255)``."""
    import torch
    from PIL import Image
    from torch.utils import data as torch_data

    def to_tensor(pic):  # torchvision.transforms.functional.to_tensor for a mode "L" image
        img = torch.from_numpy(np.array(pic, np.uint8, copy=True))
        img = img.view(pic.size[1], pic.size[0], 1).permute((2, 0, 1)).contiguous()
        return img.to(dtype=torch.get_default_dtype()).div(255)

    class VisionMNIST(torch_data.Dataset):
        def __init__(self, images, labels):
            self.data = torch.from_numpy(np.array(images, dtype=np.uint8))  # writable copy
            self.targets = torch.from_numpy(np.asarray(labels, dtype=np.int64))

        def __len__(self):
            return len(self.data)

        def __getitem__(self, index):
            img, target = self.data[index], int(self.targets[index])
            img = Image.fromarray(img.numpy(), mode="L")
            return to_tensor(img), target

    return VisionMNIST


def book_loaders(data, limit: int | None, *, softreg_order: bool = False):
    """d2l's ``load_data_fashion_mnist(256)``: shuffled training and ordered test loaders with
    4 workers each. With ``softreg_order`` the training loader visits the examples in
    softreg's order (``epoch_permutation(n, seed, epoch)`` for the k-th pass) instead of
    ``shuffle=True``'s: a sampler of its own, at the same cost."""
    from torch.utils import data as torch_data

    dataset = book_dataset_class()
    batch_size, workers = RECIPE["batch_size"], 4
    train_set = dataset(data.train_images[:limit], data.train_labels[:limit])
    order = {"sampler": SoftregOrder(len(train_set))} if softreg_order else {"shuffle": True}
    train_iter = torch_data.DataLoader(train_set, batch_size, num_workers=workers, **order)
    test_iter = torch_data.DataLoader(
        dataset(data.test_images[:limit], data.test_labels[:limit]),
        batch_size,
        shuffle=False,
        num_workers=workers,
    )
    return train_iter, test_iter


class SoftregOrder:
    """A DataLoader sampler: pass k visits ``range(n)`` in the order softreg's epoch k does."""

    def __init__(self, n: int):
        self.n, self.epoch = n, 0

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        order = epoch_permutation(self.n, seed=RECIPE["seed"], epoch=self.epoch)
        self.epoch += 1
        return iter(order.tolist())


def train_torch_concise(data, limit: int | None, epochs: int) -> dict:
    """d2l 3.7, the concise implementation: ``nn.Sequential(nn.Flatten(), nn.Linear(784, 10))``
    with weights ~ N(0, 0.01), ``nn.CrossEntropyLoss(reduction="none")``, ``torch.optim.SGD``,
    on the same data pipeline as the from-scratch version."""
    import torch
    from torch import nn

    torch.manual_seed(RECIPE["seed"])
    train_iter, test_iter = book_loaders(data, limit)
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    nn.init.normal_(net[1].weight, std=RECIPE["sigma"])
    nn.init.zeros_(net[1].bias)
    loss = nn.CrossEntropyLoss(reduction="none")
    trainer = torch.optim.SGD(net.parameters(), lr=RECIPE["lr"])
    start = time.perf_counter()
    for _epoch in range(epochs):
        net.train()
        loss_sum = correct = total = 0.0
        for X, y in train_iter:
            y_hat = net(X)
            l = loss(y_hat, y)  # noqa: E741 - the book's name
            trainer.zero_grad()
            l.mean().backward()
            trainer.step()
            loss_sum += float(l.sum())
            correct += float((y_hat.argmax(axis=1) == y).sum())
            total += y.numel()
        net.eval()
        with torch.no_grad():
            hits = sum(float((net(X).argmax(axis=1) == y).sum()) for X, y in test_iter)
        test_acc = hits / len(test_iter.dataset)
    return {
        "seconds_train": time.perf_counter() - start,
        "test_acc": test_acc,
        "train_loss": loss_sum / total,
        "train_acc": correct / total,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def train_torch_inmemory(train, test, epochs: int) -> dict:
    """A careful PyTorch loop: the float32 tensors in memory (shared with NumPy, no copy),
    one ``randperm``-style index per batch, ``F.cross_entropy`` and ``torch.optim.SGD``,
    the test accuracy after every epoch. What an experienced PyTorch user would write."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(RECIPE["seed"])
    X, y = (torch.from_numpy(np.asarray(a)) for a in train)
    X_test, y_test = (torch.from_numpy(np.asarray(a)) for a in test)
    y, y_test = y.long(), y_test.long()
    W = (torch.randn(X.shape[1], 10) * RECIPE["sigma"]).requires_grad_()
    b = torch.zeros(10, requires_grad=True)
    opt = torch.optim.SGD([W, b], lr=RECIPE["lr"])
    batch_size, n = RECIPE["batch_size"], X.shape[0]
    start = time.perf_counter()
    for _epoch in range(epochs):
        loss_sum = torch.zeros(())
        correct = torch.zeros((), dtype=torch.long)
        for idx in torch.randperm(n).split(batch_size):
            Xb, yb = X[idx], y[idx]
            logits = Xb @ W + b
            loss = F.cross_entropy(logits, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                loss_sum += loss.detach() * len(idx)
                correct += (logits.argmax(1) == yb).sum()
        with torch.no_grad():
            test_acc = float(((X_test @ W + b).argmax(1) == y_test).float().mean())
    return {
        "seconds_train": time.perf_counter() - start,
        "test_acc": test_acc,
        "train_loss": float(loss_sum) / n,
        "train_acc": int(correct) / n,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def train_sklearn(train, test, row: str) -> dict:
    """scikit-learn's linear classifiers on the same float32 pixels in [0, 1].

    sklearn-logreg       LogisticRegression() as it comes: lbfgs, multinomial, C=1, 100 iterations
    sklearn-logreg-best  the same run to convergence (max_iter=2000): its best accuracy here
    sklearn-sgd          SGDClassifier(loss="log_loss") for 10 epochs (one-vs-rest, optimal lr)
    """
    import warnings

    import sklearn
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression, SGDClassifier

    if row == "sklearn-sgd":
        clf = SGDClassifier(loss="log_loss", max_iter=10, tol=None, random_state=RECIPE["seed"])
    else:
        clf = LogisticRegression(max_iter=100 if row == "sklearn-logreg" else 2000)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 100 iterations do not converge
        clf.fit(*train)
    seconds = time.perf_counter() - start
    return {
        "seconds_train": seconds,
        "test_acc": float(clf.score(*test)),
        "train_acc": float(clf.score(*train)),
        "n_iter": np.asarray(clf.n_iter_).tolist(),
        "sklearn": sklearn.__version__,
    }


def train_best_linear(train, test) -> dict:
    """softreg's best-linear recipe (softreg.recipes), timed from raw pixels: the per-feature
    statistics (make_model), the standardisation (fit applies the model's, once) and
    training."""
    import softreg
    from softreg.recipes import recipe_config

    config = recipe_config("best-linear", dataset=DATASET)
    start = time.perf_counter()
    model = softreg.make_model(config, train[0], 10)
    seconds_prepare = time.perf_counter() - start
    result = softreg.fit(model, train, test, config)
    final = result.history.final
    return {
        "seconds_train": seconds_prepare + result.seconds_train,
        "seconds_prepare": seconds_prepare,
        "test_acc": final.test_acc,
        "test_acc_evaluate": softreg.evaluate(model, result.params, *test).accuracy,
        "train_loss": final.train_loss,
        "train_acc": final.train_acc,
        "config": config.to_dict(),
    }


def train_book_pytorch(data, limit: int | None, epochs: int, device: str = "cpu") -> dict:
    """d2l 3.6 (softmax regression from scratch), PyTorch flavour, as the book runs it.

    torchvision's FashionMNIST + transforms.ToTensor() turn one uint8 image into a (1, 28, 28)
    float32 tensor in [0, 1] per __getitem__ call, through a PIL image (see
    :func:`book_dataset_class`); the DataLoader batches 256 of them with 4 worker processes,
    started afresh for every pass, as d2l's ``load_data_fashion_mnist`` sets it up. softmax,
    cross_entropy and sgd are the book's, naive softmax included.

    Two things are softreg's, at no cost to the pipeline: the initial ``W`` (the same
    N(0, 0.01) draw) and the order of the examples (:class:`SoftregOrder`). So the book's
    program trains the model softreg trains, and a difference in test accuracy is one of
    arithmetic (autograd, float32 rounding), not of a seed: with seeds of their own, single
    runs of this recipe differ by up to a point.

    With ``device`` "cuda" (or "gpu"), ``W`` and ``b`` live on the GPU and each batch is
    moved there (``X.to(device)``), as d2l's later chapters do; the pipeline is unchanged.
    """
    import torch

    lr, num_workers = RECIPE["lr"], 4
    dev = torch.device("cuda" if device in ("cuda", "gpu") else "cpu")
    train_iter, test_iter = book_loaders(data, limit, softreg_order=True)

    num_inputs, num_outputs = 784, 10
    W0 = np.random.default_rng(RECIPE["seed"]).normal(
        0.0, RECIPE["sigma"], size=(num_inputs, num_outputs)
    )
    W = torch.tensor(W0.astype(np.float32), device=dev, requires_grad=True)
    b = torch.zeros(num_outputs, device=dev, requires_grad=True)

    def softmax(X):
        X_exp = torch.exp(X)
        partition = X_exp.sum(1, keepdim=True)
        return X_exp / partition

    def net(X):
        return softmax(torch.matmul(X.reshape((-1, W.shape[0])), W) + b)

    def cross_entropy(y_hat, y):
        return -torch.log(y_hat[range(len(y_hat)), y])

    def accuracy(y_hat, y):
        if len(y_hat.shape) > 1 and y_hat.shape[1] > 1:
            y_hat = y_hat.argmax(axis=1)
        cmp = y_hat.type(y.dtype) == y
        return float(cmp.type(y.dtype).sum())

    def sgd(params, lr, batch_size):
        with torch.no_grad():
            for param in params:
                param -= lr * param.grad / batch_size
                param.grad.zero_()

    def evaluate_accuracy(data_iter):
        correct = total = 0.0
        with torch.no_grad():
            for X, y in data_iter:
                X, y = X.to(dev), y.to(dev)
                correct += accuracy(net(X), y)
                total += y.numel()
        return correct / total

    start = time.perf_counter()
    for _epoch in range(epochs):
        loss_sum = correct = total = 0.0
        for X, y in train_iter:
            X, y = X.to(dev), y.to(dev)
            y_hat = net(X)
            loss = cross_entropy(y_hat, y)
            loss.sum().backward()
            sgd([W, b], lr, X.shape[0])
            loss_sum += float(loss.sum())
            correct += accuracy(y_hat, y)
            total += y.numel()
        test_acc = evaluate_accuracy(test_iter)
    seconds = time.perf_counter() - start
    return {
        "seconds_train": seconds,
        "test_acc": test_acc,
        "train_loss": loss_sum / total,
        "train_acc": correct / total,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "dataloader_workers": num_workers,
        "device": str(dev),
    }


def worker(
    row: str, epochs: int, limit: int | None, data_dir: str | None, device: str = "cpu"
) -> dict:
    data, seconds_load = load_data(data_dir)
    if row == "floor-numpy":
        out = train_floor_numpy(*features(data, limit), epochs)
    elif row == "plain-numpy":
        out = train_plain_numpy(*features(data, limit), epochs)
    elif row in FIT_BACKENDS:
        kernel = FIT_KERNELS.get(row) if has_kernel_field() else None
        out = train_softreg_fit(
            *stored_inputs(data, limit), epochs, FIT_BACKENDS[row], kernel=kernel, device=device
        )
    elif row == "jax-scan":
        import jax_scan

        out = jax_scan.train(data, limit, epochs, RECIPE, device)
    elif row == "book-pytorch":
        out = train_book_pytorch(data, limit, epochs, device)
    elif row == "torch-concise":
        out = train_torch_concise(data, limit, epochs)
    elif row == "torch-inmemory":
        out = train_torch_inmemory(*features(data, limit), epochs)
    elif row.startswith("sklearn-"):
        out = train_sklearn(*features(data, limit), row)
    elif row == "softreg-best-linear":
        out = train_best_linear(*features(data, limit))
    else:
        raise ValueError(f"no worker for row {row!r}")
    out.update(
        seconds_load_data=seconds_load,
        peak_rss_mb=peak_rss_mb(),
        peak_rss_children_mb=peak_rss_mb(resource.RUSAGE_CHILDREN),
        n_train=len(data.y_train[:limit]),
        n_test=len(data.y_test[:limit]),
        data_source=str(data.source),
    )
    return out


# --------------------------------------------------------------------------------------------
# Driver.


def worker_options(args: argparse.Namespace) -> dict:
    """The flags a worker gets from this run: --epochs, --dataset, --limit, --data-dir,
    --device."""
    return {
        "--epochs": args.epochs,
        "--dataset": args.dataset,
        "--limit": args.limit,
        "--data-dir": args.data_dir,
        "--device": args.device,
    }


def run_cli(args: argparse.Namespace, cli_data_dir: str | None) -> dict:
    """The whole ``softreg train`` command in a fresh process; numbers from its metrics.json."""
    with tempfile.TemporaryDirectory(prefix="softreg-bench-") as tmp:
        out = Path(tmp) / "run"
        cmd = [
            sys.executable,
            "-m",
            "softreg",
            "train",
            "--out",
            str(out),
            "--dataset",
            args.dataset,
            "--epochs",
            str(args.epochs),
            "--batch-size",
            str(RECIPE["batch_size"]),
            "--lr",
            str(RECIPE["lr"]),
            "--seed",
            str(RECIPE["seed"]),
            "--quiet",
        ]
        if cli_data_dir is not None:
            cmd += ["--data-dir", cli_data_dir]
        proc = run_process(cmd)
        if proc["rc"] != 0:
            return {"ok": False, "rc": proc["rc"], "stderr_tail": proc["stderr"][-2000:]}
        metrics = json.loads((out / "metrics.json").read_text())
    return {
        "ok": True,
        "seconds_train": metrics["seconds_train"],
        "test_acc": metrics["test_acc"],
        "train_loss": metrics["train_loss"],
        "train_acc": metrics["train_acc"],
        "wall_seconds": proc["wall_seconds"],
        # ru_maxrss of the CLI process itself (wait4), the same measure the workers take
        "peak_rss_mb": proc["process_peak_rss_mb"],
        "process_peak_rss_mb": proc["process_peak_rss_mb"],
        "metrics_seconds_total": metrics.get("seconds_total"),
        "metrics_seconds_load_data": metrics.get("seconds_load_data"),
        "metrics_peak_rss_mb": metrics.get("peak_rss_mb"),
    }


def write_idx(path: Path, array: np.ndarray) -> None:
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.tobytes())


def write_subset(data_dir: str | None, limit: int, directory: Path) -> str:
    """The first ``limit`` training and test examples as uncompressed IDX files, so that the
    CLI (which has no --limit) trains on the same examples as the other rows."""
    import softreg

    data = softreg.load_dataset(DATASET, data_dir=data_dir, download=False)
    target = directory / DATASET
    target.mkdir(parents=True)
    for role, name in IDX_NAMES.items():
        write_idx(target / name, getattr(data, role)[:limit])
    return str(target)


def summarize(runs: list[dict]) -> dict:
    times = [r["seconds_train"] for r in runs]
    accs = sorted({round(r["test_acc"], 6) for r in runs if r["test_acc"] is not None})
    return {
        "status": "ok",
        "seconds_train_median": statistics.median(times),
        "seconds_train_min": min(times),
        "wall_seconds_median": statistics.median(r["wall_seconds"] for r in runs),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "test_acc": runs[-1]["test_acc"],
        "test_acc_all_repeats": accs,
        "seconds_compile_median": statistics.median(r.get("seconds_compile", 0.0) for r in runs),
        "runs": runs,
    }


def ratio(rows: dict, num: str, den: str, *, stat: str = "median") -> float | None:
    """``num``'s training time over ``den``'s: their medians, or (``stat="min"``) their
    fastest runs."""
    a, b = rows.get(num, {}), rows.get(den, {})
    if a.get("status") != "ok" or b.get("status") != "ok":
        return None
    return a[f"seconds_train_{stat}"] / b[f"seconds_train_{stat}"]


def goals(rows: dict, n_features_bytes: int) -> list[dict]:
    """The benchmark's goals, each with the measured value and whether it is met (None: a row
    it needs did not run)."""

    def ok(name: str) -> dict | None:
        row = rows.get(name, {})
        return row if row.get("status") == "ok" else None

    fit, book, best = ok("softreg-fit"), ok("book-pytorch"), ok("softreg-best-linear")
    limit_mb = GOAL_RSS_FACTOR * n_features_bytes / 1e6
    fastest = fastest_fit_row(rows)
    out = [
        goal(
            f"softreg-cli (the default softreg train) at least {GOAL_BOOK_SPEEDUP:g}x faster "
            "than the book's pipeline (training incl. per-epoch evaluation)",
            ratio(rows, "book-pytorch", "softreg-cli"),
            lambda v: v >= GOAL_BOOK_SPEEDUP,
        ),
        goal(
            f"the fastest softreg.fit row ({fastest or 'none ran'}) at least "
            f"{GOAL_BOOK_SPEEDUP:g}x faster than the book's pipeline",
            ratio(rows, "book-pytorch", fastest) if fastest else None,
            lambda v: v >= GOAL_BOOK_SPEEDUP,
        ),
        goal(
            "softreg-jax no slower than jax-scan (training time ratio, medians)",
            ratio(rows, "softreg-jax", "jax-scan"),
            lambda v: v <= 1.0,
        ),
        # Fastest runs, as timeit reports: the two rows differ by less than this machine's
        # run-to-run noise, which the minimum filters out and a median of a few runs does not.
        goal(
            "softreg-fit no slower than the plain NumPy loop (fastest runs)",
            ratio(rows, "softreg-fit", "plain-numpy", stat="min"),
            lambda v: v <= 1.0,
        ),
        goal(
            f"softreg-fit test accuracy within {GOAL_ACC_PP:g} pp of the book's",
            abs(fit["test_acc"] - book["test_acc"]) * 100 if fit and book else None,
            lambda v: v <= GOAL_ACC_PP,
        ),
        goal(
            f"softreg-fit peak RSS at most {GOAL_RSS_FACTOR:g}x the float32 dataset "
            f"({limit_mb:.0f} MB)",
            fit["peak_rss_mb"] if fit else None,
            lambda v: v <= limit_mb,
        ),
    ]
    if DATASET == "fashion-mnist":
        out.append(
            goal(
                f"best-linear test accuracy at least {GOAL_BEST_LINEAR_ACC:.3f}",
                best["test_acc"] if best else None,
                lambda v: v >= GOAL_BEST_LINEAR_ACC,
            )
        )
    out.append(
        goal(
            f"best-linear at least {GOAL_BEST_LINEAR_SPEEDUP:g}x faster than "
            "LogisticRegression at its best",
            ratio(rows, "sklearn-logreg-best", "softreg-best-linear"),
            lambda v: v >= GOAL_BEST_LINEAR_SPEEDUP,
        )
    )
    return out


def fastest_fit_row(rows: dict) -> str | None:
    """The softreg.fit row (FIT_ROWS) with the smallest median training time that ran."""
    ran = [r for r in FIT_ROWS if rows.get(r, {}).get("status") == "ok"]
    return min(ran, key=lambda r: rows[r]["seconds_train_median"], default=None)


def format_table(rows: dict, order: list[str]) -> str:
    """One line per row; ``x softreg`` is its median training time over softreg-fit's."""
    base = rows.get("softreg-fit", {})
    head = (
        f"{'row':<20}{'train s':>9}{'min':>8}{'compile s':>10}{'wall s':>8}"
        f"{'peak RSS MB':>12}{'test acc':>9}{'x softreg':>10}"
    )
    lines = [head, "-" * len(head)]
    for name in order:
        row = rows[name]
        if row["status"] != "ok":
            lines.append(f"{name:<20}{row['status']} ({row['reason']})")
            continue
        times = (
            f"{row['seconds_train_median'] / base['seconds_train_median']:>10.1f}"
            if base.get("status") == "ok"
            else f"{'':>10}"
        )
        lines.append(
            f"{name:<20}{row['seconds_train_median']:>9.3f}"
            f"{row['seconds_train_min']:>8.3f}{row['seconds_compile_median']:>10.3f}"
            f"{row['wall_seconds_median']:>8.2f}{row['peak_rss_mb']:>12.0f}"
            f"{_acc(row['test_acc']):>9}{times}"
        )
    return "\n".join(lines)


def _acc(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def dataset_float32_bytes(args: argparse.Namespace) -> int:
    """Bytes of the float32 training and test features the rows train on."""
    n = {"fashion-mnist": 70000, "mnist": 70000}[args.dataset]
    if args.limit is not None:
        n = min(args.limit, 60000) + min(args.limit, 10000)
    return n * 784 * 4


def parse_rows(text: str) -> list[str]:
    rows = [r.strip() for r in text.split(",") if r.strip()]
    unknown = [r for r in rows if r not in ROWS]
    if unknown or not rows:
        raise argparse.ArgumentTypeError(
            f"unknown rows {', '.join(unknown) or '(none)'}; choose from {', '.join(ROWS)}"
        )
    return list(dict.fromkeys(rows))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Benchmark the book's softmax-regression recipe: softreg vs plain NumPy "
        "(vs the book's PyTorch pipeline when torch is installed)."
    )
    parser.add_argument(
        "--dataset",
        choices=DATASETS,
        default="fashion-mnist",
        help="dataset to train on (default: %(default)s)",
    )
    parser.add_argument(
        "--epochs", type=positive_int, default=10, help="epochs per run (default: %(default)s)"
    )
    add_limit_option(parser)
    parser.add_argument(
        "--rows",
        type=parse_rows,
        default=list(ROWS),
        help=f"comma-separated subset of {','.join(ROWS)} (default: all)",
    )
    parser.add_argument(
        "--repeat",
        type=positive_int,
        default=3,
        help="runs per row; times are the median and min (default: %(default)s)",
    )
    parser.add_argument(
        "--device",
        choices=DEVICES,
        default="cpu",
        help="where the rows that can take a device run (cuda and gpu: the first GPU; the "
        f"others, all but {','.join(DEVICE_ROWS)}, are skipped) (default: %(default)s)",
    )
    add_data_dir_option(parser)
    add_json_option(parser, DEFAULT_JSON)
    parser.add_argument("--worker", choices=ROWS, help=argparse.SUPPRESS)
    return parser


def measure(args: argparse.Namespace, order: list[str]) -> dict[str, dict]:
    """Every row of ``order``: skipped (see :func:`skipped_rows`), failed, or its summary."""
    rows = skipped_rows(order, args.device)
    active = [r for r in order if r not in rows]
    tmp = Path(tempfile.mkdtemp(prefix="softreg-bench-data-"))
    try:
        cli_data_dir = args.data_dir
        if "softreg-cli" in active and args.limit is not None:
            cli_data_dir = write_subset(args.data_dir, args.limit, tmp)
        warn_if_busy()

        def run_one(name: str) -> dict:
            if name == "softreg-cli":
                return run_cli(args, cli_data_dir)
            return run_worker(__file__, name, worker_options(args))

        def progress(name: str, res: dict) -> str:
            return (
                f"{name:<19} train {res['seconds_train']:.3f} s  "
                f"wall {res['wall_seconds']:.2f} s  test acc {_acc(res['test_acc'])}"
            )

        # Slow rows run once, whatever --repeat says.
        runs, failed = run_rounds(
            active, args.repeat, run_one, progress, once=SLOW_ROWS, record_load=True
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rows.update(failed)
    for name in active:
        if name not in rows:
            rows[name] = summarize(runs[name])
    return rows


def skipped_rows(order: list[str], device: str) -> dict[str, dict]:
    """The skipped row of each of ``order`` that cannot run here: its library is missing,
    it needs TrainConfig's kernel field and this softreg has none, or it runs on the CPU only
    and ``device`` is a GPU."""
    rows = missing_libraries(order, NEEDS)
    why = {}
    if not has_kernel_field():
        reason = "softreg.TrainConfig has no kernel field: this softreg has no fused kernel"
        why.update(dict.fromkeys(NEEDS_KERNEL, reason))
    if device != "cpu":
        reason = f"runs on the CPU only, not on --device {device}"
        why.update(dict.fromkeys((r for r in ROWS if r not in DEVICE_ROWS), reason))
    for r in order:
        if r in why and r not in rows:
            rows[r] = {"status": "skipped", "reason": why[r]}
    return {r: rows[r] for r in order if r in rows}


def build_report(args: argparse.Namespace, order: list[str], rows: dict[str, dict]) -> dict:
    """The JSON report: config, machine, rows, ratios to softreg-fit, goals."""
    import softreg

    base = rows.get("softreg-fit", {})
    ratios = {
        f"{name}/softreg-fit": ratio(rows, name, "softreg-fit")
        for name in order
        if name != "softreg-fit" and base.get("status") == "ok"
    }
    for num, den in PEER_RATIOS:
        if num in order and den in order:
            ratios[f"{num}/{den}"] = ratio(rows, num, den)
    config = {
        "dataset": DATASET,
        "epochs": args.epochs,
        "limit": args.limit,
        "repeat": args.repeat,
        "rows": order,
        "device": args.device,
        "kernel_field": has_kernel_field(),
        **RECIPE,
    }
    return {
        **report_header("recipe", config),
        "machine": machine_info(),
        "softreg": softreg.__version__,
        "rows": {name: rows[name] for name in order},
        "ratios": ratios,
        "goals": goals(rows, n_features_bytes=dataset_float32_bytes(args)),
        "book_over_floor": ratio(rows, "book-pytorch", "floor-numpy"),
    }


def print_summary(args: argparse.Namespace, order: list[str], report: dict) -> None:
    """The table, the goals and the floor's limit, on stdout."""
    n = "all" if args.limit is None else f"first {args.limit}"
    print(
        f"\nsoftmax regression, {DATASET} ({n} examples), {args.epochs} epochs, batch "
        f"{RECIPE['batch_size']}, lr {RECIPE['lr']}; median of {args.repeat} runs (slow "
        f"rows: 1); 'x softreg' = training time / softreg-fit's; "
        f"{os.cpu_count()} CPUs, numpy {np.__version__}; device {args.device}"
    )
    print(format_table(report["rows"], order))
    print()
    for name, value in report["ratios"].items():
        if "/softreg-fit" not in name and value is not None:
            print(f"ratio {name}: {value:.3f} (training time, medians)")
    print_goals(report["goals"])
    reachable = report["book_over_floor"]
    if reachable is not None:
        print(
            f"limit: the floor (gathers and matmuls alone) is {reachable:.1f}x faster than "
            "the book's pipeline: no NumPy loop of the recipe can beat that ratio here"
        )
    print(f"results: {args.json}")


def main(argv: list[str] | None = None) -> int:
    global DATASET
    args = build_parser().parse_args(argv)
    DATASET = args.dataset
    args.data_dir = data_dir(args.data_dir)
    if args.worker:
        result = worker(args.worker, args.epochs, args.limit, args.data_dir, args.device)
        print(json.dumps(result))
        return 0

    from softreg.data import find_dataset_dir

    try:  # fail early, before any worker starts, if the data is not there
        found = find_dataset_dir(DATASET, args.data_dir)
    except Exception as exc:  # DataError: a --data-dir / $SOFTREG_DATA without the files
        found, reason = None, str(exc)
    else:
        reason = "pass --data-dir or set SOFTREG_DATA (the benchmark never downloads)"
    if found is None:
        print(f"bench: {DATASET} not found: {reason}", file=sys.stderr)
        return 2

    order = list(args.rows)
    rows = measure(args, order)
    report = build_report(args, order, rows)
    write_report(args.json, report)
    print_summary(args, order, report)
    return 1 if any(r["status"] == "failed" for r in rows.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
