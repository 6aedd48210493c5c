"""The files of a run directory, and how a run is read back from it.

A run directory holds::

    config.json        the TrainConfig: the fields its model uses
    epochs.csv         one row per epoch (rewritten after each epoch)
    steps.csv          the running loss every log_every batches of an epoch (rewritten at
                       each report; its header only when no epoch has that many batches)
    curves.png/.svg    the book's training curves (PNG rewritten after each epoch)
    model.safetensors  the trained parameters
    checkpoint.safetensors  the training state, with checkpoint_every
    predictions.png    first test images, true label over predicted label
    misclassified.png  the first misclassified test images
    metrics.json       final metrics, timings and the whole history (written last)

Every file is written to a temporary name and renamed, so none is ever half-written (the
writers are in :mod:`softreg.run_callbacks`). The directory itself is a
:class:`~softreg.rundir.RunDirectory`: one writer at a time. A stopped run is continued from
its ``config.json`` (:func:`read_run_config`) and its checkpoint, once
:func:`check_checkpoint_continues` has found that it continues this very run.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from softreg.checkpoint import Checkpoint
from softreg.config import TrainConfig
from softreg.data import Dataset
from softreg.data.batching import epoch_permutation
from softreg.errors import RunDirError
from softreg.fileio import parse_json
from softreg.run_metrics import MODEL_FILE
from softreg.rundir import RunDirectory

CHECKPOINT_FILE = "checkpoint.safetensors"
ARTIFACTS = (
    "config.json",
    "epochs.csv",
    "steps.csv",
    "curves.png",
    "curves.svg",
    MODEL_FILE,
    "predictions.png",
    "misclassified.png",
    "metrics.json",
    CHECKPOINT_FILE,
)
MAX_CONFIG_BYTES = 1_000_000  # a config.json is a few hundred bytes


def default_run_dir(config: TrainConfig, root: str | Path = "runs") -> Path:
    """Return where a run goes when no directory is given: ``runs/<dataset>-<time>``.

    Parameters
    ----------
    config : TrainConfig
        The run's configuration (its dataset names the directory).
    root : str or Path
        The directory that holds the runs.

    Returns
    -------
    Path
        ``root/<dataset>-<YYYYmmdd-HHMMSS>``.
    """
    return Path(root) / f"{config.dataset}-{time.strftime('%Y%m%d-%H%M%S')}"


def run_directory(path: str | Path, *, overwrite: bool = False) -> RunDirectory:
    """Return the :class:`~softreg.rundir.RunDirectory` of a training run at ``path``.

    Parameters
    ----------
    path : str or Path
        The run directory.
    overwrite : bool
        Whether an earlier run's files there may be replaced.

    Returns
    -------
    RunDirectory
        Not yet checked, locked or created.
    """
    return RunDirectory(path, ARTIFACTS, overwrite=overwrite)


def run_config_file(run_dir: str | Path) -> Path:
    """Return the ``config.json`` of the run in ``run_dir``.

    Parameters
    ----------
    run_dir : str or Path
        A run directory.

    Returns
    -------
    Path
        The file, which exists.

    Raises
    ------
    RunDirError
        There is no ``config.json``: no run to resume.
    """
    config_file = Path(run_dir) / "config.json"
    if not config_file.is_file():
        raise RunDirError(
            f"{run_dir}: no run to resume (no config.json); start it with "
            f"softreg train --out {run_dir}"
        )
    return config_file


def read_run_config(run_dir: str | Path) -> TrainConfig:
    """Return the :class:`~softreg.config.TrainConfig` of the run in ``run_dir``.

    Parameters
    ----------
    run_dir : str or Path
        A run directory; its ``config.json`` is read.

    Returns
    -------
    TrainConfig
        The run's configuration. A field the file leaves out (``config.json`` holds only
        the fields its model uses) takes its default; older files that hold every field
        are read as they are.

    Raises
    ------
    RunDirError
        No config.json, or one that is not a valid configuration (malformed, nested too
        deeply, too large, or with a value TrainConfig refuses).
    """
    config_file = run_config_file(run_dir)
    if config_file.stat().st_size > MAX_CONFIG_BYTES:
        raise RunDirError(
            f"{config_file}: {config_file.stat().st_size} bytes, too large to be "
            f"a run configuration"
        )
    fields = parse_json(config_file.read_bytes(), str(config_file), RunDirError)
    if not isinstance(fields, dict):
        raise RunDirError(f"{config_file}: not a valid run configuration (not a JSON object)")
    try:
        return TrainConfig(**fields)
    except (ValueError, TypeError) as exc:  # ConfigError is a ValueError
        raise RunDirError(f"{config_file}: not a valid run configuration ({exc})") from None


def check_checkpoint_continues(
    saved: Checkpoint, config: TrainConfig, data: Dataset, path: Path
) -> None:
    """Refuse a checkpoint that would not continue this run exactly.

    Parameters
    ----------
    saved : Checkpoint
        The run's checkpoint (written for ``config``).
    config : TrainConfig
        The run's configuration.
    data : Dataset
        The data the run is continued on.
    path : Path
        The checkpoint file, for the messages.

    Raises
    ------
    RunDirError
        Its step does not count its epochs and batches, its data order is not the one this
        installation computes, or it was written for other classes.
    """
    _check_position(saved, config, len(data.y_train), path)
    _check_data_order(saved, config, len(data.y_train), path)
    if saved.class_names != data.class_names:
        raise RunDirError(
            f"{path}: written for the classes "
            f"{', '.join(saved.class_names[:4])}, ... of another dataset"
        )


def _check_position(saved: Checkpoint, config: TrainConfig, n: int, path: Path) -> None:
    """Refuse a checkpoint whose step does not count its epochs and batches.

    It would continue another run (the schedule, say, depends on the step).
    """
    state = saved.state
    steps_per_epoch = 1 if config.optimizer == "gd" else math.ceil(n / config.batch_size)
    if state.step != state.epoch * steps_per_epoch + state.batch:
        raise RunDirError(
            f"{path}: at step {state.step}, but epoch {state.epoch} and batch "
            f"{state.batch} of {steps_per_epoch} batches an epoch make "
            f"{state.epoch * steps_per_epoch + state.batch} steps"
        )


def _check_data_order(saved: Checkpoint, config: TrainConfig, n: int, path: Path) -> None:
    """Refuse a checkpoint whose data order is not the one this softreg and NumPy compute.

    The continued run would silently be another run.
    """
    if saved.data_order is None:
        return
    expected = epoch_permutation(n, seed=config.seed, epoch=saved.state.epoch)
    if not np.array_equal(saved.data_order, expected):
        raise RunDirError(
            f"{path}: its data order differs from the one this installation "
            f"computes for seed {config.seed}, epoch {saved.state.epoch + 1} "
            f"(another NumPy version, or other data?); the run cannot be "
            f"continued exactly"
        )
