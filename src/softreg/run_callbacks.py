"""The callbacks a run hands ``fit`` to write its directory, and its prediction grids.

:func:`softreg.runs.train_run` opens the directory and writes ``config.json`` when training
begins (:class:`RunDirWriter`), rewrites ``epochs.csv`` and ``steps.csv`` as records arrive
(:class:`CsvLog`), saves checkpoints (:class:`Checkpointer`) and, at the end, draws the
prediction grids (:func:`write_prediction_grids`). The files are listed in
:mod:`softreg.run_files`.
"""

from __future__ import annotations

from dataclasses import asdict
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Any

import numpy as np

from softreg import __version__, backend
from softreg.callbacks import Callback
from softreg.checkpoint import Checkpoint, save_checkpoint
from softreg.config import TrainConfig
from softreg.data import Dataset
from softreg.data.batching import epoch_permutation
from softreg.fileio import atomic_write_bytes, write_csv, write_json
from softreg.history import EpochRecord, History, StepRecord, TrainState
from softreg.rundir import RunDirectory


class RunDirWriter(Callback):
    """Open a new run's directory when training begins, and write its ``config.json``.

    Every check has passed by then (see :func:`softreg.fit`), so a refused run leaves no
    directory behind. A resumed run's directory is open already and keeps its files.

    Parameters
    ----------
    run_dir : RunDirectory
        The run's directory, locked.
    config : TrainConfig
        The configuration to write.
    new_run : bool
        Whether the run starts from the beginning.
    """

    def __init__(self, run_dir: RunDirectory, config: TrainConfig, *, new_run: bool):
        self.run_dir, self.config, self.new_run = run_dir, config, new_run

    def on_train_begin(self, config: TrainConfig, steps_per_epoch: int, state: TrainState) -> None:
        """Create the directory and write ``config.json``, for a new run.

        Only the fields its model uses (see :meth:`TrainConfig.to_dict`).
        """
        if self.new_run:
            self.run_dir.open()
            write_json(self.run_dir.path / "config.json", self.config.to_dict(unused=False))


class CsvLog(Callback):
    """Rewrite ``epochs.csv`` after every epoch and ``steps.csv`` at every running-loss report.

    ``steps.csv`` is there from the start, with its header only until the first report: a run
    whose epochs have fewer batches than ``log_every`` (the book's recipe: 235 batches an
    epoch, ``log_every=300``), or with ``log_every=0``, keeps it so. A stopped run keeps what
    it finished.

    Parameters
    ----------
    run_dir : str or Path
        The run directory.
    """

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)

    def on_train_begin(self, config: TrainConfig, steps_per_epoch: int, state: TrainState) -> None:
        """Write ``steps.csv``'s header, unless a resumed run has the file already."""
        steps_file = self.run_dir / "steps.csv"
        if not steps_file.exists():
            header = ",".join(f.name for f in dataclass_fields(StepRecord))
            atomic_write_bytes(steps_file, f"{header}\n".encode())

    def on_epoch_end(self, record: EpochRecord, history: History, state: TrainState) -> None:
        """Rewrite ``epochs.csv``: one row per epoch so far."""
        write_csv(self.run_dir / "epochs.csv", [asdict(r) for r in history.records])

    def on_log(self, record: StepRecord, history: History) -> None:
        """Rewrite ``steps.csv``: one row per running-loss report so far."""
        write_csv(self.run_dir / "steps.csv", [asdict(r) for r in history.steps])


class Checkpointer(Callback):
    """Write the training state to ``checkpoint.safetensors``, atomically.

    A new run is saved when training begins (it can be resumed from the very start), then
    whenever ``fit`` offers a checkpoint, and at the end. Mid-epoch checkpoints hold the
    epoch's data order, so that a resumed run can check that it computes the same one.

    Parameters
    ----------
    path : Path
        The checkpoint file.
    model : SoftmaxRegression or MLP
        The model being trained.
    config : TrainConfig
        The run's configuration.
    data : Dataset
        The training data (its class names and size go into the checkpoint).
    checkpoint_every : int
        Steps between checkpoints, recorded so that a resumed run keeps the setting.
    new_run : bool
        Whether the run starts from the beginning.
    """

    def __init__(
        self,
        path: Path,
        model: Any,
        config: TrainConfig,
        data: Dataset,
        checkpoint_every: int,
        *,
        new_run: bool,
    ):
        self.path, self.model, self.config, self.new_run = path, model, config, new_run
        self.class_names, self.n = data.class_names, len(data.y_train)
        self.checkpoint_every = checkpoint_every
        self._order: tuple[int, np.ndarray] | None = None  # (epoch, its data order)

    def save(self, state: TrainState, history: History) -> None:
        """Write ``state`` and ``history`` to the checkpoint file.

        Parameters
        ----------
        state : TrainState
            Where training is.
        history : History
            What it reported so far.
        """
        checkpoint = Checkpoint(
            model=self.model,
            state=state,
            history=history,
            config=self.config,
            class_names=self.class_names,
            data_order=self._data_order(state.epoch),
            checkpoint_every=self.checkpoint_every,
            metadata={"softreg": __version__, "numpy": np.__version__},
        )
        save_checkpoint(self.path, checkpoint)

    def _data_order(self, epoch: int) -> np.ndarray | None:
        """Return the data order of ``epoch`` while SGD is in it (computed once per epoch)."""
        if self.config.optimizer != "sgd" or epoch >= self.config.epochs:
            return None
        if self._order is None or self._order[0] != epoch:
            self._order = (epoch, epoch_permutation(self.n, seed=self.config.seed, epoch=epoch))
        return self._order[1]

    def on_train_begin(self, config: TrainConfig, steps_per_epoch: int, state: TrainState) -> None:
        """Save a new run's initial state: it is resumable from the very start."""
        if self.new_run:
            self.save(state, History())

    def on_checkpoint(self, state: TrainState, history: History) -> None:
        """Save the state ``fit`` offers."""
        self.save(state, history)

    def on_train_end(self, history: History, state: TrainState) -> None:
        """Save the final state."""
        self.save(state, history)


def write_prediction_grids(
    run_dir: Path, model: Any, params: dict[str, Any], data: Dataset, *, n_show: int = 16
) -> None:
    """Draw ``predictions.png`` (the first test images) and ``misclassified.png``.

    Each image is captioned with its true label over the predicted one.

    Parameters
    ----------
    run_dir : Path
        Where the two figures go.
    model : SoftmaxRegression or MLP
        The trained model.
    params : dict of str to array
        Its parameters.
    data : Dataset
        The data, with its test images.
    n_show : int
        Images in each grid.
    """
    from softreg.plotting import plot_predictions, save_figure

    scores = backend.to_numpy(model.forward(params, data.X_test))
    predicted = scores.argmax(axis=1)
    names = np.asarray(data.class_names)
    first = np.arange(min(n_show, len(predicted)))
    wrong = np.flatnonzero(predicted != data.y_test)[:n_show]
    for name, idx in (("predictions", first), ("misclassified", wrong)):
        true_names, predicted_names = names[data.y_test[idx]], names[predicted[idx]]
        fig = plot_predictions(data.test_images[idx], true_names, predicted_names)
        save_figure(fig, run_dir / name)
