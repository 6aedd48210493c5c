"""TensorFlow as an array-API namespace: ``tf.experimental.numpy`` plus the few pieces it lacks.

TensorFlow has no array-API namespace and ``array_api_compat`` does not cover it, but its NumPy
API carries softreg's core with four shims (found by running the core on it):

- NumPy behaviour switched on (``X.T``, ``y[:, None]``, NumPy type promotion). This is a
  process-wide TensorFlow setting; importing this module turns it on.
- ``astype``, which ``tf.experimental.numpy`` does not have (``tf.cast`` is the same thing).
- the ``device=`` keyword of ``asarray``, ``arange`` and ``zeros``, accepted and ignored:
  TensorFlow places operations itself, so softreg runs it on the CPU only.
- ``concat``, the standard's name for ``concatenate`` (the large-vocabulary loss joins its
  gradient's chunks with it).

Everything else is ``tf.experimental.numpy`` as it is.
"""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # no start-up banner on stderr

import tensorflow as tf  # noqa: E402
import tensorflow.experimental.numpy as tnp  # noqa: E402

tnp.experimental_enable_numpy_behavior()


def __getattr__(name: str) -> Any:
    return getattr(tnp, name)


def astype(x: Any, dtype: Any, /, *, copy: bool = True, device: Any = None) -> Any:
    return tf.cast(x, dtype)


def asarray(obj: Any, /, *, dtype: Any = None, device: Any = None, copy: Any = None) -> Any:
    return tnp.asarray(obj, dtype=dtype)


def arange(*args: Any, device: Any = None, **kwargs: Any) -> Any:
    return tnp.arange(*args, **kwargs)


def zeros(shape: Any, *, dtype: Any = None, device: Any = None) -> Any:
    return tnp.zeros(shape, dtype=dtype if dtype is not None else tnp.float32)


def concat(arrays: Any, /, *, axis: int = 0) -> Any:
    return tnp.concatenate(arrays, axis=axis)
