"""Model construction: the model a configuration asks for, sized for the data, with its input
standardisation fitted; the state a run starts from; what cannot be trained refused early."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np

from softreg import backend
from softreg.config import TrainConfig
from softreg.errors import ConfigError
from softreg.history import TrainState
from softreg.limits import check_fits_in_memory
from softreg.models import MODELS
from softreg.standardise import fit_scaling
from softreg.validation import checked_sample_weight


def make_model(
    config: TrainConfig, X_train: Any, num_classes: int, *, sample_weight: Any = None
) -> Any:
    """The model ``config`` asks for, sized for ``X_train (n_samples, n_features)`` and
    ``num_classes``, with the input standardisation ``config.normalize`` asks for fitted on
    ``X_train`` (weighted by ``sample_weight (n_samples,)`` when given).

    Raises
    ------
    ConfigError
        The configuration cannot train this model (see :func:`check_trainable`), or the
        inputs cannot be standardised (all equal, say).
    """
    X_train = backend.to_numpy(X_train)
    shape = {"num_inputs": int(np.prod(X_train.shape[1:])), "num_outputs": num_classes}
    if config.model == "mlp":
        model = MODELS["mlp"](hidden=config.hidden, **shape)
    else:
        model = MODELS[config.model](sigma=config.sigma, **shape)
    check_trainable(model, config)  # before the statistics: they take a pass over the data
    weights = checked_sample_weight(sample_weight, X_train.shape[0])
    mean, scale = fit_scaling(X_train, config.input_scaling, sample_weight=weights)
    return replace(model, input_mean=mean, input_scale=scale)


# Bytes per parameter while training: float32 parameters, gradients and momentum buffers,
# and the float64 draw of the initial values.
TRAINING_BYTES_PER_PARAMETER = 4 + 4 + 4 + 8


def check_trainable(model: Any, config: TrainConfig) -> None:
    """Refuse what ``fit`` could not do with ``model`` and ``config``, before anything is
    allocated or written: sampled softmax with as many samples as classes, or a model whose
    training state cannot fit in memory.

    Raises
    ------
    ConfigError
        Saying which, with the numbers.
    """
    if config.sampled and config.sampled >= model.num_outputs:
        raise ConfigError(
            f"sampled={config.sampled} classes per step, but the model has only "
            f"{model.num_outputs}: sampled softmax is for many classes; use "
            f"sampled=0 (the exact loss), with chunk_size for a large vocabulary"
        )
    n_parameters = sum(math.prod(shape) for shape in model.param_shapes().values())
    layers = "-".join(
        str(n) for n in (model.num_inputs, *getattr(model, "hidden", ()), model.num_outputs)
    )
    check_fits_in_memory(
        n_parameters * TRAINING_BYTES_PER_PARAMETER,
        f"a {config.model} model {layers} ({n_parameters:,} parameters) needs about",
        ConfigError,
    )


def init_state(model: Any, config: TrainConfig) -> TrainState:
    """The state a run starts from: ``model``'s initial parameters drawn with ``config.seed``
    on ``config``'s backend and device, and the optimiser's initial state.
    """
    be = backend.resolve(config.backend, config.device)
    params = model.init(np.random.default_rng(config.seed), xp=be.xp, device=be.device)
    return TrainState(params=params, opt_state=config.sgd().init(params))
