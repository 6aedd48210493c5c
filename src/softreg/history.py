"""What training reports and keeps.

Per-epoch and running-loss records (:class:`EpochRecord`, :class:`StepRecord`), the
:class:`History` of a run, the :class:`TrainState` to continue it from, the
:class:`FitResult` that ``fit`` returns, and the :class:`Evaluation` that ``evaluate``
returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from softreg.protocols import Params


@dataclass(frozen=True)
class EpochRecord:
    """What one epoch reports: the book's three curves, plus time spent so far.

    Attributes
    ----------
    epoch : int
        Number of the epoch, 1-based, as the book's x-axis.
    train_loss : float
        Mean per-example loss, accumulated during the epoch (each batch's loss computed
        before its update, as the book does).
    train_acc : float
        Accuracy accumulated during the epoch, in the same way.
    test_acc : float or None
        Accuracy on the test data after the epoch; None without test data.
    test_loss : float or None
        Mean cross-entropy on the test data after the epoch; None without test data.
    seconds : float
        Training and evaluation time up to the end of this epoch, callbacks and compiling
        excluded; it includes the time of the runs a continued run follows.
    """

    epoch: int  # 1-based, as the book's x-axis
    train_loss: float  # mean per-example loss, accumulated during the epoch
    train_acc: float  # accuracy accumulated during the epoch
    test_acc: float | None  # accuracy after the epoch (None without test data)
    test_loss: float | None  # mean cross-entropy on the test data after the epoch
    seconds: float  # training + evaluation time up to the end of this epoch


@dataclass(frozen=True)
class StepRecord:
    """The running loss, reported every ``log_every`` batches as the lecture prints it.

    Attributes
    ----------
    epoch : int
        Number of the epoch, 1-based.
    batch : int
        Number of the batch within the epoch, 1-based.
    step : int
        Optimiser steps done in the whole run, this batch's included.
    running_loss : float
        Mean per-example loss over the batches since the last report (or since the start of
        the epoch).
    """

    epoch: int  # 1-based
    batch: int  # 1-based batch number within the epoch
    step: int  # optimiser steps done in the whole run
    running_loss: float  # mean per-example loss over the batches since the last report


@dataclass
class History:
    """The records of a training run, in the order they were made.

    ``fit`` appends to it as it trains; plots and summaries only read it. A run continued
    from a checkpoint continues its history.

    Attributes
    ----------
    records : list of EpochRecord
        One record per finished epoch.
    steps : list of StepRecord
        The running-loss reports, every ``log_every`` batches.
    """

    records: list[EpochRecord] = field(default_factory=list)
    steps: list[StepRecord] = field(default_factory=list)  # running-loss reports

    @property
    def final(self) -> EpochRecord:
        """The record of the last finished epoch.

        Raises
        ------
        ValueError
            No epoch has finished yet.
        """
        if not self.records:
            raise ValueError("history is empty: no epoch has finished")
        return self.records[-1]

    def column(self, name: str) -> list[Any]:
        """Return one field of every epoch record, in epoch order: a curve to plot.

        Parameters
        ----------
        name : str
            A field of :class:`EpochRecord`, e.g. ``"train_loss"`` or ``"test_acc"``.

        Returns
        -------
        list
            The field's value in each record (None where a test value is missing).

        Raises
        ------
        AttributeError
            ``name`` is not a field of :class:`EpochRecord` (and there is a record).
        """
        return [getattr(r, name) for r in self.records]


@dataclass
class TrainState:
    """Everything needed to continue training exactly where it stopped, between any two steps.

    The data order needs no state of its own: epoch ``e`` visits the examples in the order
    ``epoch_permutation(n, seed, e)``, so ``(seed, epoch, batch)`` says what comes next.
    A state continued with the same configuration and data follows the trajectory of the
    uninterrupted run.

    Attributes
    ----------
    params : Params
        The model's parameters, arrays of the run's backend.
    opt_state : dict
        The optimiser's state (momentum buffers; empty without momentum).
    epoch : int
        Epochs completed.
    step : int
        Optimiser steps completed.
    batch : int
        Batches of epoch ``epoch`` (0-based) completed; 0 between epochs.
    epoch_sums : dict or None
        The current epoch's summed loss and correct count so far, 0-d arrays under
        ``"loss"`` and ``"correct"``: the epoch's train loss and accuracy are means over all
        its batches. None between epochs.
    logged : tuple of (float, int)
        The epoch's loss sum and number of examples at the last running-loss report.
    seconds : float
        Training time so far (carried over when a run is continued).
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
    """What ``fit`` returns: where training ended, what it reported, and how long it took.

    Attributes
    ----------
    state : TrainState
        The state after the last epoch; continue training from it.
    history : History
        The records of the run (and of the runs it continues).
    seconds_train : float
        Wall time of the training loop, evaluation included, callbacks excluded; a
        continued run counts the training time of the runs before it.
    seconds_compile : float
        Time spent compiling the step and the evaluation (JAX, TensorFlow); not in
        ``seconds_train``. 0 on eager backends.
    """

    state: TrainState
    history: History
    seconds_train: float  # wall time of the training loop incl. evaluation, excl. callbacks
    seconds_compile: float = 0.0  # compiling the step (JAX, TensorFlow); not in seconds_train

    @property
    def params(self) -> Params:
        """The trained parameters: ``state.params``."""
        return self.state.params


@dataclass(frozen=True)
class Evaluation:
    """The loss and accuracy of a model on a dataset, as ``evaluate`` returns them.

    Attributes
    ----------
    loss : float
        Mean cross-entropy per example.
    accuracy : float
        Fraction of examples whose highest-scoring class is the label.
    n : int
        Number of examples evaluated.
    """

    loss: float  # mean cross-entropy
    accuracy: float
    n: int
