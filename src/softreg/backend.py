"""The one place that knows array libraries.

Everything numeric in softreg (ops, models, optim, train) is written against an array
namespace ``xp`` that follows the Python array API standard. It is resolved once, at the
boundary (``fit``, the CLI's ``--backend``), from the arrays themselves, and passed down.
Data loading and random draws stay on the host in NumPy; arrays cross to the namespace's
device once, through :func:`asarray`, and come back through :func:`to_numpy`.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from softreg.errors import ConfigError

BACKENDS = ("numpy",)


def get_namespace(*arrays: Any, xp: ModuleType | None = None) -> ModuleType:
    """Return the array namespace of ``arrays`` (or ``xp`` itself when given).

    NumPy >= 2.1 implements the standard in its main namespace, so NumPy arrays get
    ``numpy`` directly (no wrapper on the hot path). Other libraries go through
    ``array_api_compat`` when it is installed.
    """
    if xp is not None:
        return xp
    if all(isinstance(a, (np.ndarray, np.generic)) for a in arrays):
        return np
    try:
        import array_api_compat
    except ImportError:
        kinds = sorted({type(a).__module__.split(".")[0] for a in arrays})
        raise ConfigError(
            f"arrays of type {', '.join(kinds)} need array-api-compat: pip install array-api-compat"
        ) from None
    return array_api_compat.array_namespace(*arrays)


def namespace_for(backend: str) -> ModuleType:
    """The array namespace behind a ``--backend`` name."""
    if backend == "numpy":
        return np
    raise ConfigError(f"unknown backend {backend!r}; available: {', '.join(BACKENDS)}")


def asarray(x: Any, xp: ModuleType, *, device: Any = None) -> Any:
    """Move a host (NumPy) array into namespace ``xp`` on ``device``, copying at most once."""
    if xp is np:
        return np.asarray(x)
    return xp.asarray(x, device=device)


def to_numpy(x: Any) -> np.ndarray:
    """Bring an array of any namespace back to the host as a NumPy array."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "detach"):  # torch: leave autograd and the device first
        return x.detach().cpu().numpy()
    return np.asarray(x)


def device_of(x: Any) -> str:
    """A printable name for the device ``x`` lives on ("cpu" for NumPy)."""
    dev = getattr(x, "device", "cpu")
    return str(dev)
