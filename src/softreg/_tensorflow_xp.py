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

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # no start-up banner on stderr


# What TensorFlow's C++ runtime prints on stderr at import on every machine, whatever
# TF_CPP_MIN_LOG_LEVEL says: notices, not problems.
_START_UP_NOTICES = (
    "All log messages before absl::InitializeLog()",
    "oneDNN custom operations are on",
    "cpu_feature_guard",
    "This TensorFlow binary is optimized",
    "Could not find cuda drivers",
    "Unable to register cu",
)


@contextlib.contextmanager
def _start_up_notices_dropped() -> Iterator[None]:
    """Pass on what the block writes to file descriptor 2, without TensorFlow's notices.

    softreg's stderr is for one line. Anything else (a real problem) still reaches stderr.
    """
    try:
        sys.stderr.flush()
        saved, capture = os.dup(2), tempfile.TemporaryFile()  # noqa: SIM115 - closed below
        os.dup2(capture.fileno(), 2)
    except OSError:  # no descriptor to spare: let the notices through
        yield
        return
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        capture.seek(0)
        lines = capture.read().decode("utf-8", "replace").splitlines()
        capture.close()
        rest = [line for line in lines if not any(n in line for n in _START_UP_NOTICES)]
        if rest:
            print("\n".join(rest), file=sys.stderr)


with _start_up_notices_dropped():
    import tensorflow as tf
    import tensorflow.experimental.numpy as tnp

tnp.experimental_enable_numpy_behavior()


def __getattr__(name: str) -> Any:
    """Return everything not shimmed here from ``tf.experimental.numpy``."""
    return getattr(tnp, name)


def astype(x: Any, dtype: Any, /, *, copy: bool = True, device: Any = None) -> Any:
    """Return ``x`` cast to ``dtype`` (``tf.cast``)."""
    return tf.cast(x, dtype)


def asarray(obj: Any, /, *, dtype: Any = None, device: Any = None, copy: Any = None) -> Any:
    """Return ``obj`` as a tensor; ``device`` and ``copy`` are ignored."""
    return tnp.asarray(obj, dtype=dtype)


def arange(*args: Any, device: Any = None, **kwargs: Any) -> Any:
    """Return ``tnp.arange``; ``device`` is ignored."""
    return tnp.arange(*args, **kwargs)


def zeros(shape: Any, *, dtype: Any = None, device: Any = None) -> Any:
    """Return zeros, float32 unless ``dtype`` says otherwise; ``device`` is ignored."""
    return tnp.zeros(shape, dtype=dtype if dtype is not None else tnp.float32)


def concat(arrays: Any, /, *, axis: int = 0) -> Any:
    """Return ``tnp.concatenate``, under the standard's name."""
    return tnp.concatenate(arrays, axis=axis)
