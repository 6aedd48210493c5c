"""The configuration of a training run.

One frozen dataclass, :class:`TrainConfig`, whose fields the CLI's flags map onto one to one.
It is checked whole when it is made, so a configuration that exists is one ``fit`` can run.
"""

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
"""The values of :attr:`TrainConfig.optimizer`."""


NORMALIZE = ("auto", "yes", "no", "per-feature")
"""The values of :attr:`TrainConfig.normalize`."""


SOFTMAX = tuple(ops.LOSS_GRADS)  # stable, naive
"""The values of :attr:`TrainConfig.softmax`: ``"stable"`` and ``"naive"``."""


KERNELS = ("auto", "fused", "array")
"""The values of :attr:`TrainConfig.kernel`."""


MODEL_ONLY_FIELDS = {"hidden": "mlp", "sigma": "softmax-regression"}
"""The fields only one model uses, and that model: a run's ``config.json`` leaves them out
for the other (see :meth:`TrainConfig.to_dict`)."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run; the CLI's flags map onto these fields.

    The defaults are the book's recipe (d2l 3.6 / 4.4). The lecture's MNIST MLP is
    ``TrainConfig(dataset="mnist", model="mlp", batch_size=64, lr=0.01, momentum=0.5)``.
    Every field is checked when the configuration is made; NumPy integers and floats are
    stored as the Python numbers they are, so that the configuration can be written to JSON.

    Attributes
    ----------
    dataset : str
        Name of the dataset, ``"fashion-mnist"`` by default.
    model : str
        ``"softmax-regression"`` or ``"mlp"``.
    hidden : tuple of int
        The MLP's hidden layer sizes, ``(512, 256, 128, 64)`` by default (the lecture's).
    epochs : int
        Passes over the data (iterations with ``optimizer="gd"``), >= 1.
    batch_size : int
        Examples per minibatch, >= 1.
    lr : float
        Learning rate, positive.
    lr_schedule : str
        ``"constant"``, or ``"cosine"``: the rate decays along a half cosine to about 0 at
        the end of the run.
    momentum : float
        PyTorch's SGD momentum, in ``[0, 1)`` (the lecture uses 0.5).
    weight_decay : float
        L2 penalty added to the gradient, as ``torch.optim.SGD`` does; >= 0.
    optimizer : str
        ``"sgd"``: shuffled minibatches; ``"gd"``: full-batch gradient descent.
    normalize : str
        Input standardisation: ``"yes"`` (one mean and scale for all features),
        ``"per-feature"`` (each its own), ``"no"``, or ``"auto"`` (yes for the MLP, as the
        lecture does; no for softmax regression, as the book does).
        :func:`~softreg.build.make_model` fits the statistics on the training data; the model
        keeps and applies them (:mod:`softreg.standardise`).
    softmax : str
        ``"stable"``, or ``"naive"``: the book's ``exp(o) / sum(exp(o))``, which overflows for
        large scores (the chapter's exercise).
    chunk_size : int
        > 0: the output layer's loss and gradients over chunks of this many classes, never
        forming the ``(n_samples, n_classes)`` logits (:mod:`softreg.vocab`: large
        vocabularies); 0: all classes at once.
    sampled : int
        > 0: sampled softmax, this many classes drawn per step from the training labels'
        frequencies (log-Q corrected); 0: the exact loss.
    seed : int
        Seed of every random draw (the initial parameters, the data order, sampled softmax's
        classes), in ``[0, 2**64)``.
    sigma : float
        Standard deviation of the initial weights of softmax regression, >= 0.
    backend : str
        The array library that computes: ``"numpy"``, ``"torch"``, ``"jax"`` or
        ``"tensorflow"``.
    device : str
        ``"cpu"``, or ``"cuda"`` / ``"gpu"`` (the same) with torch and jax.
    eval_batch_size : int
        Rows per evaluation chunk, >= 1: bounds memory, not results.
    log_every : int
        Report the running loss every this many batches (the lecture's 300); 0: never.
    kernel : str
        How a NumPy step computes: ``"fused"``, softmax regression's whole step in one
        compiled pass (:mod:`softreg.fused`, needs numba: ``softreg[fast]``); ``"array"``,
        the array-API step every backend runs; ``"auto"``, fused where it applies (NumPy,
        softmax regression, the stable softmax over all classes, one process) and numba is
        installed, else array. The two give the same numbers up to float32 rounding.

    Raises
    ------
    ConfigError
        On construction, when a field has a wrong type or value, when ``chunk_size`` or
        ``sampled`` is combined with ``softmax="naive"``, or when ``kernel="fused"`` is
        combined with what only the array path computes; the message names the field.

    See Also
    --------
    softreg.train.fit : Train a model with this configuration.
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
    kernel: str = "auto"  # fused (one compiled pass, numba), array, or auto: fused where it can

    def __post_init__(self) -> None:
        """Convert NumPy scalars to Python numbers and check every field."""
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
        check_choice("kernel", self.kernel, KERNELS)
        if self.kernel == "fused" and (reason := kernel_refusal(self)):
            raise ConfigError(
                f"kernel='fused' cannot train this run: {reason}; use kernel='array' or 'auto'"
            )

    def sgd(self) -> SGD:
        """Return the optimiser this configuration asks for.

        Returns
        -------
        SGD
            :class:`~softreg.optim.SGD` with this configuration's ``lr``, ``momentum`` and
            ``weight_decay``; a training state's ``opt_state`` comes from its ``init``.
        """
        return SGD(self.lr, momentum=self.momentum, weight_decay=self.weight_decay)

    @property
    def input_scaling(self) -> str:
        """The input standardisation ``normalize`` asks for.

        ``"none"``, ``"scalar"`` (one mean and scale for every feature) or
        ``"per-feature"`` (see :func:`~softreg.build.make_model`). ``normalize="auto"``
        resolves here: ``"scalar"`` for the MLP, ``"none"`` for softmax regression.
        """
        if self.normalize == "per-feature":
            return "per-feature"
        if self.normalize == "yes" or (self.normalize == "auto" and self.model == "mlp"):
            return "scalar"
        return "none"

    def to_dict(self, *, unused: bool = True) -> dict[str, Any]:
        """Return the fields as a dict, as written to JSON (``config.json``, checkpoints).

        Parameters
        ----------
        unused : bool, default True
            False leaves out the fields this configuration's model does not use
            (:data:`MODEL_ONLY_FIELDS`: ``hidden`` for softmax regression, ``sigma`` for the
            MLP), as a run's ``config.json`` does; ``TrainConfig(**d)`` gives them their
            defaults, which train the same model. Checkpoints keep every field.

        Returns
        -------
        dict
            Field name to value; ``hidden`` stays a tuple.
        """
        fields_ = asdict(self)
        if not unused:
            for name, model in MODEL_ONLY_FIELDS.items():
                if self.model != model:
                    del fields_[name]
        return fields_

    def trains_like(self, other: TrainConfig) -> bool:
        """Whether ``other`` trains the same model the same way.

        The fields this model does not use may differ (see :meth:`to_dict`).

        Parameters
        ----------
        other : TrainConfig
            The configuration to compare with.

        Returns
        -------
        bool
            True when every field the model uses is equal.
        """
        return self.to_dict(unused=False) == other.to_dict(unused=False)


def kernel_refusal(config: TrainConfig) -> str | None:
    """Return which field keeps a configuration from the fused step, or None.

    The fused step (:mod:`softreg.fused`) trains softmax regression on NumPy with the stable
    softmax over all classes; every other combination takes the array path.

    Parameters
    ----------
    config : TrainConfig
        The configuration.

    Returns
    -------
    str or None
        A phrase naming the field and its value, or None when the fields allow it.
    """
    if config.model != "softmax-regression":
        return f"it trains softmax regression only, not model={config.model!r}"
    if config.backend != "numpy":
        return f"it runs on NumPy only, not backend={config.backend!r}"
    if config.softmax != "stable":
        return f"it computes the stable softmax only, not softmax={config.softmax!r}"
    if config.chunk_size or config.sampled:
        return "it computes every class at once (chunk_size=0, sampled=0)"
    return None
