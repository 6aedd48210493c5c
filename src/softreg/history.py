"""What training reports and keeps: per-epoch and running-loss records, the history of a run,
the state to continue it from, and the result of ``fit``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from softreg.protocols import Params


@dataclass(frozen=True)
class EpochRecord:
    """What one epoch reports: the book's three curves, plus time spent so far."""

    epoch: int  # 1-based, as the book's x-axis
    train_loss: float  # mean per-example loss, accumulated during the epoch
    train_acc: float  # accuracy accumulated during the epoch
    test_acc: float | None  # accuracy after the epoch (None without test data)
    test_loss: float | None  # mean cross-entropy on the test data after the epoch
    seconds: float  # training + evaluation time up to the end of this epoch


@dataclass(frozen=True)
class StepRecord:
    """The running loss, reported every ``log_every`` batches as the lecture prints it."""

    epoch: int  # 1-based
    batch: int  # 1-based batch number within the epoch
    step: int  # optimiser steps done in the whole run
    running_loss: float  # mean per-example loss over the batches since the last report


@dataclass
class History:
    records: list[EpochRecord] = field(default_factory=list)
    steps: list[StepRecord] = field(default_factory=list)  # running-loss reports

    @property
    def final(self) -> EpochRecord:
        if not self.records:
            raise ValueError("history is empty: no epoch has finished")
        return self.records[-1]

    def column(self, name: str) -> list[Any]:
        return [getattr(r, name) for r in self.records]


@dataclass
class TrainState:
    """Everything needed to continue training exactly where it stopped, between any two steps.

    The data order needs no state of its own: epoch ``e`` visits the examples in the order
    ``epoch_permutation(n, seed, e)``, so ``(seed, epoch, batch)`` says what comes next.
    """

    params: Params
    opt_state: dict[str, Any]
    epoch: int = 0  # epochs completed
    step: int = 0  # optimiser steps completed
    batch: int = 0  # batches of epoch ``epoch`` (0-based) completed; 0 between epochs
    # The current epoch's summed loss and correct count so far (0-d arrays): the epoch's
    # train loss and accuracy are means over all its batches. None between epochs.
    epoch_sums: dict[str, Any] | None = None
    logged: tuple[float, int] = (0.0, 0)  # epoch loss sum and examples at the last report
    seconds: float = 0.0  # training time so far (carried over when a run is continued)


@dataclass
class FitResult:
    state: TrainState
    history: History
    seconds_train: float  # wall time of the training loop incl. evaluation, excl. callbacks
    seconds_compile: float = 0.0  # compiling the step (JAX, TensorFlow); not in seconds_train

    @property
    def params(self) -> Params:
        return self.state.params


@dataclass(frozen=True)
class Evaluation:
    loss: float  # mean cross-entropy
    accuracy: float
    n: int
