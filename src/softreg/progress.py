"""Progress output for long work: a bar over each epoch's steps, the running loss every
``log_every`` batches, and one line per epoch.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from softreg.callbacks import Callback
from softreg.config import TrainConfig
from softreg.history import EpochRecord, History, StepRecord, TrainState


def format_record(record: EpochRecord, epochs: int) -> str:
    """``epoch  3/10  train loss 0.5130  train acc 0.8300  test acc 0.8140  (0.31 s)``."""
    width = len(str(epochs))
    test = f"  test acc {record.test_acc:.4f}" if record.test_acc is not None else ""
    return (
        f"epoch {record.epoch:>{width}}/{epochs}  train loss {record.train_loss:.4f}  "
        f"train acc {record.train_acc:.4f}{test}  ({record.seconds:.2f} s)"
    )


def format_step(record: StepRecord) -> str:
    """The lecture's running-loss line: ``[epoch=1, batch=300] loss: 0.517291``."""
    return f"[epoch={record.epoch}, batch={record.batch}] loss: {record.running_loss:.6f}"


class ProgressBar(Callback):
    """A tqdm bar over the steps of each epoch (on stderr, when it is a terminal) and a
    summary line per epoch on ``stream``. Without tqdm, only the summary lines.
    """

    def __init__(self, stream: TextIO | None = None, *, bar: bool | None = None):
        self.stream = stream or sys.stdout
        self.bar_enabled = sys.stderr.isatty() if bar is None else bar
        self._bar: Any = None
        self.epochs = 0
        self.steps_per_epoch = 0

    def on_train_begin(self, config: TrainConfig, steps_per_epoch: int, state: TrainState) -> None:
        self.epochs, self.steps_per_epoch = config.epochs, steps_per_epoch
        if self.bar_enabled:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                return
            remaining = steps_per_epoch * (config.epochs - state.epoch) - state.batch
            self._bar = tqdm(
                total=remaining, unit="step", leave=False, dynamic_ncols=True, file=sys.stderr
            )

    def on_step_end(self, step: int, epoch: int) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def on_log(self, record: StepRecord, history: History) -> None:
        self._write(format_step(record))

    def on_epoch_end(self, record: EpochRecord, history: History, state: TrainState) -> None:
        if self._bar is not None:
            self._bar.set_description(f"epoch {record.epoch}/{self.epochs}")
        self._write(format_record(record, self.epochs))

    def _write(self, line: str) -> None:
        if self._bar is not None:
            self._bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def on_train_end(self, history: History, state: TrainState) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
