"""Model files and training checkpoints: safetensors (no pickle, nothing executed on load)
plus JSON metadata.

The header records which model it is, its configuration, the dataset's class names and a
SHA-256 of the tensor bytes, so a truncated, tampered or mismatched file is refused with a
message instead of producing silent nonsense.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from softreg import backend
from softreg.errors import ModelFileError, require
from softreg.fileio import atomic_write_bytes
from softreg.models import MODELS
from softreg.train import EpochRecord, History, StepRecord, TrainConfig, TrainState

FORMAT_VERSION = "1"
CHECKPOINT_FORMAT = "1"


@dataclass(frozen=True)
class LoadedModel:
    model: Any  # e.g. SoftmaxRegression
    params: dict[str, np.ndarray]
    class_names: tuple[str, ...]
    metadata: dict[str, str]  # everything else the file's header holds (dataset, seed, ...)


def save_model(
    path: str | Path,
    model: Any,
    params: dict[str, Any],
    *,
    class_names: tuple[str, ...],
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write ``params`` of ``model`` to ``path`` atomically (temporary file, then rename)."""
    save = require("safetensors.numpy", "saving models").save
    header = {str(k): str(v) for k, v in (metadata or {}).items()}
    header.update(softreg_format=FORMAT_VERSION, **_model_header(model, class_names))
    return _write_safetensors(path, params, header, save)


def load_model(path: str | Path) -> LoadedModel:
    """Read a model file written by :func:`save_model`, checking it thoroughly."""
    path = Path(path)
    header, tensors = _read_safetensors(path, "model file")
    if header.get("softreg_format") != FORMAT_VERSION:
        raise ModelFileError(f"{path}: not a softreg model file (format tag missing or unknown)")
    try:
        model, class_names = _model_from_header(header)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: damaged model header ({exc})") from None
    _check_digest(path, header, tensors)
    expected = model.param_shapes()
    got = {name: tuple(t.shape) for name, t in tensors.items()}
    if got != expected:
        raise ModelFileError(f"{path}: parameter shapes {got} do not match the model's {expected}")
    if len(class_names) != model.num_outputs:
        raise ModelFileError(
            f"{path}: {len(class_names)} class names for {model.num_outputs} outputs"
        )
    extra = {k: v for k, v in header.items() if k not in ("model_config", "class_names")}
    return LoadedModel(model=model, params=tensors, class_names=class_names, metadata=extra)


@dataclass(frozen=True)
class Checkpoint:
    """A run stopped between two steps: what :func:`softreg.train.fit` needs to go on."""

    model: Any
    state: TrainState
    history: History
    config: TrainConfig
    class_names: tuple[str, ...]
    data_order: np.ndarray | None  # the order of epoch ``state.epoch`` (None for full batch)
    metadata: dict[str, str]  # the rest of the header (checkpoint_every, softreg version, ...)


def save_checkpoint(
    path: str | Path,
    model: Any,
    state: TrainState,
    history: History,
    *,
    config: TrainConfig,
    class_names: tuple[str, ...],
    data_order: np.ndarray | None = None,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write a training checkpoint atomically: parameters, optimiser state, the epoch's sums so
    far and its data order as tensors; position, history and configuration in the header."""
    save = require("safetensors.numpy", "checkpoints").save
    tensors = {f"params.{k}": v for k, v in _flatten(state.params).items()}
    tensors.update({f"opt.{k}": v for k, v in _flatten(state.opt_state).items()})
    for name, value in (state.epoch_sums or {}).items():
        tensors[f"epoch_sums.{name}"] = np.reshape(value, (1,))  # safetensors wants arrays
    if data_order is not None:
        tensors["data_order"] = data_order
    header = {str(k): str(v) for k, v in (metadata or {}).items()}
    header.update(
        softreg_checkpoint=CHECKPOINT_FORMAT,
        **_model_header(model, class_names),
        train_config=json.dumps(config.to_dict()),
        position=json.dumps({"epoch": state.epoch, "step": state.step, "batch": state.batch,
                             "logged": list(state.logged), "seconds": state.seconds}),
        history=json.dumps({"records": [dataclasses.asdict(r) for r in history.records],
                            "steps": [dataclasses.asdict(r) for r in history.steps]}),
    )
    return _write_safetensors(path, tensors, header, save)


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`, refusing damaged ones."""
    path = Path(path)
    header, tensors = _read_safetensors(path, "checkpoint")
    if header.get("softreg_checkpoint") != CHECKPOINT_FORMAT:
        raise ModelFileError(f"{path}: not a softreg checkpoint (format tag missing or unknown)")
    _check_digest(path, header, tensors)
    try:
        model, class_names = _model_from_header(header)
        position = json.loads(header["position"])
        past = json.loads(header["history"])
        history = History([EpochRecord(**r) for r in past["records"]],
                          [StepRecord(**r) for r in past["steps"]])
        config = TrainConfig(**json.loads(header["train_config"]))
    except (KeyError, TypeError, ValueError) as exc:  # ConfigError is a ValueError
        raise ModelFileError(f"{path}: damaged checkpoint header ({exc})") from None
    params = _unflatten(tensors, "params.")
    if {k: tuple(v.shape) for k, v in params.items()} != model.param_shapes():
        raise ModelFileError(f"{path}: parameter shapes do not match the model")
    sums = {k: v.reshape(()) for k, v in _unflatten(tensors, "epoch_sums.").items()}
    state = TrainState(params=params, opt_state=_unflatten(tensors, "opt."),
                       epoch=position["epoch"], step=position["step"], batch=position["batch"],
                       epoch_sums=sums or None, logged=tuple(position["logged"]),
                       seconds=position["seconds"])
    known = ("model_config", "class_names", "train_config", "position", "history")
    return Checkpoint(model=model, state=state, history=history, config=config,
                      class_names=class_names, data_order=tensors.get("data_order"),
                      metadata={k: v for k, v in header.items() if k not in known})


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"momentum": {"W": a}}`` -> ``{"momentum.W": a}``."""
    flat = {}
    for name, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{name}."))
        else:
            flat[prefix + name] = value
    return flat


def _unflatten(tensors: dict[str, np.ndarray], prefix: str) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for key, value in tensors.items():
        if key.startswith(prefix):
            *parents, leaf = key[len(prefix):].split(".")
            node = tree
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value
    return tree


def _model_header(model: Any, class_names: tuple[str, ...]) -> dict[str, str]:
    """What model files and checkpoints both record about the model."""
    kind = next((k for k, cls in MODELS.items() if isinstance(model, cls)), None)
    if kind is None:
        raise TypeError(f"cannot save a model of type {type(model).__name__}")
    return {"model": kind, "model_config": json.dumps(dataclasses.asdict(model)),
            "class_names": json.dumps(list(class_names))}


def _model_from_header(header: dict[str, str]) -> tuple[Any, tuple[str, ...]]:
    """The model and class names of :func:`_model_header` (KeyError, TypeError or ValueError
    when damaged)."""
    model = MODELS[header["model"]](**json.loads(header["model_config"]))
    return model, tuple(json.loads(header["class_names"]))


def _check_digest(path: Path, header: dict[str, str], tensors: dict[str, np.ndarray]) -> None:
    if _digest(tensors) != header.get("tensors_sha256"):
        raise ModelFileError(f"{path}: tensor data does not match its checksum (file modified?)")


def _write_safetensors(path: str | Path, tensors: dict[str, np.ndarray],
                       header: dict[str, str], save: Any) -> Path:
    """``tensors`` (arrays of any backend) with ``header`` and their SHA-256, written
    atomically."""
    tensors = {k: np.ascontiguousarray(backend.to_numpy(v)) for k, v in tensors.items()}
    path = Path(path)
    atomic_write_bytes(path, save(tensors, metadata={**header,
                                                     "tensors_sha256": _digest(tensors)}))
    return path


def _read_safetensors(path: Path, what: str) -> tuple[dict[str, str], dict[str, np.ndarray]]:
    safetensors_numpy = require("safetensors.numpy", f"reading a {what}")
    if not path.is_file():
        raise ModelFileError(f"{path}: no such {what}")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as f:
            header = dict(f.metadata() or {})
        tensors = safetensors_numpy.load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types for every kind of damage
        raise ModelFileError(f"{path}: not a readable safetensors {what} ({exc})") from None
    return header, tensors


def _digest(tensors: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name]
        h.update(f"{name}:{t.dtype.str}:{t.shape};".encode())
        h.update(np.ascontiguousarray(t).tobytes())
    return h.hexdigest()

