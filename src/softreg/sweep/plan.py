"""What a sweep trains: the swept field, its values, the budget held fixed, checked up front.

A :class:`SweepPlan` holds everything that decides a sweep's numbers, apart from the data:
the base configuration, the field and its values, the budget (``equal``) and the held-out
fraction. :meth:`SweepPlan.checked` refuses a plan that cannot run before any process starts
or any data is read.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from softreg.config import TrainConfig
from softreg.errors import ConfigError

FIELDS = ("lr", "batch_size")
EQUAL = ("epochs", "updates")

__all__ = [
    "EQUAL",
    "FIELDS",
    "SweepPlan",
    "check_field",
    "parse_values",
    "point_config",
    "updates_budget",
]


@dataclass(frozen=True)
class SweepPlan:
    """One sweep: a model per value of ``field``, each trained from ``base``.

    Parameters
    ----------
    base : TrainConfig
        The configuration every point starts from; its ``seed`` also seeds the split, so
        every point sees the same fit and validation rows.
    field : str
        The field swept: ``"lr"`` or ``"batch_size"`` (``"batch-size"``, the flag's
        spelling, is accepted).
    values : iterable of float or int
        The values of ``field``, one point each; kept as a tuple.
    equal : str, default "epochs"
        The budget held fixed: ``"epochs"`` (every point makes ``base.epochs`` passes over
        the fit part) or ``"updates"`` (every point makes the same number of SGD updates;
        batch-size sweeps only). :func:`~softreg.sweep.sweep_main` also takes ``"both"``:
        the sweep once per budget.
    updates : int or None, default None
        With ``equal="updates"``, the updates each point makes; None: as many as ``base``
        itself makes (:func:`updates_budget`).
    val_fraction : float, default 0.1
        The fraction of the training set held out to score the points, in (0, 1).
    """

    base: TrainConfig
    field: str
    values: Iterable[Any]
    equal: str = "epochs"
    updates: int | None = None
    val_fraction: float = 0.1

    def __post_init__(self) -> None:
        """Keep ``values`` as a tuple: a plan can be run, and split by budget, again."""
        object.__setattr__(self, "values", tuple(self.values))

    def checked(self) -> SweepPlan:
        """Return the plan with ``field`` spelt as a TrainConfig field, after checking it.

        Returns
        -------
        SweepPlan
            The same plan, ``field`` normalised (``"batch-size"`` -> ``"batch_size"``).

        Raises
        ------
        ConfigError
            The field cannot be swept, there are no values or one is invalid for the field,
            ``equal`` is not one of :data:`EQUAL`, a batch-size sweep uses full-batch
            gradient descent, ``equal="updates"`` is asked of a learning-rate sweep, or
            ``updates`` is not an integer >= 1.
        """
        field = check_field(self.field)
        if not self.values:
            raise ConfigError(f"{field}: no values to sweep")
        for value in self.values:
            point_config(self.base, field, value)
        if self.equal not in EQUAL:
            raise ConfigError(f"equal must be one of {', '.join(EQUAL)}, got {self.equal!r}")
        if field == "batch_size" and self.base.optimizer == "gd":
            raise ConfigError(
                "a batch_size sweep needs optimizer='sgd' (gd ignores the batch size)"
            )
        if self.equal == "updates" and field != "batch_size":
            raise ConfigError(
                f"equal='updates' applies to batch_size sweeps only (every {field} "
                "point makes the same updates already)"
            )
        updates = self.updates
        if updates is not None and (
            isinstance(updates, bool) or not isinstance(updates, int) or updates < 1
        ):
            raise ConfigError(f"updates must be an integer >= 1, got {updates!r}")
        return replace(self, field=field)

    def budgets(self) -> tuple[SweepPlan, ...]:
        """Return one plan per budget: both of :data:`EQUAL` for ``equal="both"``, else self.

        Returns
        -------
        tuple of SweepPlan
            The plans to run, in order; none of them is checked yet.
        """
        if self.equal == "both":
            return tuple(replace(self, equal=budget) for budget in EQUAL)
        return (self,)


def check_field(field: str) -> str:
    """Return ``field`` as a TrainConfig field name.

    Parameters
    ----------
    field : str
        ``"lr"``, ``"batch_size"`` or ``"batch-size"`` (the flag's spelling).

    Returns
    -------
    str
        ``"lr"`` or ``"batch_size"``.

    Raises
    ------
    ConfigError
        Any other field: only these two can be swept.
    """
    name = str(field).replace("-", "_")
    if name not in FIELDS:
        raise ConfigError(f"can sweep {', '.join(FIELDS)} only, got {field!r}")
    return name


def parse_values(field: str, text: str) -> list[float] | list[int]:
    """Return the comma-separated values of ``--lr 0.01,0.1,1`` or ``--batch-size 1,64,256``.

    Parameters
    ----------
    field : str
        The field the values are for (see :func:`check_field`).
    text : str
        The values, separated by commas; spaces around them are ignored.

    Returns
    -------
    list of float or list of int
        The values sorted, duplicates dropped: learning rates as floats, batch sizes as
        integers.

    Raises
    ------
    ConfigError
        A value is empty or not a number, a learning rate is not a finite number > 0, a
        batch size is not an integer >= 1, or fewer than 2 distinct values are left.
    """
    field = check_field(field)
    values: set[Any] = set()
    for item in str(text).split(","):
        item = item.strip()
        if not item:
            raise ConfigError(f"{field}: empty value in {text!r} (write e.g. 0.01,0.1,1)")
        values.add(_parse_value(field, item))
    if len(values) < 2:
        raise ConfigError(f"{field}: a sweep needs at least 2 distinct values, got {text!r}")
    return sorted(values)


def _parse_value(field: str, item: str) -> float | int:
    """One value of ``field``, parsed and checked."""
    if field == "lr":
        try:
            value = float(item)
        except ValueError:
            raise ConfigError(f"lr: {item!r} is not a number") from None
        if not (math.isfinite(value) and value > 0):
            raise ConfigError(f"lr: values must be finite numbers > 0, got {item!r}")
        return value
    try:
        size = int(item)
    except ValueError:
        raise ConfigError(f"batch_size: {item!r} is not a whole number") from None
    if size < 1:
        raise ConfigError(f"batch_size: values must be >= 1, got {item!r}")
    return size


def point_config(base: TrainConfig, field: str, value: Any) -> TrainConfig:
    """Return ``base`` with ``field`` set to ``value``.

    Parameters
    ----------
    base : TrainConfig
        The sweep's base configuration.
    field : str
        The field swept (see :func:`check_field`).
    value : float or int
        Its value for this point.

    Returns
    -------
    TrainConfig
        The point's configuration.

    Raises
    ------
    ConfigError
        ``field`` cannot be swept, or TrainConfig refuses ``value``.
    """
    return replace(base, **{check_field(field): value})


def updates_budget(base: TrainConfig, n_fit: int) -> int:
    """Return the updates every point of an equal-updates sweep makes by default.

    That is as many as ``base`` itself makes on ``n_fit`` rows:
    ``base.epochs * ceil(n_fit / base.batch_size)`` (a batch size above ``n_fit`` counts as
    full batch).

    Parameters
    ----------
    base : TrainConfig
        The sweep's base configuration.
    n_fit : int
        The rows the points train on.

    Returns
    -------
    int
        The number of SGD updates.
    """
    return base.epochs * math.ceil(n_fit / min(base.batch_size, n_fit))
