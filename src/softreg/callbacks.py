"""The hooks ``fit`` calls while it trains: progress bars, live plots and run-directory files
are callbacks that read what it reports."""

from __future__ import annotations

from softreg.config import TrainConfig
from softreg.history import EpochRecord, History, StepRecord, TrainState


class Callback:
    """Hooks ``fit`` calls; override what you need. Time spent here is not training time."""

    def on_train_begin(self, config: TrainConfig, steps_per_epoch: int, state: TrainState) -> None:
        pass

    def on_step_end(self, step: int, epoch: int) -> None:
        pass

    def on_log(self, record: StepRecord, history: History) -> None:
        """Every ``config.log_every`` batches: the running loss."""

    def on_epoch_end(self, record: EpochRecord, history: History, state: TrainState) -> None:
        pass

    def on_checkpoint(self, state: TrainState, history: History) -> None:
        """Every ``checkpoint_every`` steps (see :func:`fit`): a copy of the state, which
        may be in the middle of an epoch.
        """

    def on_train_end(self, history: History, state: TrainState) -> None:
        pass
