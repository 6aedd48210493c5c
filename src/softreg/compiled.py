"""Compiled steps: a pure function compiled once per argument shapes, its compile time counted.

JAX (``jax.jit``) and TensorFlow (``tf.function``) compile the training step and the
evaluation; :meth:`softreg.backend.Backend.compile` picks the compiler. The first call with
new shapes traces and compiles: :class:`Compiled` counts that time apart, so that a run can
report compile time apart from compute time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


class Compiled:
    """A pure function, compiled once per distinct argument shapes.

    The first call with new shapes traces and compiles: that time is counted in ``seconds``,
    so that callers can report compile time apart from compute time. JAX compiles ahead of
    the call; TensorFlow traces ahead of it (its graph optimisation, at the first call,
    counts as compute): nothing of the computation is counted as compiling.

    Parameters
    ----------
    fn : callable
        A pure function of arrays and dicts of arrays.
    compiler : callable or None
        ``jax.jit`` or ``tf.function``, say; None calls ``fn`` as it is.

    Attributes
    ----------
    fn : callable
        The function, uncompiled.
    seconds : float
        Time spent in first calls with new shapes.
    """

    def __init__(self, fn: Callable[..., Any], compiler: Callable[..., Any] | None):
        """Compile ``fn`` with ``compiler`` (lazily: the library traces at the first call)."""
        self.fn = fn
        self.seconds = 0.0
        self._compiled = compiler(fn) if compiler is not None else None
        self._seen: dict[Any, Callable[..., Any]] = {}

    def __call__(self, *args: Any) -> Any:
        """Call the compiled function (compiling it for new argument shapes)."""
        if self._compiled is None:
            return self.fn(*args)
        key = _signature(args)
        if key in self._seen:
            return self._seen[key](*args)
        start = time.perf_counter()
        if hasattr(self._compiled, "lower"):  # JAX: compile ahead, so no run is counted
            self._seen[key] = self._compiled.lower(*args).compile()
            self.seconds += time.perf_counter() - start
            return self._seen[key](*args)
        if hasattr(self._compiled, "get_concrete_function"):  # TensorFlow: trace ahead
            self._compiled.get_concrete_function(*args)
            self.seconds += time.perf_counter() - start
            self._seen[key] = self._compiled
            return self._compiled(*args)
        out = self._compiled(*args)
        self.seconds += time.perf_counter() - start
        self._seen[key] = self._compiled
        return out


def _signature(obj: Any) -> Any:
    """Return what a compiled function is specialised on: structure, shapes and dtypes."""
    if obj is None:  # an optional argument left out (say, no sample weights)
        return None
    if isinstance(obj, dict):
        return tuple((k, _signature(v)) for k, v in obj.items())
    if isinstance(obj, (tuple, list)):
        return tuple(_signature(v) for v in obj)
    return (tuple(obj.shape), str(obj.dtype))
