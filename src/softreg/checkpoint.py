"""Model files and training checkpoints: safetensors (no pickle, nothing executed on load)
with one JSON header, checked whole.

The safetensors metadata holds a single entry, ``"softreg"``: the canonical JSON (keys sorted,
no spaces, ASCII) of a header such as::

    {"kind": "model", "format": 2,
     "model": {"type": "softmax-regression", "config": {"num_inputs": 784, ...}},
     "class_names": ["t-shirt", ...], "metadata": {"dataset": "fashion-mnist", ...},
     "sha256": "..."}

A checkpoint's header adds the training configuration, the position in the run, the history
so far and ``checkpoint_every``. ``sha256`` covers everything else in the header (its
canonical JSON) and every tensor (name, dtype, shape, bytes): a file changed after it was
written, in its header or its tensors, is refused. Every field is then checked for type and
range before it is used, and a tensor's dtype and shape before it is read, so a file with a
valid checksum over hostile content is refused too, with one line saying what is wrong.

One metadata entry, canonical JSON, and safetensors' fixed order of tensors make a file's
bytes a function of its content: the same run writes the same model file, byte for byte (a
checkpoint also records the seconds the run took). The tensors are the
parameters (``W``, ``b`` or ``W1``, ``b1``, ...) and the input standardisation
(``input_mean``, ``input_scale``); checkpoints prefix parameters with ``params.`` and add the
optimiser state (``opt.``), the epoch's sums so far and its data order.
"""

from __future__ import annotations

import hashlib
import json
import math
import typing
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from softreg import backend
from softreg.config import TrainConfig
from softreg.errors import ConfigError, DataValueError, ModelFileError, describe, require
from softreg.fileio import atomic_write_bytes, canonical_json, parse_json
from softreg.history import EpochRecord, History, StepRecord, TrainState
from softreg.limits import check_fits_in_memory
from softreg.models import MODELS

__all__ = [
    "Checkpoint",
    "LoadedModel",
    "load_checkpoint",
    "load_model",
    "save_checkpoint",
    "save_model",
]

FORMAT = 2
HEADER_KEY = "softreg"  # the one safetensors metadata entry
MAX_NAME = 64  # characters of a class name
MAX_METADATA = 256  # characters of a metadata value
INPUT_TENSORS = ("input_mean", "input_scale")

# safetensors' dtype names of the tensors softreg writes
F32, F64, I32, I64 = "F32", "F64", "I32", "I64"
_DTYPES = {
    np.dtype(np.float32): F32,
    np.dtype(np.float64): F64,
    np.dtype(np.int32): I32,
    np.dtype(np.int64): I64,
}
_ITEMSIZE = {F32: 4, F64: 8, I32: 4, I64: 8}


@dataclass(frozen=True)
class LoadedModel:
    """A model file's content, checked (see :func:`load_model`)."""

    model: Any  # e.g. SoftmaxRegression, with its input standardisation
    params: dict[str, np.ndarray]  # float32, shapes model.param_shapes()
    class_names: tuple[str, ...]  # one printable name per output, all different
    metadata: dict[str, str]  # what the writer recorded: dataset, seed, softreg, ...

    def check_classes(self, dataset: str, class_names: tuple[str, ...]) -> None:
        """Refuse a dataset whose classes are not the model's (in number, names or order).

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
    return ", ".join(names[:shown]) + (", ..." if len(names) > shown else "")


def save_model(
    path: str | Path,
    model: Any,
    params: dict[str, Any],
    *,
    class_names: tuple[str, ...],
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write ``params`` of ``model`` to ``path`` atomically (temporary file, then rename).

    Parameters
    ----------
    path : str or Path
        The file to write (conventionally ``*.safetensors``).
    model : SoftmaxRegression or MLP
        The model, whose configuration and input standardisation go into the file.
    params : dict of arrays
        Its parameters, float32, of any backend (copied to the host).
    class_names : tuple of str
        One short printable name per output.
    metadata : dict, optional
        Anything else to record, as short strings (dataset, seed, ...).

    Returns
    -------
    Path
        ``path``.
    """
    header = {"kind": "model", **_model_header(model, class_names, metadata)}
    tensors = {**_host(params), **_input_tensors(model)}
    # Never write what load_model would refuse.
    _check_model_header(header, Path(path))
    _check_tensors(Path(path), tensors, {**_shapes(model.param_shapes()), **_input_shapes(model)})
    _check_finite(Path(path), {name: tensors[name] for name in model.param_shapes()})
    return _write(path, tensors, header)


def load_model(path: str | Path) -> LoadedModel:
    """Read a model file written by :func:`save_model`, checking it whole.

    Raises
    ------
    ModelFileError
        The file is missing, not a softreg model file, truncated, changed since it was
        written, or holds a value no model can have; or it would not fit in memory.
    """
    path = Path(path)
    with _SafetensorsFile(path, "model file") as f:
        header = f.header("model")
        model, class_names, metadata = _check_model_header(header, path)
        _check_nothing_else(
            path, header, {"kind": "model", **_model_header(model, class_names, metadata)}
        )
        expected = {**_shapes(model.param_shapes()), **_input_shapes(model)}
        tensors = f.tensors(expected)
    _check_digest(path, header, tensors)
    params = {name: tensors[name] for name in model.param_shapes()}
    _check_finite(path, params)
    model = _with_inputs(path, model, tensors)
    return LoadedModel(model=model, params=params, class_names=class_names, metadata=metadata)


@dataclass(frozen=True)
class Checkpoint:
    """A run stopped between two steps: what :func:`softreg.train.fit` needs to go on."""

    model: Any
    state: TrainState
    history: History
    config: TrainConfig
    class_names: tuple[str, ...]
    data_order: np.ndarray | None  # the order of epoch ``state.epoch`` (None for full batch)
    checkpoint_every: int  # the run's --checkpoint-every
    metadata: dict[str, str]  # the rest: softreg and NumPy versions, ...


def save_checkpoint(
    path: str | Path,
    model: Any,
    state: TrainState,
    history: History,
    *,
    config: TrainConfig,
    class_names: tuple[str, ...],
    data_order: np.ndarray | None = None,
    checkpoint_every: int = 0,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write a training checkpoint atomically: parameters, optimiser state, the epoch's sums
    so far and its data order as tensors; position, history and configuration in the
    header.
    """
    tensors = {f"params.{k}": v for k, v in _flatten(_host(state.params)).items()}
    tensors.update({f"opt.{k}": v for k, v in _flatten(_host(state.opt_state)).items()})
    for name, value in (state.epoch_sums or {}).items():
        tensors[f"epoch_sums.{name}"] = np.reshape(backend.to_numpy(value), (1,))
    if data_order is not None:
        tensors["data_order"] = np.ascontiguousarray(data_order, dtype=np.int64)
    tensors.update(_input_tensors(model))
    position = {
        "epoch": state.epoch,
        "step": state.step,
        "batch": state.batch,
        "logged": [float(state.logged[0]), int(state.logged[1])],
        "seconds": float(state.seconds),
    }
    header = _checkpoint_header(
        model, config, position, history, class_names, metadata, checkpoint_every
    )
    path = Path(path)
    checked = _check_checkpoint_header(header, path)
    _check_tensors(path, tensors, _checkpoint_shapes(checked, tensors))
    return _write(path, tensors, header)


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`, checking it whole (see
    :func:`load_model`).
    """
    path = Path(path)
    with _SafetensorsFile(path, "checkpoint") as f:
        header = f.header("checkpoint")
        checked = _check_checkpoint_header(header, path)
        _check_nothing_else(path, header, _checkpoint_header(*checked, header["checkpoint_every"]))
        tensors = f.tensors(_checkpoint_shapes(checked, f.declared))
    _check_digest(path, header, tensors)
    model, config, position, history, class_names, metadata = checked
    params = _unflatten(tensors, "params.")
    _check_finite(path, {**params, **_flatten(_unflatten(tensors, "opt."))})
    sums = {k: v.reshape(()) for k, v in _unflatten(tensors, "epoch_sums.").items()}
    if any(not np.isfinite(v) or v < 0 for v in sums.values()):
        raise ModelFileError(f"{path}: the epoch's sums so far are not finite numbers >= 0")
    state = TrainState(
        params=params,
        opt_state=_unflatten(tensors, "opt."),
        epoch=position["epoch"],
        step=position["step"],
        batch=position["batch"],
        epoch_sums=sums or None,
        logged=tuple(position["logged"]),
        seconds=position["seconds"],
    )
    return Checkpoint(
        model=_with_inputs(path, model, tensors),
        state=state,
        history=history,
        config=config,
        class_names=class_names,
        data_order=tensors.get("data_order"),
        checkpoint_every=header["checkpoint_every"],
        metadata=metadata,
    )


# --- the header -----------------------------------------------------------------------------


def _model_header(
    model: Any, class_names: tuple[str, ...], metadata: dict[str, Any] | None
) -> dict[str, Any]:
    """What model files and checkpoints both record about the model."""
    kind = next((k for k, cls in MODELS.items() if type(model) is cls), None)
    if kind is None:
        raise TypeError(f"cannot save a model of type {type(model).__name__}")
    return {
        "format": FORMAT,
        "model": {"type": kind, "config": model.config()},
        "class_names": list(class_names),
        "metadata": {str(k): str(v) for k, v in (metadata or {}).items()},
    }


def _checkpoint_header(
    model: Any,
    config: TrainConfig,
    position: dict[str, Any],
    history: History,
    class_names: tuple[str, ...],
    metadata: dict[str, Any] | None,
    checkpoint_every: int,
) -> dict[str, Any]:
    """A checkpoint's header (without its checksum)."""
    return {
        "kind": "checkpoint",
        **_model_header(model, class_names, metadata),
        "train_config": config.to_dict(),
        "position": position,
        "history": {
            "records": [asdict(r) for r in history.records],
            "steps": [asdict(r) for r in history.steps],
        },
        "checkpoint_every": checkpoint_every,
    }


def _check_nothing_else(path: Path, header: dict[str, Any], rebuilt: dict[str, Any]) -> None:
    """The header must be exactly the one softreg writes for what was read from it: a field
    no check looks at (an extra key, say) would otherwise be carried along unseen.
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
    """The path (``a.b[2]``) of the first place where two JSON values differ, or None."""
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


def _check_model_header(header: Any, path: Path) -> tuple[Any, tuple[str, ...], dict[str, str]]:
    """The model (without its input standardisation, which is in the tensors), class names
    and metadata of a header, every field checked; ModelFileError naming the first that is
    wrong.
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
    if len(names) != model.num_outputs:
        raise ModelFileError(f"{path}: {len(names)} class names for {model.num_outputs} outputs")
    for name in names:
        if not (isinstance(name, str) and 0 < len(name) <= MAX_NAME and name.isprintable()):
            raise ModelFileError(
                f"{path}: class name {name!r:.80} is not a printable string of "
                f"1 to {MAX_NAME} characters"
            )
    if len(set(names)) != len(names):
        raise ModelFileError(f"{path}: the class names are not all different")
    metadata = _field(header, "metadata", dict, path)
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
    return model, tuple(names), dict(metadata)


def _check_checkpoint_header(header: Any, path: Path) -> tuple[Any, ...]:
    """``(model, config, position, history, class_names, metadata)`` of a checkpoint's
    header, every field checked.
    """
    model, class_names, metadata = _check_model_header(header, path)
    try:
        config = TrainConfig(**_field(header, "train_config", dict, path))
    except (TypeError, ConfigError) as exc:
        raise ModelFileError(
            f"{path}: the header's training configuration is not valid ({describe(exc)})"
        ) from None
    position = _field(header, "position", dict, path)
    if set(position) != {"epoch", "step", "batch", "logged", "seconds"}:
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
    if len(records) != position["epoch"] or any(r.epoch != i for i, r in enumerate(records, 1)):
        raise ModelFileError(
            f"{path}: the history's epochs {[r.epoch for r in records][:8]} "
            f"do not count up to position.epoch {position['epoch']}"
        )
    _count(_field(header, "checkpoint_every", int, path), path, "checkpoint_every")
    return model, config, position, History(records, steps), class_names, metadata


def _field(obj: Any, name: str, kind: type, path: Path, where: str | None = None) -> Any:
    """``obj[name]``, which must be of type ``kind`` (never a bool for an int)."""
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
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ModelFileError(
            f"{path}: the header's {where} must be an integer >= 0, got {value!r:.80}"
        )
    return value


def _number(value: Any, path: Path, where: str) -> float:
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
    """An EpochRecord or StepRecord from its dict, every field checked: counts are integers,
    losses and times finite numbers >= 0, accuracies in [0, 1], test values maybe null.
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


# --- the tensors ----------------------------------------------------------------------------


def _shapes(param_shapes: dict[str, tuple[int, ...]], prefix: str = "") -> dict[str, Any]:
    """Float32 tensors of fixed shapes: ``{name: (dtype, allowed shapes)}``."""
    return {prefix + name: (F32, [shape]) for name, shape in param_shapes.items()}


def _input_shapes(model: Any) -> dict[str, Any]:
    return {name: (F32, [(), (model.num_inputs,)]) for name in INPUT_TENSORS}


def _input_tensors(model: Any) -> dict[str, np.ndarray]:
    return {
        "input_mean": np.asarray(model.input_mean, dtype=np.float32),
        "input_scale": np.asarray(model.input_scale, dtype=np.float32),
    }


def _checkpoint_shapes(checked: tuple[Any, ...], present: dict[str, Any]) -> dict[str, Any]:
    """The tensors a checkpoint with this header holds: parameters, momentum buffers with
    momentum, the epoch's sums in the middle of an epoch, and a data order (of any length:
    it is compared with the data's later) when an SGD run has epochs to go.
    """
    model, config, position = checked[:3]
    expected = {**_shapes(model.param_shapes(), "params."), **_input_shapes(model)}
    if config.momentum:
        expected.update(_shapes(model.param_shapes(), "opt.momentum."))
    if position["batch"]:  # in the dtypes the backend accumulated them in
        expected["epoch_sums.loss"] = ((F32, F64), [(1,)])
        expected["epoch_sums.correct"] = ((I32, I64), [(1,)])
    if config.optimizer == "sgd" and position["epoch"] < config.epochs:
        order = present.get("data_order")
        expected["data_order"] = (I64, [_shape(order)] if order is not None else [])
    return expected


def _shape(declared: Any) -> tuple[int, ...]:
    """The shape of a tensor, or of a declaration ``(dtype, shape)``, when it is 1-D."""
    shape = tuple(declared[1] if isinstance(declared, tuple) else declared.shape)
    return shape if len(shape) == 1 else (-1,)


def _check_tensors(path: Path, tensors: dict[str, Any], expected: dict[str, Any]) -> int:
    """The tensors (or their declarations, ``(dtype, shape)``) are exactly the expected ones,
    each of the expected dtype and one of its allowed shapes; returns their size in bytes.
    """
    declared = {
        name: t if isinstance(t, tuple) else (_DTYPES.get(t.dtype, str(t.dtype)), tuple(t.shape))
        for name, t in tensors.items()
    }
    missing = sorted(set(expected) - set(declared))
    extra = sorted(set(declared) - set(expected))
    if missing or extra:
        raise ModelFileError(
            f"{path}: the tensors do not match the header's model "
            f"(missing: {', '.join(missing) or 'none'}; unexpected: "
            f"{', '.join(extra[:8]) or 'none'})"
        )
    nbytes = 0
    for name, (dtype, shape) in declared.items():
        dtypes, shapes = expected[name]
        dtypes = (dtypes,) if isinstance(dtypes, str) else dtypes
        if dtype not in dtypes or tuple(shape) not in [tuple(s) for s in shapes]:
            raise ModelFileError(
                f"{path}: tensor {name} is {dtype} {tuple(shape)}, expected "
                f"{' or '.join(dtypes)} "
                f"{' or '.join(str(tuple(s)) for s in shapes)}"
            )
        nbytes += math.prod(shape) * _ITEMSIZE[dtype]
    return nbytes


def _check_finite(path: Path, tensors: dict[str, np.ndarray]) -> None:
    for name, tensor in tensors.items():
        if not np.isfinite(tensor).all():
            raise ModelFileError(f"{path}: tensor {name} holds NaN or infinite values")


def _with_inputs(path: Path, model: Any, tensors: dict[str, np.ndarray]) -> Any:
    """``model`` with the input standardisation the file holds (finite, scales > 0)."""
    try:
        return replace(model, input_mean=tensors["input_mean"], input_scale=tensors["input_scale"])
    except ConfigError as exc:
        raise ModelFileError(
            f"{path}: the input standardisation is not valid ({describe(exc)})"
        ) from None


def _host(tree: dict[str, Any]) -> dict[str, Any]:
    return backend.tree_map(lambda a: np.ascontiguousarray(backend.to_numpy(a)), tree)


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
            *parents, leaf = key[len(prefix) :].split(".")
            node = tree
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value
    return tree


# --- the file -------------------------------------------------------------------------------


def _digest(header: dict[str, Any], tensors: dict[str, np.ndarray]) -> str:
    """SHA-256 of the header (without its ``sha256``) and of every tensor, in name order."""
    h = hashlib.sha256(canonical_json({k: v for k, v in header.items() if k != "sha256"}).encode())
    for name in sorted(tensors):
        t = np.ascontiguousarray(tensors[name])
        h.update(f"\n{name}:{t.dtype.str}:{t.shape}\n".encode())
        h.update(t.reshape(-1).view(np.uint8))  # the bytes, without a copy
    return h.hexdigest()


def _check_digest(path: Path, header: dict[str, Any], tensors: dict[str, np.ndarray]) -> None:
    if _digest(header, tensors) != header.get("sha256"):
        raise ModelFileError(
            f"{path}: the header or the tensors do not match the file's "
            f"checksum (changed since it was written?)"
        )


def _write(path: str | Path, tensors: dict[str, np.ndarray], header: dict[str, Any]) -> Path:
    save = require("safetensors.numpy", "saving models").save
    header = {**header, "sha256": _digest(header, tensors)}
    path = Path(path)
    atomic_write_bytes(path, save(tensors, metadata={HEADER_KEY: canonical_json(header)}))
    return path


class _SafetensorsFile:
    """An open safetensors file whose header and tensors are read only after checks."""

    def __init__(self, path: Path, what: str):
        self.path, self.what = path, what
        require("safetensors.numpy", f"reading a {what}")

    def __enter__(self) -> _SafetensorsFile:
        from safetensors import safe_open

        if not self.path.is_file():
            raise ModelFileError(f"{self.path}: no such {self.what}")
        try:  # reads and checks the safetensors header only (the file is memory-mapped)
            self._file = safe_open(str(self.path), framework="numpy")
            self._handle = self._file.__enter__()
            self.metadata = dict(self._handle.metadata() or {})
            names = self._handle.keys()
            self.declared = {
                name: (
                    self._handle.get_slice(name).get_dtype(),
                    tuple(self._handle.get_slice(name).get_shape()),
                )
                for name in names
            }
        except Exception as exc:  # safetensors has an error type for every kind of damage
            self.__exit__()
            raise ModelFileError(
                f"{self.path}: not a readable safetensors {self.what} ({describe(exc)})"
            ) from None
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if hasattr(self, "_file"):
            self._file.__exit__(None, None, None)

    def header(self, kind: str) -> dict[str, Any]:
        """The softreg header, parsed: a dict of the right kind and format."""
        if HEADER_KEY not in self.metadata:
            if {"softreg_format", "softreg_checkpoint"} & set(self.metadata):
                raise ModelFileError(
                    f"{self.path}: written by an earlier softreg (format 1, "
                    f"whose header no checksum covers); train it again"
                )
            raise ModelFileError(f"{self.path}: not a softreg {self.what} (no softreg header)")
        others = sorted(set(self.metadata) - {HEADER_KEY})
        if others:  # no checksum covers them: refused rather than ignored
            raise ModelFileError(
                f"{self.path}: metadata entries beside softreg's header "
                f"({', '.join(repr(k)[:40] for k in others[:4])})"
            )
        header = parse_json(self.metadata[HEADER_KEY], f"{self.path}: the header", ModelFileError)
        if not isinstance(header, dict):
            raise ModelFileError(f"{self.path}: the header is not a JSON object")
        if header.get("kind") != kind:
            raise ModelFileError(
                f"{self.path}: not a softreg {self.what} (it is a {header.get('kind')!r:.40} file)"
            )
        if header.get("format") != FORMAT:
            raise ModelFileError(
                f"{self.path}: format {header.get('format')!r:.40}, but this "
                f"softreg reads format {FORMAT}"
            )
        if not isinstance(header.get("sha256"), str):
            raise ModelFileError(f"{self.path}: the header has no checksum")
        return header

    def tensors(self, expected: dict[str, Any]) -> dict[str, np.ndarray]:
        """Every tensor, read after checking that the declared ones are the ``expected``
        ones (names, dtypes, shapes) and fit in memory.
        """
        nbytes = _check_tensors(self.path, self.declared, expected)
        check_fits_in_memory(nbytes, f"{self.path}: its tensors take", ModelFileError)
        try:
            return {name: self._handle.get_tensor(name) for name in self.declared}
        except Exception as exc:
            raise ModelFileError(
                f"{self.path}: cannot read its tensors ({describe(exc)})"
            ) from None
