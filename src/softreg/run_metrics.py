"""A run's ``metrics.json``: what it holds, and the measurements it records.

:func:`metrics_document` builds the document from what the run knows, without reading or
writing anything, for a finished run and for one that diverged alike. The measurements it
records (peak memory, library versions) are taken by the functions below it.
"""

from __future__ import annotations

import platform
import resource
import sys
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from softreg import __version__, backend
from softreg.config import TrainConfig
from softreg.history import History

MODEL_FILE = "model.safetensors"


@dataclass(frozen=True)
class Finished:
    """How a run that finished ended: what its ``metrics.json`` adds to its history.

    Attributes
    ----------
    model_config : dict
        The model's configuration (see :func:`model_summary`).
    device : str
        Where it computed, as the backend names the device.
    steps : int
        Optimiser steps done in the whole run.
    seconds_train : float
        Wall time of the training loop, evaluation included, callbacks excluded.
    seconds_compile : float
        Compiling the step (JAX, TensorFlow); not in ``seconds_train``.
    seconds_load_data : float
        Reading (or downloading) the dataset.
    seconds_total : float
        The whole call, from the first check to the last file but ``metrics.json``.
    peak_rss_mb : float
        Peak resident memory of the process, in MB (see :func:`peak_rss_mb`).
    resumed_from_step : int or None
        The step a resumed run continued from; None for a run trained in one go.
    checkpoint_every : int
        Steps between checkpoints; 0 for none.
    processes : int
        Ranks of a data-parallel run; 1 for a single process.
    versions : dict of str to str
        Versions of softreg and the libraries it computed with (see :func:`library_versions`).
    """

    model_config: dict[str, Any]
    device: str
    steps: int
    seconds_train: float
    seconds_compile: float
    seconds_load_data: float
    seconds_total: float
    peak_rss_mb: float
    resumed_from_step: int | None
    checkpoint_every: int
    processes: int
    versions: dict[str, str]


@dataclass(frozen=True)
class Diverged:
    """How a run that diverged ended.

    Attributes
    ----------
    error : str
        What happened, and where the last good model was kept (if it was).
    step : int
        The step whose loss was not finite.
    model_kept : bool
        Whether the weights from before that step were finite, and written to
        ``model.safetensors``.
    """

    error: str
    step: int
    model_kept: bool


def metrics_document(
    config: TrainConfig, dataset: str, history: History, ending: Finished | Diverged
) -> dict[str, Any]:
    """Return the contents of a run's ``metrics.json`` (a JSON-ready dict; no I/O).

    Parameters
    ----------
    config : TrainConfig
        What the run trained.
    dataset : str
        The dataset's name, as :class:`~softreg.data.Dataset` gives it.
    history : History
        The per-epoch records and running-loss reports, complete for a finished run and up to
        the last good epoch for a diverged one.
    ending : Finished or Diverged
        How the run ended.

    Returns
    -------
    dict
        ``status`` (``"finished"`` or ``"diverged"``), the run's identity and the whole
        history; a finished run adds its final losses and accuracies, the hyperparameters,
        timings, memory and versions, a diverged one the error and its step.
    """
    if isinstance(ending, Diverged):
        return _diverged(config, dataset, history, ending)
    return _finished(config, dataset, history, ending)


def _history_rows(history: History) -> dict[str, list[dict[str, Any]]]:
    """Return the per-epoch records and the running-loss reports as JSON-ready rows."""
    return {
        "history": [asdict(r) for r in history.records],
        "running_loss": [asdict(r) for r in history.steps],
    }


def _diverged(
    config: TrainConfig, dataset: str, history: History, ending: Diverged
) -> dict[str, Any]:
    """Return the ``metrics.json`` of a run that diverged."""
    return {
        "status": "diverged",
        "error": ending.error,
        "diverged_at_step": ending.step,
        "model_file": MODEL_FILE if ending.model_kept else None,
        "dataset": dataset,
        "model": config.model,
        "backend": config.backend,
        **_history_rows(history),
    }


def _finished(
    config: TrainConfig, dataset: str, history: History, ending: Finished
) -> dict[str, Any]:
    """Return the ``metrics.json`` of a run that finished."""
    final = history.final
    return {
        "status": "finished",
        "dataset": dataset,
        "model": config.model,
        "model_config": ending.model_config,
        "backend": config.backend,
        "device": ending.device,
        "epochs": final.epoch,
        "batch_size": config.batch_size,
        "lr": config.lr,
        "momentum": config.momentum,
        "seed": config.seed,
        "steps": ending.steps,
        "train_loss": final.train_loss,
        "train_acc": final.train_acc,
        "test_acc": final.test_acc,
        "test_loss": final.test_loss,
        "seconds_train": ending.seconds_train,
        "seconds_compile": ending.seconds_compile,
        "seconds_load_data": ending.seconds_load_data,
        "seconds_total": ending.seconds_total,
        "peak_rss_mb": ending.peak_rss_mb,
        "resumed_from_step": ending.resumed_from_step,
        "checkpoint_every": ending.checkpoint_every,
        "processes": ending.processes,
        "model_file": MODEL_FILE,
        **_history_rows(history),
        "versions": ending.versions,
    }


def model_summary(model: Any) -> dict[str, Any]:
    """Return the model's configuration and the kind of its input standardisation.

    Parameters
    ----------
    model : SoftmaxRegression or MLP
        The trained model.

    Returns
    -------
    dict
        ``model.config()`` and ``input_scaling``; with a scalar standardisation also its
        ``input_mean`` and ``input_scale`` (per-feature arrays stay in the model file).
    """
    summary = {**model.config(), "input_scaling": model.input_scaling}
    if model.input_scaling == "scalar":
        summary.update(input_mean=float(model.input_mean), input_scale=float(model.input_scale))
    return summary


def library_versions(backend_name: str) -> dict[str, str]:
    """Return the versions of softreg, NumPy, Python and the libraries behind a backend.

    Parameters
    ----------
    backend_name : str
        The backend the run computed with (``TrainConfig.backend``).

    Returns
    -------
    dict of str to str
        Package name to version.
    """
    return {
        "softreg": __version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        **backend.versions(backend_name),
    }


def peak_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    """Return the peak resident memory so far, in MB (10^6 bytes).

    For this process, Linux's VmHWM is preferred: ``ru_maxrss`` survives ``exec``, so a
    process started from a big parent (a test runner holding PyTorch and JAX) would report
    the parent's peak instead of its own.

    Parameters
    ----------
    who : int
        ``resource.RUSAGE_SELF`` for this process, ``resource.RUSAGE_CHILDREN`` for its
        finished children.

    Returns
    -------
    float
        Megabytes.
    """
    if who == resource.RUSAGE_SELF:
        try:
            with open("/proc/self/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) * 1024 / 1e6  # the value is in kB
        except OSError:
            pass  # not Linux: fall back to getrusage
    return maxrss_mb(resource.getrusage(who).ru_maxrss)


def maxrss_mb(ru_maxrss: int) -> float:
    """Return a ``ru_maxrss`` value (from getrusage or wait4) in MB (10^6 bytes).

    Parameters
    ----------
    ru_maxrss : int
        The value: bytes on macOS, KiB on Linux.

    Returns
    -------
    float
        Megabytes.
    """
    return (ru_maxrss if sys.platform == "darwin" else ru_maxrss * 1024) / 1e6
