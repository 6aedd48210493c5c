"""Optimisers as pure updates: ``update(params, grads, state) -> (params, state)``.

State is an explicit dict (empty for plain SGD, the momentum buffers otherwise) so that it can
be checkpointed, and nothing is modified in place, so the same code runs on immutable JAX
arrays and inside compiled steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from softreg.backend import get_namespace
from softreg.errors import ConfigError
from softreg.protocols import Params

# The learning-rate schedules scheduled_lr knows (--lr-schedule).
LR_SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class SGD:
    """Minibatch stochastic gradient descent with PyTorch's ``torch.optim.SGD`` update rule.

    With the defaults it is the book's ``param -= lr * grad / batch_size``: ``grads`` are
    gradients of the *mean* loss over the batch, which already carries the division by the
    batch size. With ``momentum`` (and ``weight_decay``), per parameter::

        g = grad + weight_decay * param
        buf = momentum * buf + g              (buf starts at 0, so the first buf is g)
        param -= lr * (g + momentum * buf if nesterov else buf)

    which is PyTorch's rule with ``dampening=0``.

    Parameters
    ----------
    lr : float, default 0.1
        The learning rate, finite and > 0.
    momentum : float, default 0.0
        In [0, 1); 0 keeps no state.
    weight_decay : float, default 0.0
        The L2 penalty's coefficient, finite and >= 0.
    nesterov : bool, default False
        Nesterov momentum (needs ``momentum > 0``).

    Raises
    ------
    ConfigError
        A value out of its range.
    """

    lr: float = 0.1
    momentum: float = 0.0
    weight_decay: float = 0.0
    nesterov: bool = False

    def __post_init__(self) -> None:
        """Refuse hyperparameters out of range."""
        if not (_is_number(self.lr) and math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"learning rate must be a positive finite number, got {self.lr!r}")
        for name in ("momentum", "weight_decay"):
            value = getattr(self, name)
            if not (_is_number(value) and math.isfinite(value) and value >= 0):
                raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")
        if self.momentum >= 1:
            raise ConfigError(f"momentum must be below 1, got {self.momentum!r}")
        if self.nesterov and self.momentum == 0:
            raise ConfigError("nesterov momentum needs momentum > 0")

    def init(self, params: Params, *, xp: ModuleType | None = None) -> dict[str, Any]:
        """Return the initial optimiser state: zero momentum buffers (none without momentum).

        Parameters
        ----------
        params : Params
            The parameters to optimise.
        xp : module, optional
            Their array namespace (found from each array when None).

        Returns
        -------
        dict
            ``{}`` without momentum, else ``{"momentum": buffers}``, one zero array per
            parameter, of its shape, dtype and device.
        """
        if self.momentum == 0:
            return {}
        return {
            "momentum": {name: get_namespace(p, xp=xp).zeros_like(p) for name, p in params.items()}
        }

    def update(
        self,
        params: Params,
        grads: Params,
        state: dict[str, Any],
        *,
        donate: bool = False,
        lr: Any = None,
    ) -> tuple[Params, dict]:
        """Return the parameters and state after one step.

        ``donate=True`` hands the arrays of ``params`` and ``state`` over to the update, as
        ``jax.jit``'s ``donate_argnums`` does: the caller promises not to use them again, so
        mutable arrays (NumPy, PyTorch) are updated in place. That saves allocating and
        writing fresh arrays each step (a third of an MLP step's time in NumPy). Immutable
        arrays (JAX, TensorFlow) are not changed either way: ``a *= b`` rebinds them.

        Parameters
        ----------
        params : Params
            The parameters.
        grads : Params
            Gradients of the mean loss, by the same names.
        state : dict
            From :meth:`init` or the previous update.
        donate : bool, default False
            Whether the update may reuse the arrays of ``params`` and ``state``.
        lr : float or 0-d array, optional
            This step's learning rate (a schedule's value); None: ``self.lr``.

        Returns
        -------
        params : Params
            The updated parameters.
        state : dict
            The updated state.
        """
        lr = self.lr if lr is None else lr
        if self.weight_decay:
            grads = {name: g + self.weight_decay * params[name] for name, g in grads.items()}
        if not donate:
            return self._update_new(params, grads, state, lr)
        new_params, buffers = {}, {}
        for name, p in params.items():
            step = grads[name]
            if self.momentum:
                buf = state["momentum"][name]
                buf *= self.momentum
                buf += step
                buffers[name] = buf
                step = step + self.momentum * buf if self.nesterov else buf
            p -= lr * step
            new_params[name] = p
        return new_params, ({"momentum": buffers} if self.momentum else state)

    def _update_new(
        self, params: Params, grads: Params, state: dict[str, Any], lr: Any
    ) -> tuple[Params, dict]:
        """Return the update into new arrays (``donate=False``)."""
        if self.momentum == 0:
            return {name: p - lr * grads[name] for name, p in params.items()}, state
        buffers = {
            name: self.momentum * buf + grads[name] for name, buf in state["momentum"].items()
        }
        if self.nesterov:
            steps = {name: grads[name] + self.momentum * buf for name, buf in buffers.items()}
        else:
            steps = buffers
        new = {name: p - lr * steps[name] for name, p in params.items()}
        return new, {"momentum": buffers}


def scheduled_lr(lr: float, schedule: str, step: int, total_steps: int) -> float:
    """Return the learning rate of step ``step`` (0-based) of ``total_steps``.

    ``lr`` throughout ("constant"), or ``lr * (1 + cos(pi * step / total_steps)) / 2``
    ("cosine": from ``lr`` at the first step down towards 0 at the last, Loshchilov and
    Hutter's SGDR without restarts). A function of the step alone, so a resumed run
    continues the same curve.

    Parameters
    ----------
    lr : float
        The base learning rate.
    schedule : {"constant", "cosine"}
        The schedule.
    step : int
        The step, from 0.
    total_steps : int
        The number of steps the schedule spans.

    Returns
    -------
    float
        The learning rate.

    Raises
    ------
    ConfigError
        An unknown schedule.
    """
    if schedule == "constant":
        return lr
    if schedule == "cosine":
        return lr * 0.5 * (1.0 + math.cos(math.pi * step / total_steps))
    raise ConfigError(f"unknown lr schedule {schedule!r}; choose one of {', '.join(LR_SCHEDULES)}")


def _is_number(value: Any) -> bool:
    """Whether ``value`` is an int or float (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)
