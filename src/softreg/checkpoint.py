"""Model files and training checkpoints: saved atomically, loaded only after checks.

Both are safetensors files (no pickle, nothing executed on load; see
:mod:`softreg.checkpoint_file`) with one JSON header (see :mod:`softreg.checkpoint_header`),
stored as canonical JSON (keys sorted, no spaces, ASCII). A model file's reads::

    {"kind": "model", "format": 2,
     "model": {"type": "softmax-regression", "config": {"num_inputs": 784, ...}},
     "class_names": ["t-shirt", ...], "metadata": {"dataset": "fashion-mnist", ...},
     "sha256": "..."}

A checkpoint's header adds the training configuration, the position in the run, the history
so far and ``checkpoint_every``. ``sha256`` covers everything else in the header and every
tensor: a file changed after it was written, in its header or its tensors, is refused. Every
field is then checked for type and range before it is used, and a tensor's dtype and shape
before it is read, so a file with a valid checksum over hostile content is refused too, with
one line saying what is wrong.

The same run writes the same model file, byte for byte (a checkpoint also records the
seconds the run took). The tensors are the parameters (``W``, ``b`` or ``W1``, ``b1``, ...)
and the input standardisation (``input_mean``, ``input_scale``); checkpoints prefix
parameters with ``params.`` and add the optimiser state (``opt.``), the epoch's sums so far
and its data order (see :mod:`softreg.checkpoint_tensors`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from softreg import backend
from softreg.checkpoint_file import SafetensorsFile, check_digest, write_file
from softreg.checkpoint_header import (
    CheckpointHeader,
    check_checkpoint_header,
    check_model_header,
    check_nothing_else,
    checkpoint_header,
    model_header,
)
from softreg.checkpoint_tensors import (
    check_finite,
    check_tensors,
    checkpoint_shapes,
    flatten,
    host,
    input_tensors,
    model_shapes,
    unflatten,
)
from softreg.config import TrainConfig
from softreg.errors import ConfigError, DataValueError, ModelFileError, describe
from softreg.history import History, TrainState

__all__ = [
    "Checkpoint",
    "LoadedModel",
    "load_checkpoint",
    "load_model",
    "save_checkpoint",
    "save_model",
]


@dataclass(frozen=True)
class LoadedModel:
    """A model file's content, checked (see :func:`load_model`).

    Attributes
    ----------
    model : SoftmaxRegression or MLP
        The model, with its input standardisation.
    params : dict of str to ndarray
        Its parameters, float32 host arrays of the shapes ``model.param_shapes()``.
    class_names : tuple of str
        One printable name per output, all different.
    metadata : dict of str to str
        What the writer recorded: dataset, seed, softreg version, ...
    """

    model: Any
    params: dict[str, np.ndarray]
    class_names: tuple[str, ...]
    metadata: dict[str, str]

    def check_classes(self, dataset: str, class_names: tuple[str, ...]) -> None:
        """Refuse a dataset whose classes are not the model's (in number, names or order).

        Parameters
        ----------
        dataset : str
            The dataset's name, for the message.
        class_names : tuple of str
            The dataset's class names, in label order.

        Raises
        ------
        DataValueError
            Naming both lists of classes.
        """
        if tuple(class_names) != self.class_names:
            raise DataValueError(
                f"the model's {len(self.class_names)} classes ({_list(self.class_names)}) are "
                f"not {dataset}'s {len(class_names)} ({_list(class_names)}): evaluate it on "
                f"the dataset it was trained on ({self.metadata.get('dataset', 'unknown')})"
            )


def _list(names: tuple[str, ...], shown: int = 4) -> str:
    """Return the first ``shown`` names, comma-separated, then ``...`` if there are more."""
    return ", ".join(names[:shown]) + (", ..." if len(names) > shown else "")


def save_model(
    path: str | Path,
    model: Any,
    params: dict[str, Any],
    *,
    class_names: tuple[str, ...],
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write a model and its parameters to a file, atomically (temporary file, then rename).

    Nothing :func:`load_model` would refuse is written.

    Parameters
    ----------
    path : str or Path
        The file to write (conventionally ``*.safetensors``).
    model : SoftmaxRegression or MLP
        The model, whose configuration and input standardisation go into the file.
    params : dict of str to array
        Its parameters, float32, of any backend (copied to the host); all finite.
    class_names : tuple of str
        One short printable name per output, all different.
    metadata : dict, optional
        Anything else to record, as short strings (dataset, seed, ...).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ModelFileError
        A class name, a metadata entry or a parameter that no model file may hold.
    MissingDependencyError
        The ``safetensors`` package is not installed.
    """
    header = {"kind": "model", **model_header(model, class_names, metadata)}
    tensors = {**host(params), **input_tensors(model)}
    # Never write what load_model would refuse.
    check_model_header(header, Path(path))
    check_tensors(Path(path), tensors, model_shapes(model))
    check_finite(Path(path), {name: tensors[name] for name in model.param_shapes()})
    return write_file(path, tensors, header)


def load_model(path: str | Path) -> LoadedModel:
    """Read a model file written by :func:`save_model`, checking it whole.

    Parameters
    ----------
    path : str or Path
        The model file.

    Returns
    -------
    LoadedModel
        The model with its input standardisation, its parameters, class names and metadata.

    Raises
    ------
    ModelFileError
        The file is missing, not a softreg model file, truncated, changed since it was
        written, or holds a value no model can have; or it would not fit in memory.
    MissingDependencyError
        The ``safetensors`` package is not installed.
    """
    path = Path(path)
    with SafetensorsFile(path, "model file") as f:
        header = f.header("model")
        model, class_names, metadata = check_model_header(header, path)
        check_nothing_else(
            path, header, {"kind": "model", **model_header(model, class_names, metadata)}
        )
        expected = model_shapes(model)
        tensors = f.tensors(expected)
    check_digest(path, header, tensors)
    params = {name: tensors[name] for name in model.param_shapes()}
    check_finite(path, params)
    model = _with_inputs(path, model, tensors)
    return LoadedModel(model=model, params=params, class_names=class_names, metadata=metadata)


@dataclass(frozen=True)
class Checkpoint:
    """A run stopped between two steps: what :func:`softreg.fit` needs to go on.

    Attributes
    ----------
    model : SoftmaxRegression or MLP
        The model, with its input standardisation.
    state : TrainState
        Parameters, optimiser state and position in the run (host arrays once loaded).
    history : History
        The epochs and running-loss reports so far.
    config : TrainConfig
        The run's training configuration.
    class_names : tuple of str
        One name per output.
    data_order : ndarray of int64, shape (n_samples,), or None
        The order of epoch ``state.epoch`` (None for full batch, or when no epoch is left).
    checkpoint_every : int
        The run's ``--checkpoint-every``.
    metadata : dict of str to str
        The rest: softreg and NumPy versions, ... (written as strings).
    """

    model: Any
    state: TrainState
    history: History
    config: TrainConfig
    class_names: tuple[str, ...]
    data_order: np.ndarray | None = None
    checkpoint_every: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)


def save_checkpoint(path: str | Path, checkpoint: Checkpoint) -> Path:
    """Write a training checkpoint atomically (temporary file, then rename).

    Parameters, optimiser state, the epoch's sums so far and its data order go into the
    tensors; position, history and configuration into the header. Nothing
    :func:`load_checkpoint` would refuse is written.

    Parameters
    ----------
    path : str or Path
        The file to write (conventionally ``checkpoint.safetensors``).
    checkpoint : Checkpoint
        The run's state; its arrays may be of any backend (copied to the host).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ModelFileError
        A value no checkpoint may hold.
    MissingDependencyError
        The ``safetensors`` package is not installed.
    """
    state = checkpoint.state
    tensors = {f"params.{k}": v for k, v in flatten(host(state.params)).items()}
    tensors.update({f"opt.{k}": v for k, v in flatten(host(state.opt_state)).items()})
    for name, value in (state.epoch_sums or {}).items():
        tensors[f"epoch_sums.{name}"] = np.reshape(backend.to_numpy(value), (1,))
    if checkpoint.data_order is not None:
        tensors["data_order"] = np.ascontiguousarray(checkpoint.data_order, dtype=np.int64)
    tensors.update(input_tensors(checkpoint.model))
    header = checkpoint_header(
        CheckpointHeader(
            model=checkpoint.model,
            config=checkpoint.config,
            position=_position(state),
            history=checkpoint.history,
            class_names=checkpoint.class_names,
            metadata=checkpoint.metadata,
            checkpoint_every=checkpoint.checkpoint_every,
        )
    )
    path = Path(path)
    checked = check_checkpoint_header(header, path)
    check_tensors(path, tensors, checkpoint_shapes(checked, tensors))
    return write_file(path, tensors, header)


def _position(state: TrainState) -> dict[str, Any]:
    """Return where a run stands, as its checkpoint's header records it."""
    return {
        "epoch": state.epoch,
        "step": state.step,
        "batch": state.batch,
        "logged": [float(state.logged[0]), int(state.logged[1])],
        "seconds": float(state.seconds),
    }


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`, checking it whole.

    Parameters
    ----------
    path : str or Path
        The checkpoint file.

    Returns
    -------
    Checkpoint
        The run's state, on the host, as :func:`softreg.fit` continues from it.

    Raises
    ------
    ModelFileError
        The file is missing, not a softreg checkpoint, truncated, changed since it was
        written, or holds a value no run can have; or it would not fit in memory.
    MissingDependencyError
        The ``safetensors`` package is not installed.
    """
    path = Path(path)
    with SafetensorsFile(path, "checkpoint") as f:
        header = f.header("checkpoint")
        checked = check_checkpoint_header(header, path)
        check_nothing_else(path, header, checkpoint_header(checked))
        tensors = f.tensors(checkpoint_shapes(checked, f.declared))
    check_digest(path, header, tensors)
    state = _train_state(path, checked.position, tensors)
    return Checkpoint(
        model=_with_inputs(path, checked.model, tensors),
        state=state,
        history=checked.history,
        config=checked.config,
        class_names=checked.class_names,
        data_order=tensors.get("data_order"),
        checkpoint_every=checked.checkpoint_every,
        metadata=checked.metadata,
    )


def _train_state(path: Path, position: dict[str, Any], tensors: dict[str, Any]) -> TrainState:
    """Return the training state of a checkpoint's checked position and tensors."""
    params = unflatten(tensors, "params.")
    check_finite(path, {**params, **flatten(unflatten(tensors, "opt."))})
    sums = {k: v.reshape(()) for k, v in unflatten(tensors, "epoch_sums.").items()}
    if any(not np.isfinite(v) or v < 0 for v in sums.values()):
        raise ModelFileError(f"{path}: the epoch's sums so far are not finite numbers >= 0")
    return TrainState(
        params=params,
        opt_state=unflatten(tensors, "opt."),
        epoch=position["epoch"],
        step=position["step"],
        batch=position["batch"],
        epoch_sums=sums or None,
        logged=tuple(position["logged"]),
        seconds=position["seconds"],
    )


def _with_inputs(path: Path, model: Any, tensors: dict[str, np.ndarray]) -> Any:
    """Return ``model`` with the input standardisation the file holds (finite, scales > 0)."""
    try:
        return replace(model, input_mean=tensors["input_mean"], input_scale=tensors["input_scale"])
    except ConfigError as exc:
        raise ModelFileError(
            f"{path}: the input standardisation is not valid ({describe(exc)})"
        ) from None
