"""The one place that knows array libraries.

Everything numeric in softreg (ops, models, optim, train) is written against an array
namespace ``xp`` that follows the Python array API standard. It is chosen once, at the
boundary (``fit``, the CLI's ``--backend`` and ``--device``), as a :class:`Backend`, and
passed down. Data loading and random draws stay on the host in NumPy; arrays cross to the
backend's device once, through :meth:`Backend.asarray`, and come back through :func:`to_numpy`.

NumPy is used directly (it implements the standard in its main namespace since 2.1); PyTorch
goes through ``array_api_compat``; JAX's own ``jax.numpy`` implements the standard; TensorFlow's
``tf.experimental.numpy`` needs four shims (``softreg._tensorflow_xp``). JAX and TensorFlow
also compile the training step (see :meth:`Backend.compile`).
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from softreg.errors import ConfigError, MissingDependencyError

# What users choose from (--backend).
BACKENDS = ("numpy", "torch", "jax", "tensorflow")
# Also accepted by TrainConfig: the standard's strict reference namespace. It is slow and
# CPU-only, and exists to prove that nothing NumPy-specific hides in the code (tests use it).
REFERENCE_BACKENDS = ("array-api-strict",)
# --device: "cuda" and "gpu" are the same thing, in PyTorch's and JAX's words.
DEVICES = ("cpu", "cuda", "gpu")

# backend -> (module to import, pip package, softreg extra that installs it)
_REQUIREMENTS = {
    "torch": ("array_api_compat.torch", "torch", "torch"),
    "jax": ("jax.numpy", "jax", "jax"),
    # tf.experimental.numpy with four shims (see _tensorflow_xp); CPU only
    "tensorflow": ("softreg._tensorflow_xp", "tensorflow", "tensorflow"),
    "array-api-strict": ("array_api_strict", "array-api-strict", "test"),
}


@dataclass(frozen=True)
class Backend:
    """An array namespace and the device its arrays live on."""

    name: str  # one of BACKENDS or REFERENCE_BACKENDS
    xp: ModuleType
    device: Any  # the library's own device object (None: the library's default)

    @property
    def device_name(self) -> str:
        """Printable device name, e.g. ``cpu``, ``cuda:0``, ``gpu:0``."""
        if self.device is None:
            return "cpu"
        return _device_name(self.device)

    @property
    def mutable(self) -> bool:
        """Whether arrays can be updated in place and steps run eagerly (NumPy, PyTorch),
        rather than replaced by compiled steps (JAX, TensorFlow).
        """
        return self.name not in ("jax", "tensorflow")

    def asarray(self, x: Any) -> Any:
        """A host (NumPy) array as an array of this backend on its device (one copy at most)."""
        return asarray(x, self.xp, device=self.device)

    def compile(self, fn: Callable[..., Any]) -> Compiled:
        """``fn`` (a pure function of arrays and dicts of arrays) ready to call repeatedly:
        ``jax.jit`` for JAX, ``tf.function`` (a graph) for TensorFlow, as it is for the
        libraries that run eagerly.
        """
        if self.name == "jax":
            import jax

            return Compiled(fn, jax.jit)
        if self.name == "tensorflow":
            import tensorflow as tf

            return Compiled(fn, tf.function)
        return Compiled(fn, None)


class Compiled:
    """A pure function, compiled by ``compiler`` once per distinct argument shapes, or called
    as it is when ``compiler`` is None. The first call with new shapes (tracing and
    compiling; the computation itself runs asynchronously or takes a step's time) is counted
    in ``seconds``, so that callers can report compile time apart from compute time.
    """

    def __init__(self, fn: Callable[..., Any], compiler: Callable[..., Any] | None):
        self.fn = fn
        self.seconds = 0.0
        self._compiled = compiler(fn) if compiler is not None else None
        self._seen: set[Any] = set()

    def __call__(self, *args: Any) -> Any:
        if self._compiled is None:
            return self.fn(*args)
        key = _signature(args)
        if key in self._seen:
            return self._compiled(*args)
        start = time.perf_counter()
        out = self._compiled(*args)
        self.seconds += time.perf_counter() - start
        self._seen.add(key)
        return out


def _signature(obj: Any) -> Any:
    """What a compiled function is specialised on: the structure, shapes and dtypes."""
    if obj is None:  # an optional argument left out (say, no sample weights)
        return None
    if isinstance(obj, dict):
        return tuple((k, _signature(v)) for k, v in obj.items())
    if isinstance(obj, (tuple, list)):
        return tuple(_signature(v) for v in obj)
    return (tuple(obj.shape), str(obj.dtype))


def resolve(name: str = "numpy", device: str = "cpu") -> Backend:
    """The :class:`Backend` for ``--backend name --device device``, or a ConfigError saying
    what is missing (the library, or a GPU it can see).
    """
    check_names(name, device)
    if name == "numpy":
        if device != "cpu":
            raise ConfigError(
                f"the numpy backend runs on the CPU only; use --backend torch or "
                f"jax for --device {device}"
            )
        return Backend(name, np, None)
    if name in ("tensorflow", "array-api-strict") and device != "cpu":  # before importing
        raise ConfigError(f"the {name} backend runs on the CPU only")
    module, package, extra = _REQUIREMENTS[name]
    try:
        xp = importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(package, f"the {name} backend", extra=extra) from None
    if name == "torch":
        return Backend(name, xp, _torch_device(device))
    if name == "jax":
        return Backend(name, xp, _jax_device(device))
    return Backend(name, xp, None)


def check_names(name: str, device: str) -> None:
    """Refuse unknown backend or device names (without importing anything)."""
    if name not in BACKENDS + REFERENCE_BACKENDS:
        raise ConfigError(f"unknown backend {name!r}; available: {', '.join(BACKENDS)}")
    if device not in DEVICES:
        raise ConfigError(f"unknown device {device!r}; available: {', '.join(DEVICES)}")


def namespace_for(name: str) -> ModuleType:
    """The array namespace behind a ``--backend`` name (on its default device)."""
    return resolve(name).xp


def versions(name: str) -> dict[str, str]:
    """Versions of the libraries behind backend ``name`` (for metrics.json)."""
    packages = {
        "torch": ("torch", "array_api_compat"),
        "jax": ("jax", "jaxlib"),
        "tensorflow": ("tensorflow",),
        "array-api-strict": ("array_api_strict",),
    }.get(name, ())
    return {p: importlib.import_module(p).__version__ for p in packages}


def _has_gpu(name: str) -> bool:
    """Whether backend ``name`` (torch or jax, installed) sees a GPU."""
    try:
        resolve(name, "cuda")
    except ConfigError:
        return False
    return True


def _torch_device(device: str) -> Any:
    import torch

    if device == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError(
            f"--device {device}: PyTorch sees no CUDA GPU on this machine "
            f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'no'})"
        )
    return torch.device("cuda", torch.cuda.current_device())


def _jax_device(device: str) -> Any:
    import jax

    platform = "cpu" if device == "cpu" else "gpu"
    try:
        return jax.devices(platform)[0]
    except RuntimeError:
        raise ConfigError(
            f"--device {device}: JAX sees no {platform.upper()} on this machine "
            f"(jax {jax.__version__}; devices: {jax.devices()})"
        ) from None


def get_namespace(*arrays: Any, xp: ModuleType | None = None) -> ModuleType:
    """Return the array namespace of ``arrays`` (or ``xp`` itself when given).

    NumPy arrays get ``numpy`` directly (no wrapper on the hot path). Other libraries go
    through ``array_api_compat`` when it is installed.
    """
    if xp is not None:
        return xp
    if all(isinstance(a, (np.ndarray, np.generic)) for a in arrays):
        return np
    if any(_is_tensorflow(a) for a in arrays):  # array_api_compat does not know TensorFlow
        from softreg import _tensorflow_xp

        return _tensorflow_xp
    array_api_compat = _array_api_compat(arrays)
    return array_api_compat.array_namespace(*arrays)


def asarray(x: Any, xp: ModuleType, *, device: Any = None) -> Any:
    """Move a host (NumPy) array into namespace ``xp`` on ``device``, copying at most once."""
    if xp is np:
        return np.asarray(x)
    if xp.__name__ == "array_api_compat.torch":
        if isinstance(x, np.ndarray) and not x.flags.writeable:
            # torch cannot share (and warns about) a read-only buffer: share a copy instead.
            return xp.asarray(np.array(x), device=device)
        return xp.asarray(x, device=device, copy=True)
    return xp.asarray(x, device=device)


def tree_map(fn: Callable[[Any], Any], tree: Any) -> Any:
    """``fn`` applied to every array of a dict (of dicts) of arrays, such as parameters or
    optimiser state; the structure is kept.
    """
    if isinstance(tree, dict):
        return {name: tree_map(fn, value) for name, value in tree.items()}
    return fn(tree)


def rows_last(x: Any) -> Any:
    """``x`` (2-D) laid out for reductions along its last axis: a NumPy array in column-major
    order, where ``max``/``sum``/``argmax`` over the 10 scores of 256 rows run three times as
    fast (each reduction becomes a vectorised pass over contiguous columns); an array of any
    other library as it is (they choose their own layouts). Values are unchanged.
    """
    if isinstance(x, np.ndarray) and x.ndim == 2:
        return np.asfortranarray(x)
    return x


def device(x: Any) -> Any:
    """The device ``x`` lives on, in its library's terms (None while JAX traces ``x``), for
    creating new arrays beside it.
    """
    if isinstance(x, (np.ndarray, np.generic)) or _is_tensorflow(x):
        return None
    return _array_api_compat((x,)).device(x)


# Namespaces whose arrays cannot be assigned into (``x[:, a:b] = ...``): build results by
# concatenation there instead.
_IMMUTABLE = ("jax.numpy", "softreg._tensorflow_xp")


# Namespaces whose arrays take NumPy's advanced indexing, ``x[rows, cols]`` with integer arrays
# (the standard leaves it out, and array-api-strict refuses it), in place (``x[rows, cols] -= 1``).
_INDEXES_PAIRS = ("numpy", "array_api_compat.numpy", "array_api_compat.torch")


def indexes_pairs_in_place(xp: ModuleType) -> bool:
    """Whether ``x[rows, cols]`` with integer arrays reads and updates arrays of ``xp``."""
    return xp.__name__ in _INDEXES_PAIRS


def supports_item_assignment(xp: ModuleType) -> bool:
    """Whether arrays of ``xp`` take ``x[key] = value`` (the standard has it; JAX and
    TensorFlow arrays are immutable).
    """
    return xp.__name__ not in _IMMUTABLE


def segment_sum(
    values: Any, index: Any, num_segments: int, /, *, xp: ModuleType | None = None
) -> Any:
    """``(num_segments, ...)`` sums of the rows of ``values`` (``(k, ...)``) that share an
    entry of ``index`` (``(k,)`` integers in ``[0, num_segments)``): row ``i`` of the result
    is the sum of ``values[k]`` over every ``k`` with ``index[k] == i``. It is the adjoint of
    ``xp.take(x, index, axis=0)``, the gradient of a gather, which the array API standard
    lacks; each library has its own (``jax.ops.segment_sum``, TensorFlow's
    ``unsorted_segment_sum``).
    """
    xp = get_namespace(values, index, xp=xp)
    name = xp.__name__
    shape = (num_segments, *values.shape[1:])
    if xp is np:
        out = np.zeros(shape, dtype=values.dtype)
        np.add.at(out, index, values)
        return out
    if name == "array_api_compat.torch":
        out = xp.zeros(shape, dtype=values.dtype, device=device(values))
        return out.index_add_(0, xp.astype(index, xp.int64), values)
    if name == "jax.numpy":
        return xp.zeros(shape, dtype=values.dtype).at[index].add(values)
    if name == "softreg._tensorflow_xp":
        import tensorflow as tf

        return tf.math.unsorted_segment_sum(values, index, num_segments)
    # Any other namespace (the strict reference): a product with the (m, k) indicator matrix.
    rows = xp.arange(num_segments, dtype=index.dtype, device=device(index))
    return xp.astype(rows[:, None] == index[None, :], values.dtype) @ values


def all_finite(x: Any) -> bool:
    """Whether every entry of array ``x`` (of any namespace) is finite (one read to the
    host).
    """
    xp = get_namespace(x)
    return bool(xp.all(xp.isfinite(x)))


def to_numpy(x: Any) -> np.ndarray:
    """Bring an array of any namespace back to the host as a NumPy array."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "detach"):  # torch: leave autograd and the device first
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _is_tensorflow(x: Any) -> bool:
    return type(x).__module__.startswith("tensorflow")


def _device_name(dev: Any) -> str:
    if hasattr(dev, "platform") and hasattr(dev, "id"):  # a JAX device: "cpu:0", "gpu:0"
        return f"{dev.platform}:{dev.id}"
    return str(dev)


def _array_api_compat(arrays: tuple[Any, ...]) -> ModuleType:
    try:
        import array_api_compat
    except ImportError:
        kinds = sorted({type(a).__module__.split(".")[0] for a in arrays})
        raise ConfigError(
            f"arrays of type {', '.join(kinds)} need array-api-compat: pip install array-api-compat"
        ) from None
    return array_api_compat
