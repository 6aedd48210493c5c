"""Named training recipes: ``softreg train --recipe NAME``; flags given on top override them.

``book``
    d2l 3.6: Fashion-MNIST, batch 256, lr 0.1, 10 epochs (TrainConfig's defaults).
``lecture-mlp``
    The lecture's MNIST MLP: 784-512-256-128-64-10, batch 64, lr 0.01, momentum 0.5.
``best-linear``
    Softmax regression on raw pixels at its best: each pixel standardised, momentum 0.9,
    weight decay 1e-3, lr 0.03 on a cosine schedule, 10 epochs. Every choice was made on a
    validation split of the training set (``bench/best_linear_search.py``), never on the
    test set.
"""

from __future__ import annotations

from typing import Any

from softreg.config import TrainConfig
from softreg.errors import ConfigError

# Each recipe's TrainConfig fields; the rest keep TrainConfig's defaults.
RECIPES: dict[str, dict[str, Any]] = {
    "book": {},
    "lecture-mlp": {
        "dataset": "mnist",
        "model": "mlp",
        "batch_size": 64,
        "lr": 0.01,
        "momentum": 0.5,
    },
    "best-linear": {
        "normalize": "per-feature",
        "momentum": 0.9,
        "weight_decay": 1e-3,
        "lr": 0.03,
        "lr_schedule": "cosine",
        "epochs": 10,
    },
}


def recipe_config(name: str, **overrides: Any) -> TrainConfig:
    """Return the configuration of a named recipe, with ``overrides`` on top.

    Parameters
    ----------
    name : str
        One of :data:`RECIPES`: ``book``, ``lecture-mlp`` or ``best-linear``.
    **overrides
        :class:`~softreg.config.TrainConfig` fields that replace the recipe's (the flags
        given with ``softreg train --recipe``).

    Returns
    -------
    TrainConfig
        The recipe's fields, then ``overrides``, over TrainConfig's defaults.

    Raises
    ------
    ConfigError
        ``name`` is not a recipe, or a field's value is refused.
    """
    if name not in RECIPES:
        raise ConfigError(f"unknown recipe {name!r}; choose one of {', '.join(RECIPES)}")
    return TrainConfig(**{**RECIPES[name], **overrides})
