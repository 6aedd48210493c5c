"""One run, one directory: the main job as a library call the CLI and notebooks share.

``train_run(TrainConfig(), "runs/book")`` loads the data, trains, and writes the run
directory (its files are listed in :mod:`softreg.run_files`); ``resume_run("runs/book")``
continues a run that was stopped. How a run is carried out (data directory, progress,
figures, checkpoints, data-parallel rank) is one :class:`~softreg.run_options.RunOptions`.

Every check that can fail runs before the first file is written: the directory is created,
locked (:class:`softreg.rundir.RunDirectory`: one writer at a time) and written from
``fit``'s ``on_train_begin`` on, which ``fit`` calls only once it has checked its inputs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from softreg import __version__, backend
from softreg.build import make_model
from softreg.callbacks import Callback
from softreg.checkpoint import Checkpoint, load_checkpoint, save_model
from softreg.config import TrainConfig
from softreg.data import DataError, Dataset, load_dataset
from softreg.divergence import params_finite
from softreg.errors import DivergenceError, RunDirError, require
from softreg.fileio import write_json
from softreg.history import FitResult, History, TrainState
from softreg.run_callbacks import Checkpointer, CsvLog, RunDirWriter, write_prediction_grids
from softreg.run_files import (
    CHECKPOINT_FILE,
    check_checkpoint_continues,
    default_run_dir,
    read_run_config,
    run_config_file,
    run_directory,
)
from softreg.run_metrics import (
    MODEL_FILE,
    Diverged,
    Finished,
    library_versions,
    metrics_document,
    model_summary,
    peak_rss_mb,
)
from softreg.run_options import RunOptions
from softreg.rundir import RunDirectory
from softreg.train import fit


@dataclass(frozen=True)
class RunResult:
    """What a run returns, besides the files it wrote.

    Attributes
    ----------
    run_dir : Path
        The run directory.
    metrics : dict
        The contents of its ``metrics.json`` (see :func:`softreg.run_metrics.metrics_document`).
    fit : FitResult
        What ``fit`` returned: the final state (parameters included) and the history.
    dataset : Dataset
        The data the run trained and tested on.
    config : TrainConfig
        What the run trained (a resumed run's, from its ``config.json``).
    """

    run_dir: Path
    metrics: dict[str, Any]
    fit: FitResult
    dataset: Dataset
    config: TrainConfig


def train_run(
    config: TrainConfig,
    out: str | Path | None = None,
    *,
    overwrite: bool = False,
    options: RunOptions | None = None,
) -> RunResult:
    """Train as ``config`` says and write the run directory ``out``.

    With ``options.checkpoint_every=N`` the training state goes to
    ``checkpoint.safetensors`` at the start, every N steps and at the end, and
    :func:`resume_run` can continue the run after the process is killed at any point. With
    ``options.communicator`` (:mod:`softreg.distributed`) this process is one rank of a
    data-parallel run: every rank trains, only rank 0 writes ``out`` and shows progress.

    Parameters
    ----------
    config : TrainConfig
        What to train.
    out : str, Path or None
        The run directory; None is ``runs/<dataset>-<time>``.
    overwrite : bool
        Replace an earlier run's files in ``out`` (other files there are kept).
    options : RunOptions or None
        How to carry out the run; None is ``RunOptions()``.

    Returns
    -------
    RunResult
        The run directory, its metrics, what ``fit`` returned and the data.

    Raises
    ------
    SoftregError
        Anything wrong with the configuration, the data or ``out`` (a :class:`RunDirError`
        when another process is writing there), before any file is written.
    DivergenceError
        The loss stopped being finite; ``metrics.json`` says so, and the last finite model
        is kept in ``model.safetensors``.
    """
    wall_start = time.perf_counter()
    options = RunOptions() if options is None else options
    options = replace(options, checkpoint_every=options.checkpoint_every or 0)
    _check_ready(config, options)
    directory = run_directory(default_run_dir(config) if out is None else out, overwrite=overwrite)
    if options.writes:
        directory.check()
    run = _prepare(directory, config, options, wall_start)
    model = make_model(config, run.data.train_inputs, run.data.num_classes)  # may refuse the data
    with directory:
        return _train_in(run, _Start(model))


def resume_run(run_dir: str | Path, *, options: RunOptions | None = None) -> RunResult | None:
    """Continue the run in ``run_dir`` from its checkpoint, as if it had never stopped.

    The final weights and metrics are bit-identical to an uninterrupted run's. Without a
    checkpoint (the run was stopped before writing one) it starts again from the beginning.
    With ``options.communicator`` every rank reads the checkpoint and only rank 0 writes
    (see :func:`train_run`); any number of ranks can continue any run. The run directory is
    locked from the start (see :mod:`softreg.rundir`).

    Parameters
    ----------
    run_dir : str or Path
        The directory of a run started by :func:`train_run`; its configuration comes from
        its ``config.json``.
    options : RunOptions or None
        How to carry out the rest of the run; None is ``RunOptions()``.
        ``options.checkpoint_every=None`` keeps the run's own setting.

    Returns
    -------
    RunResult or None
        As :func:`train_run`; None when the run had already finished.

    Raises
    ------
    RunDirError
        No run to resume in ``run_dir``, another process is writing it, or its checkpoint
        does not belong to its configuration, its data or this installation.
    SoftregError
        Anything else :func:`train_run` refuses.
    """
    wall_start = time.perf_counter()
    options = RunOptions() if options is None else options
    directory = run_directory(run_dir, overwrite=True)
    run_config_file(directory.path)  # no run to resume: said before anything else
    with directory:
        if options.writes:
            directory.lock()  # before reading: another process may be writing the run
        config = read_run_config(directory.path)
        if (directory.path / "metrics.json").is_file():
            return None
        saved = _read_checkpoint(directory, config, options)
        if options.checkpoint_every is None:
            every = saved.checkpoint_every if saved is not None else 0
            options = replace(options, checkpoint_every=every)
        _check_ready(config, options)
        run = _prepare(directory, config, options, wall_start)
        return _train_in(run, _resumed_start(saved, run))


@dataclass(frozen=True)
class _Run:
    """A run whose inputs have passed every check and whose data is loaded."""

    directory: RunDirectory
    config: TrainConfig
    data: Dataset
    options: RunOptions  # checkpoint_every is an int here
    device: str  # where it computes, as the backend names the device
    wall_start: float  # time.perf_counter() when the call began
    seconds_load: float  # reading (or downloading) the data


@dataclass(frozen=True)
class _Start:
    """Where training starts: a new model, or a checkpoint's model, state and history."""

    model: Any
    state: TrainState | None = None
    history: History | None = None


def _check_ready(config: TrainConfig, options: RunOptions) -> None:
    """Refuse what can be refused before the data is read."""
    require("safetensors.numpy", "saving the model")
    backend.resolve(config.backend, config.device)
    if options.plots:
        require("matplotlib.figure", "drawing the figures (or pass plots=False / --no-plots)")


def _prepare(
    directory: RunDirectory, config: TrainConfig, options: RunOptions, wall_start: float
) -> _Run:
    """Load the data and gather what the run needs."""
    t = time.perf_counter()
    data = _load_data(config, options)
    seconds_load = time.perf_counter() - t
    device = backend.resolve(config.backend, config.device).device_name
    return _Run(directory, config, data, options, device, wall_start, seconds_load)


def _load_data(config: TrainConfig, options: RunOptions) -> Dataset:
    """Load the run's dataset; every rank of a data-parallel run reads it, none downloads."""
    if options.communicator is None:
        return load_dataset(config.dataset, data_dir=options.data_dir, progress=options.progress)
    try:  # they would write the same files
        return load_dataset(
            config.dataset, data_dir=options.data_dir, download=False, progress=False
        )
    except DataError as exc:
        raise DataError(
            f"{exc}. A data-parallel run never downloads: fetch the data on "
            f"every node first (softreg data --dataset {config.dataset})"
        ) from None


def _read_checkpoint(
    directory: RunDirectory, config: TrainConfig, options: RunOptions
) -> Checkpoint | None:
    """Read the run's checkpoint (None when it stopped before the first one).

    Refuse one written for another configuration.
    """
    checkpoint_file = directory.path / CHECKPOINT_FILE
    has_checkpoint = checkpoint_file.is_file()
    if options.communicator is not None:
        options.communicator.barrier()  # every rank has looked before rank 0 changes anything
    if options.writes:
        directory.remove_temporary_files()
    saved = load_checkpoint(checkpoint_file) if has_checkpoint else None
    if saved is not None and not saved.config.trains_like(config):
        raise RunDirError(
            f"{checkpoint_file}: written for another configuration than "
            f"{directory.path / 'config.json'}"
        )
    return saved


def _resumed_start(saved: Checkpoint | None, run: _Run) -> _Start:
    """Return where a resumed run starts: its checked checkpoint, or the beginning."""
    data = run.data
    if saved is None:  # stopped before the first checkpoint: start again
        return _Start(make_model(run.config, data.train_inputs, data.num_classes))
    check_checkpoint_continues(saved, run.config, data, run.directory.path / CHECKPOINT_FILE)
    return _Start(saved.model, saved.state, saved.history)


def _train_in(run: _Run, start: _Start) -> RunResult:
    """Train from ``start`` and write the run directory (rank 0 only)."""
    try:
        result = fit(
            start.model,
            (run.data.train_inputs, run.data.y_train),
            (run.data.test_inputs, run.data.y_test),
            run.config,
            callbacks=_hooks(run, start),
            state=start.state,
            history=start.history,
            checkpoint_every=run.options.checkpoint_every,
            communicator=run.options.communicator,
        )
    except DivergenceError as exc:
        if not run.options.writes:  # every rank stops at the same step; rank 0 says so
            raise
        raise _diverged(run, start.model, exc) from None
    return _finish(run, start, result)


def _hooks(run: _Run, start: _Start) -> list[Callback]:
    """Return the run's callbacks: its files, the caller's hooks, then progress and curves."""
    options, path = run.options, run.directory.path
    if not options.writes:
        return list(options.callbacks)
    new_run = start.state is None
    hooks: list[Callback] = [
        RunDirWriter(run.directory, run.config, new_run=new_run),
        CsvLog(path),
    ]
    if options.checkpoint_every:
        every = options.checkpoint_every
        checkpoint = path / CHECKPOINT_FILE
        hooks.append(
            Checkpointer(checkpoint, start.model, run.config, run.data, every, new_run=new_run)
        )
    hooks += options.callbacks
    if options.progress:
        from softreg.progress import ProgressBar

        hooks.append(ProgressBar(options.stream))
    if options.plots:
        from softreg.plotting import LiveCurves

        hooks.append(LiveCurves(path / "curves"))
    return hooks


def _diverged(run: _Run, model: Any, exc: DivergenceError) -> DivergenceError:
    """Keep the last good model, write ``metrics.json`` and say where the model is.

    The weights may have overflowed already at an earlier step, whose loss was still finite:
    a model that cannot be used is not kept.
    """
    path = run.directory.path
    kept = exc.state is not None and params_finite(exc.state.params)
    if kept:
        _save_model(run, model, _host(exc.state.params))
        where = f" in {path / MODEL_FILE}"
    elif exc.state is not None:
        where = "; no model was kept: the weights from before that step had already overflowed"
    else:
        where = ""
    ending = Diverged(error=f"{exc}{where}", step=exc.step, model_kept=kept)
    document = metrics_document(run.config, run.data.name, exc.history, ending)
    write_json(path / "metrics.json", document)
    return DivergenceError(f"{exc}{where}", state=exc.state, history=exc.history, step=exc.step)


def _finish(run: _Run, start: _Start, result: FitResult) -> RunResult:
    """Write the model, the prediction grids and ``metrics.json``; return the result."""
    path, options = run.directory.path, run.options
    host_params = _host(result.params)
    resumed_from = start.state.step if start.state is not None and start.state.step else None
    if options.writes:
        _save_model(run, start.model, host_params)
    if options.plots and options.writes and run.data.test_images is not None:
        # generated data has no pictures
        write_prediction_grids(path, start.model, host_params, run.data, n_show=options.n_show)
    ending = Finished(
        model_config=model_summary(start.model),
        device=run.device,
        steps=result.state.step,
        seconds_train=result.seconds_train,
        seconds_compile=result.seconds_compile,
        seconds_load_data=run.seconds_load,
        seconds_total=time.perf_counter() - run.wall_start,
        peak_rss_mb=peak_rss_mb(),
        resumed_from_step=resumed_from,
        checkpoint_every=options.checkpoint_every,
        processes=options.communicator.world_size if options.communicator is not None else 1,
        versions=library_versions(run.config.backend),
    )
    metrics = metrics_document(run.config, run.data.name, result.history, ending)
    if options.writes:
        write_json(path / "metrics.json", metrics)
    return RunResult(run_dir=path, metrics=metrics, fit=result, dataset=run.data, config=run.config)


def _save_model(run: _Run, model: Any, host_params: dict[str, np.ndarray]) -> None:
    """Write ``model.safetensors``, with the run's identity in its metadata."""
    metadata = {
        "dataset": run.data.name,
        "seed": run.config.seed,
        "softreg": __version__,
        "backend": run.config.backend,
        "device": run.device,
    }
    save_model(
        run.directory.path / MODEL_FILE,
        model,
        host_params,
        class_names=run.data.class_names,
        metadata=metadata,
    )


def _host(params: dict[str, Any]) -> dict[str, np.ndarray]:
    """Return the parameters as NumPy arrays."""
    return backend.tree_map(backend.to_numpy, params)
