"""Model files: safetensors (no pickle, nothing executed on load) plus JSON metadata.

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

FORMAT_VERSION = "1"


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
    kind = next((k for k, cls in MODELS.items() if isinstance(model, cls)), None)
    if kind is None:
        raise TypeError(f"cannot save a model of type {type(model).__name__}")
    tensors = {name: np.ascontiguousarray(backend.to_numpy(p)) for name, p in params.items()}
    header = {str(k): str(v) for k, v in (metadata or {}).items()}
    header.update(
        softreg_format=FORMAT_VERSION,
        model=kind,
        model_config=json.dumps(dataclasses.asdict(model)),
        class_names=json.dumps(list(class_names)),
        tensors_sha256=_digest(tensors),
    )
    path = Path(path)
    atomic_write_bytes(path, save(tensors, metadata=header))
    return path


def load_model(path: str | Path) -> LoadedModel:
    """Read a model file written by :func:`save_model`, checking it thoroughly."""
    path = Path(path)
    safetensors_numpy = require("safetensors.numpy", "loading models")
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as f:
            header = dict(f.metadata() or {})
        tensors = safetensors_numpy.load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types for every kind of damage
        raise ModelFileError(f"{path}: not a readable safetensors model file ({exc})") from None
    if header.get("softreg_format") != FORMAT_VERSION:
        raise ModelFileError(f"{path}: not a softreg model file (format tag missing or unknown)")
    try:
        model = MODELS[header["model"]](**json.loads(header["model_config"]))
        class_names = tuple(json.loads(header["class_names"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: damaged model header ({exc})") from None
    if _digest(tensors) != header.get("tensors_sha256"):
        raise ModelFileError(f"{path}: tensor data does not match its checksum (file modified?)")
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


def _digest(tensors: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name]
        h.update(f"{name}:{t.dtype.str}:{t.shape};".encode())
        h.update(np.ascontiguousarray(t).tobytes())
    return h.hexdigest()

