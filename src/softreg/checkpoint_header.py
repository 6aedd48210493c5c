"""The JSON header of model files and checkpoints: built when saved, checked when read.

A model file's header records the model (type and configuration), the class names and
metadata; a checkpoint's adds the training configuration, the position in the run, the
history so far and ``checkpoint_every``. Reading checks every field for type and range
before anything is built from it, then that the header is exactly the one softreg would
write for what was read: a file with a valid checksum over hostile content is refused with
one line saying what is wrong.
"""

from __future__ import annotations

import json
import math
import typing
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from softreg.config import TrainConfig
from softreg.errors import ConfigError, ModelFileError, describe
from softreg.fileio import canonical_json
from softreg.history import EpochRecord, History, StepRecord
from softreg.models import MODELS

__all__ = [
    "FORMAT",
    "MAX_METADATA",
    "MAX_NAME",
    "CheckpointHeader",
    "check_checkpoint_header",
    "check_model_header",
    "check_nothing_else",
    "checkpoint_header",
    "model_header",
]

FORMAT = 2  # the header's "format": the one this softreg writes and reads
MAX_NAME = 64  # characters of a class name
MAX_METADATA = 256  # characters of a metadata value
_POSITION_FIELDS = ("epoch", "step", "batch", "logged", "seconds")


@dataclass(frozen=True)
class CheckpointHeader:
    """What a checkpoint's header records (its tensors hold the rest).

    Attributes
    ----------
    model : SoftmaxRegression or MLP
        The model, without its input standardisation (a tensor of the file).
    config : TrainConfig
        The run's training configuration.
    position : dict
        ``epoch``, ``step``, ``batch``, ``logged`` (``[loss, examples]`` at the last
        running-loss report) and ``seconds`` (of training so far).
    history : History
        The epochs and running-loss reports so far.
    class_names : tuple of str
        One name per output.
    metadata : dict of str to str
        What the writer recorded (written as strings).
    checkpoint_every : int
        The run's ``--checkpoint-every``.
    """

    model: Any
    config: TrainConfig
    position: dict[str, Any]
    history: History
    class_names: tuple[str, ...]
    metadata: dict[str, Any]
    checkpoint_every: int


def model_header(
    model: Any, class_names: tuple[str, ...], metadata: dict[str, Any] | None
) -> dict[str, Any]:
    """Return what model files and checkpoints both record about the model.

    Parameters
    ----------
    model : SoftmaxRegression or MLP
        The model; its type must be one of :data:`softreg.models.MODELS`.
    class_names : tuple of str
        One name per output.
    metadata : dict or None
        Anything else to record; keys and values are written as strings.

    Returns
    -------
    dict
        The fields ``format``, ``model``, ``class_names`` and ``metadata``.

    Raises
    ------
    TypeError
        ``model`` is of a type softreg cannot save.
    """
    kind = next((k for k, cls in MODELS.items() if type(model) is cls), None)
    if kind is None:
        raise TypeError(f"cannot save a model of type {type(model).__name__}")
    return {
        "format": FORMAT,
        "model": {"type": kind, "config": model.config()},
        "class_names": list(class_names),
        "metadata": {str(k): str(v) for k, v in (metadata or {}).items()},
    }


def checkpoint_header(checkpoint: CheckpointHeader) -> dict[str, Any]:
    """Return a checkpoint's header as written, without its checksum.

    Parameters
    ----------
    checkpoint : CheckpointHeader
        What the header records.

    Returns
    -------
    dict
        ``kind`` (``"checkpoint"``), the fields of :func:`model_header`, ``train_config``,
        ``position``, ``history`` and ``checkpoint_every``.
    """
    history = checkpoint.history
    return {
        "kind": "checkpoint",
        **model_header(checkpoint.model, checkpoint.class_names, checkpoint.metadata),
        "train_config": checkpoint.config.to_dict(),
        "position": checkpoint.position,
        "history": {
            "records": [asdict(r) for r in history.records],
            "steps": [asdict(r) for r in history.steps],
        },
        "checkpoint_every": checkpoint.checkpoint_every,
    }


def check_nothing_else(path: Path, header: dict[str, Any], rebuilt: dict[str, Any]) -> None:
    """Refuse a header that is not exactly the one softreg writes for what was read from it.

    A field no check looks at (an extra key, say) would otherwise be carried along unseen.

    Parameters
    ----------
    path : Path
        The file, for the message.
    header : dict
        The header as read (its ``sha256`` is ignored).
    rebuilt : dict
        The header built again from the checked values.

    Raises
    ------
    ModelFileError
        Naming the first place where the two differ.
    """
    got = json.loads(canonical_json({k: v for k, v in header.items() if k != "sha256"}))
    want = json.loads(canonical_json(rebuilt))
    where = _first_difference(got, want)
    if where is not None:
        raise ModelFileError(
            f"{path}: the header's {where or 'top level'} holds what softreg does not write there"
        )


_MISSING = object()  # a key one side has and the other has not


def _first_difference(got: Any, want: Any, where: str = "") -> str | None:
    """Return the path (``a.b[2]``) of the first place where two JSON values differ, or None."""
    if isinstance(got, dict) and isinstance(want, dict):
        children = [
            (f"{where}.{key}" if where else key, got.get(key, _MISSING), want.get(key, _MISSING))
            for key in sorted(set(got) | set(want))
        ]
    elif isinstance(got, list) and isinstance(want, list) and len(got) == len(want):
        children = [(f"{where}[{i}]", a, b) for i, (a, b) in enumerate(zip(got, want, strict=True))]
    else:
        return None if got == want and type(got) is type(want) else where
    for child, a, b in children:
        found = _first_difference(a, b, child)
        if found is not None:
            return found
    return None


def check_model_header(header: Any, path: Path) -> tuple[Any, tuple[str, ...], dict[str, str]]:
    """Return the model, class names and metadata of a header, every field checked.

    Parameters
    ----------
    header : Any
        The parsed header of a model file or checkpoint.
    path : Path
        The file, for messages.

    Returns
    -------
    model : SoftmaxRegression or MLP
        The model, without its input standardisation (which is in the tensors).
    class_names : tuple of str
        One printable name of 1 to ``MAX_NAME`` characters per output, all different.
    metadata : dict of str to str
        Short printable strings.

    Raises
    ------
    ModelFileError
        Naming the first field that is wrong.
    """
    entry = _field(header, "model", dict, path)
    kind = _field(entry, "type", str, path, "model.type")
    if kind not in MODELS:
        raise ModelFileError(f"{path}: unknown model type {kind!r} (known: {', '.join(MODELS)})")
    config = _field(entry, "config", dict, path, "model.config")
    try:
        model = MODELS[kind](**config)
    except (TypeError, ConfigError) as exc:
        raise ModelFileError(
            f"{path}: the header's model configuration is not valid ({describe(exc)})"
        ) from None
    names = _field(header, "class_names", list, path)
    _check_class_names(names, model.num_outputs, path)
    metadata = _field(header, "metadata", dict, path)
    _check_metadata(metadata, path)
    return model, tuple(names), dict(metadata)


def _check_class_names(names: list[Any], num_outputs: int, path: Path) -> None:
    """Refuse class names that are not one short printable string per output, all different."""
    if len(names) != num_outputs:
        raise ModelFileError(f"{path}: {len(names)} class names for {num_outputs} outputs")
    for name in names:
        if not (isinstance(name, str) and 0 < len(name) <= MAX_NAME and name.isprintable()):
            raise ModelFileError(
                f"{path}: class name {name!r:.80} is not a printable string of "
                f"1 to {MAX_NAME} characters"
            )
    if len(set(names)) != len(names):
        raise ModelFileError(f"{path}: the class names are not all different")


def _check_metadata(metadata: dict[str, Any], path: Path) -> None:
    """Refuse metadata that is not short printable strings."""
    for key, value in metadata.items():
        if not (
            isinstance(value, str)
            and len(key) <= MAX_NAME
            and len(value) <= MAX_METADATA
            and key.isprintable()
            and value.isprintable()
        ):
            raise ModelFileError(
                f"{path}: metadata entry {key!r:.80} is not a short printable string"
            )


def check_checkpoint_header(header: Any, path: Path) -> CheckpointHeader:
    """Return what a checkpoint's header records, every field checked.

    Parameters
    ----------
    header : Any
        The parsed header of a checkpoint.
    path : Path
        The file, for messages.

    Returns
    -------
    CheckpointHeader
        The checked values; the history's epochs count up to the position's epoch.

    Raises
    ------
    ModelFileError
        Naming the first field that is wrong.
    """
    model, class_names, metadata = check_model_header(header, path)
    try:
        config = TrainConfig(**_field(header, "train_config", dict, path))
    except (TypeError, ConfigError) as exc:
        raise ModelFileError(
            f"{path}: the header's training configuration is not valid ({describe(exc)})"
        ) from None
    position = _field(header, "position", dict, path)
    _check_position(position, config, path)
    history = _checked_history(header, position["epoch"], path)
    checkpoint_every = _count(
        _field(header, "checkpoint_every", int, path), path, "checkpoint_every"
    )
    return CheckpointHeader(
        model=model,
        config=config,
        position=position,
        history=history,
        class_names=class_names,
        metadata=metadata,
        checkpoint_every=checkpoint_every,
    )


def _check_position(position: dict[str, Any], config: TrainConfig, path: Path) -> None:
    """Refuse a position that is not counts and finite numbers within the run."""
    if set(position) != set(_POSITION_FIELDS):
        raise ModelFileError(f"{path}: the header's position has fields {sorted(position)}")
    for name in ("epoch", "step", "batch"):
        _count(position[name], path, f"position.{name}")
    if position["epoch"] > config.epochs:
        raise ModelFileError(
            f"{path}: position.epoch {position['epoch']} is beyond the run's {config.epochs} epochs"
        )
    logged = position["logged"]
    if not (isinstance(logged, list) and len(logged) == 2):
        raise ModelFileError(f"{path}: position.logged must be [loss, examples]")
    _number(logged[0], path, "position.logged[0]")
    _count(logged[1], path, "position.logged[1]")
    _number(position["seconds"], path, "position.seconds")


def _checked_history(header: Any, epoch: int, path: Path) -> History:
    """Return the header's history, its records checked and counting up to ``epoch``."""
    past = _field(header, "history", dict, path)
    if set(past) != {"records", "steps"}:
        raise ModelFileError(f"{path}: the header's history has fields {sorted(past)}")
    records = [
        _record(EpochRecord, r, path, f"history.records[{i}]")
        for i, r in enumerate(_field(past, "records", list, path, "history.records"))
    ]
    steps = [
        _record(StepRecord, r, path, f"history.steps[{i}]")
        for i, r in enumerate(_field(past, "steps", list, path, "history.steps"))
    ]
    if len(records) != epoch or any(r.epoch != i for i, r in enumerate(records, 1)):
        raise ModelFileError(
            f"{path}: the history's epochs {[r.epoch for r in records][:8]} "
            f"do not count up to position.epoch {epoch}"
        )
    return History(records, steps)


def _field(obj: Any, name: str, kind: type, path: Path, where: str | None = None) -> Any:
    """Return ``obj[name]``, which must be of type ``kind`` (never a bool for an int)."""
    where = where or name
    if not isinstance(obj, dict) or name not in obj:
        raise ModelFileError(f"{path}: the header has no {where}")
    value = obj[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ModelFileError(
            f"{path}: the header's {where} must be {_KIND_NAMES[kind]}, got {value!r:.80}"
        )
    return value


_KIND_NAMES = {int: "an integer", str: "a string", list: "a list", dict: "an object"}


def _count(value: Any, path: Path, where: str) -> int:
    """Return ``value``, which must be an integer >= 0."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ModelFileError(
            f"{path}: the header's {where} must be an integer >= 0, got {value!r:.80}"
        )
    return value


def _number(value: Any, path: Path, where: str) -> float:
    """Return ``value`` as a float; it must be a finite number >= 0."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise ModelFileError(
            f"{path}: the header's {where} must be a finite number >= 0, got {value!r:.80}"
        )
    return float(value)


def _record(cls: type, value: Any, path: Path, where: str) -> Any:
    """Return an EpochRecord or StepRecord from its dict, every field checked.

    Counts are integers >= 1, losses and times finite numbers >= 0, accuracies in [0, 1],
    test values maybe null.
    """
    names = [f.name for f in fields(cls)]
    if not isinstance(value, dict) or sorted(value) != sorted(names):
        raise ModelFileError(f"{path}: {where} must have the fields {', '.join(names)}")
    kinds = typing.get_type_hints(cls)
    for f in fields(cls):
        item = value[f.name]
        if item is None and type(None) in typing.get_args(kinds[f.name]):
            continue
        if kinds[f.name] is int:
            if _count(item, path, f"{where}.{f.name}") < 1:
                raise ModelFileError(f"{path}: the header's {where}.{f.name} must be >= 1")
        elif _number(item, path, f"{where}.{f.name}") > 1 and f.name.endswith("_acc"):
            raise ModelFileError(f"{path}: the header's {where}.{f.name} is above 1")
    return cls(**value)
