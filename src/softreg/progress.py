"""Progress display for long work: training and downloads.

Training reports through a callback, :class:`ProgressBar`: a bar over each epoch's steps,
the running loss every ``log_every`` batches (:func:`format_step`) and one line per epoch
(:func:`format_record`). Downloads report bytes through :func:`progress_bar`. Both use tqdm
when it is installed (an optional dependency, imported lazily) and plain lines otherwise.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from softreg.callbacks import Callback
from softreg.config import TrainConfig
from softreg.history import EpochRecord, History, StepRecord, TrainState


def format_record(record: EpochRecord, epochs: int) -> str:
    """Return an epoch's summary line, as the book prints it.

    Parameters
    ----------
    record : EpochRecord
        What the epoch reported.
    epochs : int
        Epochs in the whole run (the counter is padded to its width).

    Returns
    -------
    str
        ``epoch  3/10  train loss 0.5130  train acc 0.8300  test acc 0.8140  (0.31 s)``;
        without test data, no test accuracy.
    """
    width = len(str(epochs))
    test = f"  test acc {record.test_acc:.4f}" if record.test_acc is not None else ""
    return (
        f"epoch {record.epoch:>{width}}/{epochs}  train loss {record.train_loss:.4f}  "
        f"train acc {record.train_acc:.4f}{test}  ({record.seconds:.2f} s)"
    )


def format_step(record: StepRecord) -> str:
    """Return the lecture's running-loss line.

    Parameters
    ----------
    record : StepRecord
        A running-loss report.

    Returns
    -------
    str
        ``[epoch=1, batch=300] loss: 0.517291``.
    """
    return f"[epoch={record.epoch}, batch={record.batch}] loss: {record.running_loss:.6f}"


class ProgressBar(Callback):
    """Show training progress: a step bar, the running loss and one line per epoch.

    The bar is a tqdm bar over the steps of each epoch, on stderr; the lines go to
    ``stream``. Without tqdm, only the lines.

    Parameters
    ----------
    stream : text stream or None
        Where the lines go; None is ``sys.stdout``.
    bar : bool or None
        Whether to draw the bar; None draws it when stderr is a terminal.
    """

    def __init__(self, stream: TextIO | None = None, *, bar: bool | None = None):
        self.stream = stream or sys.stdout
        self.bar_enabled = sys.stderr.isatty() if bar is None else bar
        self._bar: Any = None
        self._step = 0  # steps done when the bar last moved
        self.epochs = 0
        self.steps_per_epoch = 0

    def on_train_begin(self, config: TrainConfig, steps_per_epoch: int, state: TrainState) -> None:
        """Start the bar over the steps that remain."""
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
            # About 50 updates an epoch: enough to watch, few enough to keep the steps of a
            # compiled backend together.
            self.progress_every = max(1, steps_per_epoch // 50)
            self._step = state.step

    def on_progress(self, step: int, epoch: int) -> None:
        """Advance the bar to ``step``."""
        if self._bar is not None:
            self._bar.update(step - self._step)
            self._step = step

    def on_log(self, record: StepRecord, history: History) -> None:
        """Print the running-loss line."""
        self._write(format_step(record))

    def on_epoch_end(self, record: EpochRecord, history: History, state: TrainState) -> None:
        """Print the epoch's summary line."""
        if self._bar is not None:
            self._bar.set_description(f"epoch {record.epoch}/{self.epochs}")
        self._write(format_record(record, self.epochs))

    def _write(self, line: str) -> None:
        if self._bar is not None:
            self._bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def on_train_end(self, history: History, state: TrainState) -> None:
        """Close the bar."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def progress_bar(total: int | None, desc: str, *, enabled: bool = True) -> Any:
    """Return a byte-count progress bar for a download, reporting on stderr.

    Parameters
    ----------
    total : int or None
        The expected number of bytes, or None when unknown.
    desc : str
        What is downloaded, shown before the count.
    enabled : bool
        False returns a bar that shows nothing.

    Returns
    -------
    context manager
        With ``update(nbytes)``: a tqdm bar, or without tqdm one line rewritten at each
        whole percent (or MiB, when the total is unknown).
    """
    if not enabled:
        return _SilentBar()
    try:
        from tqdm import tqdm
    except ImportError:
        return _PercentBar(total, desc, sys.stderr)
    return tqdm(
        total=total,
        desc=desc,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        file=sys.stderr,
        dynamic_ncols=True,
    )


class _SilentBar:
    """A bar that shows nothing: progress turned off."""

    def update(self, n: int) -> None:
        pass

    def __enter__(self) -> _SilentBar:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class _PercentBar:
    """One stderr line, rewritten when the whole percentage (or MiB count) changes.

    The MiB count stands in when the total is unknown. A slow download prints at most about
    a hundred updates.
    """

    def __init__(self, total: int | None, desc: str, stream: TextIO) -> None:
        self.total = total if total else None
        self.desc = desc
        self.stream = stream
        self.done = 0
        self.shown: int | None = None

    def update(self, n: int) -> None:
        self.done += n
        if self.total:
            step = min(100, self.done * 100 // self.total)
            text = f"{self.desc}: {step:3d}%"
        else:
            step = self.done >> 20
            text = f"{self.desc}: {step} MiB"
        if step != self.shown:
            self.shown = step
            self.stream.write(f"\r{text}")
            self.stream.flush()

    def __enter__(self) -> _PercentBar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.shown is not None:
            self.stream.write("\n")
            self.stream.flush()
