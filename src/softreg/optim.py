"""Optimisers as pure updates: ``update(params, grads, state) -> (params, state)``.

State is an explicit dict (empty for plain SGD) so that it can be checkpointed, and nothing is
modified in place, so the same code runs on immutable JAX arrays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from softreg.errors import ConfigError

Params = dict[str, Any]


@dataclass(frozen=True)
class SGD:
    """Minibatch stochastic gradient descent, the book's ``param -= lr * grad / batch_size``.

    ``grads`` are gradients of the *mean* loss over the batch, which already carries the
    book's division by the batch size.
    """

    lr: float = 0.1

    def __post_init__(self) -> None:
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"learning rate must be a positive finite number, got {self.lr!r}")

    def init(self, params: Params) -> dict[str, Any]:
        return {}

    def update(self, params: Params, grads: Params, state: dict[str, Any]) -> tuple[Params, dict]:
        return {name: p - self.lr * grads[name] for name, p in params.items()}, state
