"""The tensors of model files and checkpoints: which ones a header implies, and their checks.

A model file holds the model's parameters (``W``, ``b`` or ``W1``, ``b1``, ...) and its input
standardisation (``input_mean``, ``input_scale``), all float32. A checkpoint prefixes the
parameters with ``params.`` and adds the optimiser state (``opt.``), the epoch's sums so far
(``epoch_sums.``) and the epoch's data order (``data_order``). Every tensor's name, dtype and
shape is checked against these before it is read.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from softreg import backend
from softreg.checkpoint_header import CheckpointHeader
from softreg.errors import ModelFileError

__all__ = [
    "F32",
    "F64",
    "I32",
    "I64",
    "INPUT_TENSORS",
    "check_finite",
    "check_tensors",
    "checkpoint_shapes",
    "flatten",
    "host",
    "input_tensors",
    "model_shapes",
    "unflatten",
]

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


def check_tensors(path: Path, tensors: dict[str, Any], expected: dict[str, Any]) -> int:
    """Refuse tensors that are not exactly the expected ones, of their dtypes and shapes.

    Parameters
    ----------
    path : Path
        The file, for messages.
    tensors : dict
        Name to array, or to its declaration ``(dtype, shape)`` (dtype as safetensors names
        it, e.g. ``"F32"``).
    expected : dict
        Name to ``(dtypes, shapes)``: one dtype name or a tuple of them, and the list of
        allowed shapes.

    Returns
    -------
    int
        The tensors' size in bytes.

    Raises
    ------
    ModelFileError
        Naming the missing or unexpected tensors, or the first of another dtype or shape.
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


def check_finite(path: Path, tensors: dict[str, np.ndarray]) -> None:
    """Refuse tensors holding NaN or infinite values.

    Parameters
    ----------
    path : Path
        The file, for messages.
    tensors : dict of str to ndarray
        Name to array, of any shape; checked in the dict's order.

    Raises
    ------
    ModelFileError
        Naming the first such tensor.
    """
    for name, tensor in tensors.items():
        if not np.isfinite(tensor).all():
            raise ModelFileError(f"{path}: tensor {name} holds NaN or infinite values")


def host(tree: dict[str, Any]) -> dict[str, Any]:
    """Return a dict (of dicts) of backend arrays as C-contiguous NumPy arrays.

    Parameters
    ----------
    tree : dict
        Nested dicts whose leaves are arrays of any namespace (parameters or optimiser
        state, say), on any device.

    Returns
    -------
    dict
        The same structure, each leaf a C-contiguous ``numpy.ndarray`` on the host (a NumPy
        array that already is one is not copied).
    """
    return backend.tree_map(lambda a: np.ascontiguousarray(backend.to_numpy(a)), tree)


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Return a dict of dicts as one flat dict: ``{"momentum": {"W": a}}`` -> ``{"momentum.W": a}``.

    Parameters
    ----------
    tree : dict
        Nested dicts whose leaves are arrays.
    prefix : str
        Put before every name.

    Returns
    -------
    dict
        Dotted names to the leaves.
    """
    flat = {}
    for name, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{name}."))
        else:
            flat[prefix + name] = value
    return flat


def unflatten(tensors: dict[str, np.ndarray], prefix: str) -> dict[str, Any]:
    """Return the tensors whose names start with ``prefix`` as nested dicts (see :func:`flatten`).

    Parameters
    ----------
    tensors : dict of str to ndarray
        Dotted names to arrays.
    prefix : str
        Only names starting with it are taken, without it.

    Returns
    -------
    dict
        ``{"momentum.W": a}`` with prefix ``""`` -> ``{"momentum": {"W": a}}``.
    """
    tree: dict[str, Any] = {}
    for key, value in tensors.items():
        if key.startswith(prefix):
            *parents, leaf = key[len(prefix) :].split(".")
            node = tree
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value
    return tree


def model_shapes(model: Any, prefix: str = "") -> dict[str, Any]:
    """Return the tensors of a model: its parameters and its input standardisation.

    Parameters
    ----------
    model : SoftmaxRegression or MLP
        The model.
    prefix : str
        Put before the parameters' names (``"params."`` in a checkpoint).

    Returns
    -------
    dict
        Name to ``(dtype, allowed shapes)``, as :func:`check_tensors` takes them: float32
        parameters of the shapes ``model.param_shapes()``; an input mean and scale of shape
        ``()`` or ``(n_features,)``.
    """
    inputs = {name: (F32, [(), (model.num_inputs,)]) for name in INPUT_TENSORS}
    return {**_shapes(model.param_shapes(), prefix), **inputs}


def _shapes(param_shapes: dict[str, tuple[int, ...]], prefix: str = "") -> dict[str, Any]:
    """Return float32 tensors of fixed shapes: ``{name: (dtype, allowed shapes)}``."""
    return {prefix + name: (F32, [shape]) for name, shape in param_shapes.items()}


def input_tensors(model: Any) -> dict[str, np.ndarray]:
    """Return the model's input standardisation as float32 tensors.

    Parameters
    ----------
    model : SoftmaxRegression or MLP
        The model; its ``input_mean`` and ``input_scale`` are taken.

    Returns
    -------
    dict of str to ndarray
        ``input_mean`` and ``input_scale``, each of shape ``()`` or ``(n_features,)``.
    """
    return {
        "input_mean": np.asarray(model.input_mean, dtype=np.float32),
        "input_scale": np.asarray(model.input_scale, dtype=np.float32),
    }


def checkpoint_shapes(checked: CheckpointHeader, present: dict[str, Any]) -> dict[str, Any]:
    """Return the tensors a checkpoint with this header holds.

    Parameters (prefixed ``params.``) and the input standardisation; momentum buffers
    (``opt.momentum.``) with momentum; the epoch's sums in the middle of an epoch; and a data
    order when an SGD run has epochs to go.

    Parameters
    ----------
    checked : CheckpointHeader
        The checkpoint's checked header.
    present : dict
        The tensors (or declarations ``(dtype, shape)``) the file holds: the data order may
        have any length (it is compared with the data's later).

    Returns
    -------
    dict
        Name to ``(dtypes, allowed shapes)``, as :func:`check_tensors` takes them.
    """
    model, config, position = checked.model, checked.config, checked.position
    expected = model_shapes(model, "params.")
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
    """Return the shape of a tensor, or of a declaration ``(dtype, shape)``, when it is 1-D."""
    shape = tuple(declared[1] if isinstance(declared, tuple) else declared.shape)
    return shape if len(shape) == 1 else (-1,)
