"""The configuration of a training run: one frozen dataclass whose fields the CLI's flags map
onto, checked whole when it is made."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from softreg import backend, ops
from softreg.checks import check_choice, check_int
from softreg.errors import ConfigError
from softreg.models import MODELS, check_sigma
from softreg.optim import LR_SCHEDULES, SGD

OPTIMIZERS = ("sgd", "gd")


NORMALIZE = ("auto", "yes", "no", "per-feature")


SOFTMAX = tuple(ops.LOSS_GRADS)  # stable, naive


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run; the CLI's flags map onto these fields.

    The defaults are the book's recipe (d2l 3.6 / 4.4). The lecture's MNIST MLP is
    ``TrainConfig(dataset="mnist", model="mlp", batch_size=64, lr=0.01, momentum=0.5)``.
    """

    dataset: str = "fashion-mnist"
    model: str = "softmax-regression"  # or "mlp"
    hidden: tuple[int, ...] = (512, 256, 128, 64)  # the MLP's hidden layer sizes (the lecture's)
    epochs: int = 10  # passes over the data (iterations with optimizer="gd")
    batch_size: int = 256
    lr: float = 0.1
    lr_schedule: str = "constant"  # or cosine: lr decays along a half cosine to ~0 at the end
    momentum: float = 0.0  # PyTorch's SGD momentum (the lecture uses 0.5)
    weight_decay: float = 0.0  # L2 penalty added to the gradient, as torch.optim.SGD does
    optimizer: str = "sgd"  # sgd: shuffled minibatches; gd: full-batch gradient descent
    normalize: str = "auto"  # standardise inputs: yes (one mean and scale for all features),
    #                          per-feature (each its own), no, or auto (yes for the MLP, as the
    #                          lecture does; no for softmax regression, as the book does).
    #                          make_model fits them on the training data; the model keeps
    #                          and applies them (softreg.standardise)
    softmax: str = "stable"  # stable, or naive: the book's exp(o) / sum(exp(o)), which
    #                          overflows for large scores (the chapter's exercise)
    chunk_size: int = 0  # > 0: the output layer's loss and gradients over chunks of this many
    #                      classes, never forming the (batch, classes) logits (softreg.vocab:
    #                      large vocabularies); 0: all classes at once
    sampled: int = 0  # > 0: sampled softmax, this many classes drawn per step from the
    #                   training labels' frequencies (log-Q corrected); 0: the exact loss
    seed: int = 0
    sigma: float = 0.01  # std of the initial weights of softmax regression
    backend: str = "numpy"  # numpy, torch, jax or tensorflow: the array library that computes
    device: str = "cpu"  # cpu, or cuda / gpu (the same) with torch and jax
    eval_batch_size: int = 8192  # rows per evaluation chunk: bounds memory, not results
    log_every: int = 300  # report the running loss every N batches (the lecture's 300; 0: never)

    def __post_init__(self) -> None:
        # NumPy's scalars are taken as the numbers they are (the config goes into JSON).
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.integer):
                object.__setattr__(self, f.name, int(value))
            elif isinstance(value, np.floating):
                object.__setattr__(self, f.name, float(value))
        if isinstance(self.hidden, (str, bytes)) or not hasattr(self.hidden, "__iter__"):
            raise ConfigError(f"hidden must be a sequence of layer sizes, got {self.hidden!r}")
        object.__setattr__(
            self,
            "hidden",
            tuple(int(size) if isinstance(size, np.integer) else size for size in self.hidden),
        )
        if not isinstance(self.dataset, str) or not self.dataset:
            raise ConfigError(f"dataset must be a dataset's name, got {self.dataset!r}")
        check_int("epochs", self.epochs, minimum=1)
        check_int("batch_size", self.batch_size, minimum=1)
        check_int("eval_batch_size", self.eval_batch_size, minimum=1)
        check_int("seed", self.seed, minimum=0)
        if self.seed >= 2**64:  # a seed softreg writes into JSON and reads back
            raise ConfigError(f"seed must be below 2**64, got {self.seed}")
        check_int("log_every", self.log_every, minimum=0)
        for size in self.hidden:
            check_int("hidden layer size", size, minimum=1)
        self.sgd()  # validates lr, momentum and weight_decay
        backend.check_names(self.backend, self.device)
        check_choice("model", self.model, tuple(MODELS))
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("normalize", self.normalize, NORMALIZE)
        check_choice("softmax", self.softmax, SOFTMAX)
        check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        check_int("chunk_size", self.chunk_size, minimum=0)
        check_int("sampled", self.sampled, minimum=0)
        if (self.chunk_size or self.sampled) and self.softmax != "stable":
            raise ConfigError(
                "chunk_size and sampled compute the stable loss (log-sum-exp); "
                "drop softmax=naive, or set both to 0"
            )
        check_sigma(self.sigma)

    def sgd(self) -> SGD:
        """The optimiser this configuration asks for."""
        return SGD(self.lr, momentum=self.momentum, weight_decay=self.weight_decay)

    @property
    def input_scaling(self) -> str:
        """The input standardisation ``normalize`` asks for: ``"none"``, ``"scalar"`` (one
        mean and scale for every feature) or ``"per-feature"`` (see :func:`make_model`).
        """
        if self.normalize == "per-feature":
            return "per-feature"
        if self.normalize == "yes" or (self.normalize == "auto" and self.model == "mlp"):
            return "scalar"
        return "none"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
