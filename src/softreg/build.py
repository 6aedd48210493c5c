"""Model construction: what ``fit`` is given to train.

The model a configuration asks for, sized for the data, with its input standardisation
fitted (:func:`make_model`); the state a run starts from (:func:`init_state`); and what
cannot be trained, refused before anything is allocated (:func:`check_trainable`).
"""

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
from softreg.standardise import as_features, fit_scaling
from softreg.validation import checked_sample_weight


def make_model(
    config: TrainConfig, X_train: Any, num_classes: int, *, sample_weight: Any = None
) -> Any:
    """Return the model ``config`` asks for, sized for the data, its standardisation fitted.

    The model has ``n_features`` inputs and ``num_classes`` outputs, and the input
    standardisation ``config.normalize`` asks for (:attr:`TrainConfig.input_scaling`),
    fitted on ``X_train``: the model keeps the statistics and applies them to every input.
    The configuration is checked against the model (:func:`check_trainable`) before the
    statistics are computed, since they take a pass over the data.

    Parameters
    ----------
    config : TrainConfig
        The recipe: ``model``, ``hidden``, ``sigma``, ``normalize``, ``sampled``.
    X_train : array, shape (n_samples, n_features) or (n_samples, 28, 28)
        Training inputs, of any backend (read on the host); images are flattened.
    num_classes : int
        Number of classes, the model's outputs.
    sample_weight : array, shape (n_samples,), optional
        Weights (>= 0) of the examples in the standardisation's statistics, as in the loss;
        see :func:`~softreg.validation.checked_sample_weight`.

    Returns
    -------
    SoftmaxRegression or MLP
        The model, without parameters (see :func:`init_state`).

    Raises
    ------
    ConfigError
        The configuration cannot train this model (see :func:`check_trainable`), or the
        inputs cannot be standardised (all equal, say).
    DataValueError
        ``sample_weight`` has another shape, a weight that is negative or not finite, or
        all weights 0.
    """
    X_train = backend.to_numpy(X_train)
    shape = {"num_inputs": int(np.prod(X_train.shape[1:])), "num_outputs": num_classes}
    if config.model == "mlp":
        model = MODELS["mlp"](hidden=config.hidden, **shape)
    else:
        model = MODELS[config.model](sigma=config.sigma, **shape)
    check_trainable(model, config)  # before the statistics: they take a pass over the data
    weights = checked_sample_weight(sample_weight, X_train.shape[0])
    if config.input_scaling != "none":  # statistics of the features the model will see
        X_train = as_features(X_train, np)
    mean, scale = fit_scaling(X_train, config.input_scaling, sample_weight=weights)
    return replace(model, input_mean=mean, input_scale=scale)


TRAINING_BYTES_PER_PARAMETER = 4 + 4 + 4 + 8
"""Bytes per parameter while training.

float32 parameters, gradients and momentum buffers, and the float64 draw of the initial
values.
"""


def check_trainable(model: Any, config: TrainConfig) -> None:
    """Refuse what ``fit`` could not do with ``model`` and ``config``.

    Checked before anything is allocated or written: sampled softmax with as many samples
    as classes, or a model whose training state cannot fit in memory (about
    :data:`TRAINING_BYTES_PER_PARAMETER` bytes per parameter).

    Parameters
    ----------
    model : Model
        The model to train, e.g. from :func:`make_model`.
    config : TrainConfig
        The configuration to train it with.

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
    """Return the state a run starts from.

    ``model``'s initial parameters, drawn with ``config.seed`` and placed on ``config``'s
    backend and device, and the optimiser's initial state; epoch, step and batch are 0.

    Parameters
    ----------
    model : Model
        The model whose parameters to draw.
    config : TrainConfig
        Gives the seed, the backend and device, and the optimiser.

    Returns
    -------
    TrainState
        The state before the first step.

    Raises
    ------
    ConfigError
        The backend cannot run on ``config.device`` (it sees no GPU, say).
    MissingDependencyError
        The backend's library is not installed.
    """
    be = backend.resolve(config.backend, config.device)
    params = model.init(np.random.default_rng(config.seed), xp=be.xp, device=be.device)
    return TrainState(params=params, opt_state=config.sgd().init(params))
