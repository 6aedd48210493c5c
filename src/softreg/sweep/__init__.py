"""Hyperparameter sweeps: the chapter's exercise 5, as a library call the CLI and notebooks share.

One model is trained per value of ``lr`` or ``batch_size`` on part of the *training* set and
scored on the held-out rest (:func:`softreg.data.split.validation_split`); the test set is
never read, so choosing a value by these numbers does not leak the test set into the choice.

A batch-size sweep can hold either budget fixed:

* ``equal="epochs"``: every point makes ``base.epochs`` passes over the fit part, so a small
  batch makes many more SGD updates than a large one;
* ``equal="updates"``: every point makes exactly ``U`` updates (:func:`updates_budget`; by
  default the number ``base`` itself makes, ``base.epochs * ceil(n_fit / base.batch_size)``),
  so a large batch sees more examples. ``U`` need not be a whole number of epochs: the
  remaining steps are a last, partial epoch over the examples that epoch would have visited
  first (:func:`train_point`). The cost of a point grows with its batch size: a full-batch
  point makes ``U`` passes over the data.

Points run in parallel processes (``workers``), each started fresh (``spawn``, safe with
every backend) and limited to one BLAS thread. A point's numbers depend
only on its configuration, never on the worker that ran it.

A sweep is described by a :class:`SweepPlan`::

    plan = SweepPlan(TrainConfig(epochs=2), "lr", [0.01, 0.1, 1.0])
    points = run_sweep(plan, X, y)          # or run_sweep_dataset(plan)
    print(format_table(points))

:func:`sweep_main` does the whole job and writes, for each budget, ``sweep-<field>-<equal>.csv``,
``.json`` and ``.png`` (loss and accuracy against the swept value on a log axis).

The modules, in the order data flows through them: :mod:`~softreg.sweep.plan` (what to
sweep), :mod:`~softreg.sweep.split` (the fit and validation rows),
:mod:`~softreg.sweep.point` (one trained and scored model), :mod:`~softreg.sweep.pool` (many
points, in parallel processes), :mod:`~softreg.sweep.results` (the best point, tables, files,
figure) and :mod:`~softreg.sweep.runner` (the whole sweep, and the command).
"""

from __future__ import annotations

from softreg.sweep.plan import (
    EQUAL,
    FIELDS,
    SweepPlan,
    check_field,
    parse_values,
    point_config,
    updates_budget,
)
from softreg.sweep.point import SweepPoint, train_point
from softreg.sweep.pool import THREAD_VARS, default_workers, one_blas_thread
from softreg.sweep.results import (
    METRICS,
    best_point,
    format_point,
    format_table,
    plot_sweep,
    print_progress,
    write_sweep,
)
from softreg.sweep.runner import ARTIFACTS, run_sweep, run_sweep_dataset, sweep_main
from softreg.sweep.split import SplitData

__all__ = [
    "ARTIFACTS",
    "EQUAL",
    "FIELDS",
    "METRICS",
    "THREAD_VARS",
    "SplitData",
    "SweepPlan",
    "SweepPoint",
    "best_point",
    "check_field",
    "default_workers",
    "format_point",
    "format_table",
    "one_blas_thread",
    "parse_values",
    "plot_sweep",
    "point_config",
    "print_progress",
    "run_sweep",
    "run_sweep_dataset",
    "sweep_main",
    "train_point",
    "updates_budget",
    "write_sweep",
]
