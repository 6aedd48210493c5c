"""The one place that knows array libraries.

Everything numeric in softreg (ops, models, optim, train) is written against an array
namespace ``xp`` that follows the Python array API standard. It is chosen once, at the
boundary (``fit``, the CLI's ``--backend`` and ``--device``), by :func:`resolve`, as a
:class:`Backend`, and passed down. Data loading and random draws stay on the host in NumPy;
arrays cross to the backend's device once, through :meth:`Backend.asarray`, and come back
through :func:`to_numpy`.

NumPy is used directly (it implements the standard in its main namespace since 2.1); PyTorch
goes through ``array_api_compat``; JAX's own ``jax.numpy`` implements the standard; TensorFlow's
``tf.experimental.numpy`` needs four shims (``softreg._tensorflow_xp``). JAX and TensorFlow
also compile the training step (:meth:`Backend.compile`, :mod:`softreg.compiled`). What the
standard lacks is in :mod:`softreg.array_extras`.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from softreg import _libraries
from softreg._libraries import array_api_compat_for, is_tensorflow
from softreg.compiled import Compiled
from softreg.errors import ConfigError, MissingDependencyError

# What users choose from (--backend).
BACKENDS = ("numpy", "torch", "jax", "tensorflow")
# Also accepted by TrainConfig: the standard's strict reference namespace. It is slow and
# CPU-only, and exists to prove that nothing NumPy-specific hides in the code (tests use it).
REFERENCE_BACKENDS = ("array-api-strict",)
# --device: "cuda" and "gpu" are the same thing, in PyTorch's and JAX's words.
DEVICES = ("cpu", "cuda", "gpu")
# The devices each backend can run on, in its own library's word for a GPU (resolve takes
# either word): the device axis of a test matrix.
BACKEND_DEVICES = {
    "numpy": ("cpu",),
    "torch": ("cpu", "cuda"),
    "jax": ("cpu", "gpu"),
    "tensorflow": ("cpu",),
    "array-api-strict": ("cpu",),
}


@dataclass(frozen=True)
class Backend:
    """An array namespace and the device its arrays live on: what :func:`resolve` returns.

    Attributes
    ----------
    name : str
        One of :data:`BACKENDS` or :data:`REFERENCE_BACKENDS`.
    xp : module
        The array namespace (NumPy itself, ``array_api_compat.torch``, ``jax.numpy``, ...).
    device : Any
        The library's own device object (None: the library's default).
    """

    name: str  # one of BACKENDS or REFERENCE_BACKENDS
    xp: ModuleType
    device: Any  # the library's own device object (None: the library's default)

    @property
    def device_name(self) -> str:
        """Printable device name, e.g. ``cpu``, ``cuda:0``, ``gpu:0``."""
        if self.device is None:
            return "cpu"
        return _libraries.device_name(self.device)

    @property
    def mutable(self) -> bool:
        """Whether arrays can be updated in place and steps run eagerly.

        True for NumPy and PyTorch; False for JAX and TensorFlow, whose arrays are replaced
        by compiled steps.
        """
        return self.name not in ("jax", "tensorflow")

    def asarray(self, x: Any) -> Any:
        """Return host (NumPy) data ``x`` as an array of this backend on its device.

        Parameters
        ----------
        x : array_like
            The host data.

        Returns
        -------
        array
            In :attr:`xp` on :attr:`device`, copied once at most (see :func:`asarray`).
        """
        return asarray(x, self.xp, device=self.device)

    def zero(self, dtype: str) -> Any:
        """Return a 0-d zero of ``dtype`` to start a step's sums with.

        On the device for eager libraries; a host zero, an argument of the compiled call
        (no eager operation on the device), for the compiling ones.

        Parameters
        ----------
        dtype : str
            ``"float32"`` or ``"int32"``.
        """
        if not self.mutable:
            return np.zeros((), dtype=dtype)
        return self.xp.zeros((), dtype=getattr(self.xp, dtype), device=self.device)

    def compile(self, fn: Callable[..., Any], *, donate_argnums: tuple[int, ...] = ()) -> Compiled:
        """Return ``fn`` ready to call repeatedly, compiled where the library compiles.

        ``jax.jit`` for JAX, ``tf.function`` (a graph) for TensorFlow, ``fn`` as it is for
        the libraries that run eagerly.

        Parameters
        ----------
        fn : callable
            A pure function of arrays and dicts of arrays.
        donate_argnums : tuple of int
            Arguments whose arrays the caller hands over (JAX reuses their buffers for the
            results; the caller must not use them again). Other libraries need no promise:
            their compiled functions return new arrays and eager ones update in place.

        Returns
        -------
        Compiled
            Callable like ``fn``; it counts the time spent compiling.
        """
        if self.name == "jax":
            import jax

            return Compiled(fn, functools.partial(jax.jit, donate_argnums=donate_argnums))
        if self.name == "tensorflow":
            import tensorflow as tf

            return Compiled(fn, tf.function)
        return Compiled(fn, None)


def resolve(name: str = "numpy", device: str = "cpu") -> Backend:
    """Return the :class:`Backend` for ``--backend name --device device``.

    The one place where backend and device names become a namespace and a device.

    Parameters
    ----------
    name : str, default "numpy"
        One of :data:`BACKENDS` or :data:`REFERENCE_BACKENDS`.
    device : str, default "cpu"
        One of :data:`DEVICES` (``"cuda"`` and ``"gpu"`` are the same).

    Returns
    -------
    Backend
        The namespace and the device object.

    Raises
    ------
    ConfigError
        An unknown name, a device the backend does not run on, or a GPU the library cannot
        see (the message says what the library reports).
    MissingDependencyError
        The library is not installed (the message names the extra that installs it).
    """
    check_names(name, device)
    if name == "numpy":
        if device != "cpu":
            raise ConfigError(
                f"the numpy backend runs on the CPU only; use --backend torch or "
                f"jax for --device {device}"
            )
        return Backend(name, np, None)
    if BACKEND_DEVICES[name] == ("cpu",) and device != "cpu":  # before importing
        raise ConfigError(f"the {name} backend runs on the CPU only")
    xp = _libraries.import_namespace(name)
    return Backend(name, xp, _libraries.device_object(name, device))


def check_names(name: str, device: str) -> None:
    """Refuse unknown backend or device names (without importing anything).

    Parameters
    ----------
    name : str
        A backend name.
    device : str
        A device name.

    Raises
    ------
    ConfigError
        Either name is unknown; the message lists the known ones.
    """
    if name not in BACKENDS + REFERENCE_BACKENDS:
        raise ConfigError(f"unknown backend {name!r}; available: {', '.join(BACKENDS)}")
    if device not in DEVICES:
        raise ConfigError(f"unknown device {device!r}; available: {', '.join(DEVICES)}")


def available(name: str, device: str = "cpu") -> bool:
    """Return whether :func:`resolve` gives a backend for ``name`` and ``device`` here.

    That is, whether the library is installed and, for a GPU, sees one. Imports the library.

    Parameters
    ----------
    name : str
        One of :data:`BACKENDS` or :data:`REFERENCE_BACKENDS`.
    device : str, default "cpu"
        One of :data:`DEVICES`.

    Returns
    -------
    bool
        False where :func:`resolve` would raise.
    """
    try:
        resolve(name, device)
    except (ConfigError, MissingDependencyError):
        return False
    return True


def available_backends(*, reference: bool = True) -> list[tuple[str, str]]:
    """Return every ``(backend, device)`` pair that runs on this machine.

    The pairs of :data:`BACKEND_DEVICES` for which :func:`available` holds: NumPy on the
    CPU always, each optional library once installed, and its GPU where it sees one.
    Imports every installed library.

    Parameters
    ----------
    reference : bool, default True
        Include :data:`REFERENCE_BACKENDS`.

    Returns
    -------
    list of (str, str)
        ``(name, device)`` in the order of :data:`BACKENDS`, then the reference backends.
    """
    names = BACKENDS + (REFERENCE_BACKENDS if reference else ())
    return [(name, dev) for name in names for dev in BACKEND_DEVICES[name] if available(name, dev)]


def versions(name: str) -> dict[str, str]:
    """Return the versions of the libraries behind backend ``name`` (for metrics.json).

    Parameters
    ----------
    name : str
        A backend name.

    Returns
    -------
    dict of str to str
        Package name to version; empty for NumPy (reported elsewhere).
    """
    packages = _libraries.VERSION_PACKAGES.get(name, ())
    return {p: importlib.import_module(p).__version__ for p in packages}


def get_namespace(*arrays: Any, xp: ModuleType | None = None) -> ModuleType:
    """Return the array namespace of ``arrays`` (or ``xp`` itself when given).

    NumPy arrays get ``numpy`` directly (no wrapper on the hot path). Other libraries go
    through ``array_api_compat`` when it is installed; TensorFlow's tensors get
    :mod:`softreg._tensorflow_xp`.

    Parameters
    ----------
    *arrays : array
        Arrays of one library.
    xp : module, optional
        A namespace the caller already knows: returned as it is.

    Returns
    -------
    module
        The namespace.

    Raises
    ------
    ConfigError
        Arrays of a library other than NumPy without ``array_api_compat`` installed.
    """
    if xp is not None:
        return xp
    if all(isinstance(a, (np.ndarray, np.generic)) for a in arrays):
        return np
    if any(is_tensorflow(a) for a in arrays):  # array_api_compat does not know TensorFlow
        from softreg import _tensorflow_xp

        return _tensorflow_xp
    return array_api_compat_for(arrays).array_namespace(*arrays)


def asarray(x: Any, xp: ModuleType, *, device: Any = None) -> Any:
    """Return a host (NumPy) array moved into namespace ``xp`` on ``device``.

    Parameters
    ----------
    x : array_like
        The host data.
    xp : module
        The target namespace.
    device : Any, optional
        The library's device object (None: its default).

    Returns
    -------
    array
        The data in ``xp``, copied at most once (never shared with a read-only buffer).
    """
    if xp is np:
        return np.asarray(x)
    if xp.__name__ == "array_api_compat.torch":
        if isinstance(x, np.ndarray) and not x.flags.writeable:
            # torch cannot share (and warns about) a read-only buffer: share a copy instead.
            return xp.asarray(np.array(x), device=device)
        return xp.asarray(x, device=device, copy=True)
    return xp.asarray(x, device=device)


def tree_map(fn: Callable[[Any], Any], tree: Any) -> Any:
    """Return ``fn`` applied to every array of a dict (of dicts) of arrays.

    Parameters
    ----------
    fn : callable
    tree : dict or array
        Parameters or optimiser state, say.

    Returns
    -------
    dict or Any
        The same structure, each array ``a`` replaced by ``fn(a)``.
    """
    if isinstance(tree, dict):
        return {name: tree_map(fn, value) for name, value in tree.items()}
    return fn(tree)


def device(x: Any) -> Any:
    """Return the device ``x`` lives on, for creating new arrays beside it.

    Parameters
    ----------
    x : array
        An array of any namespace.

    Returns
    -------
    Any
        The library's device object; None for NumPy and TensorFlow (and while JAX traces
        ``x``).
    """
    if isinstance(x, (np.ndarray, np.generic)) or is_tensorflow(x):
        return None
    return array_api_compat_for((x,)).device(x)


def all_finite(x: Any) -> bool:
    """Return whether every entry of ``x`` is finite (one read to the host).

    Parameters
    ----------
    x : array
        An array of any namespace.

    Returns
    -------
    bool
    """
    return bool(np.isfinite(to_numpy(x)).all())  # on the host: no device op to compile


def to_numpy(x: Any) -> np.ndarray:
    """Return ``x`` brought back to the host as a NumPy array.

    Parameters
    ----------
    x : array
        An array of any namespace. A NumPy array is returned as it is; a PyTorch tensor
        leaves autograd and the device first.

    Returns
    -------
    numpy.ndarray
    """
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "detach"):  # torch: leave autograd and the device first
        return x.detach().cpu().numpy()
    return np.asarray(x)
