"""What :mod:`softreg.backend` needs to know of each optional array library.

Which module gives its array namespace and which package and softreg extra install it; how
its arrays are recognised; how its device objects are found from ``--device`` and printed;
which packages' versions describe it. NumPy needs none of this: it is always there, on the
CPU.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from softreg.errors import ConfigError, MissingDependencyError

# backend -> (module to import, pip package, softreg extra that installs it)
REQUIREMENTS = {
    "torch": ("array_api_compat.torch", "torch", "torch"),
    "jax": ("jax.numpy", "jax", "jax"),
    # tf.experimental.numpy with four shims (see _tensorflow_xp); CPU only
    "tensorflow": ("softreg._tensorflow_xp", "tensorflow", "tensorflow"),
    "array-api-strict": ("array_api_strict", "array-api-strict", "test"),
}

# backend -> the packages whose versions metrics.json records
VERSION_PACKAGES = {
    "torch": ("torch", "array_api_compat"),
    "jax": ("jax", "jaxlib"),
    "tensorflow": ("tensorflow",),
    "array-api-strict": ("array_api_strict",),
}


def import_namespace(name: str) -> ModuleType:
    """Import backend ``name``'s array namespace, or say which extra installs it."""
    module, package, extra = REQUIREMENTS[name]
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(package, f"the {name} backend", extra=extra) from None


def device_object(name: str, device: str) -> Any:
    """Return backend ``name``'s device object for ``--device device`` (None: the default)."""
    if name == "torch":
        return _torch_device(device)
    if name == "jax":
        return _jax_device(device)
    return None


def is_tensorflow(x: Any) -> bool:
    """Return whether ``x`` is a TensorFlow tensor (without importing TensorFlow)."""
    return type(x).__module__.startswith("tensorflow")


def array_api_compat_for(arrays: tuple[Any, ...]) -> ModuleType:
    """Import ``array_api_compat``, or raise a ConfigError naming the arrays' libraries."""
    try:
        import array_api_compat
    except ImportError:
        kinds = sorted({type(a).__module__.split(".")[0] for a in arrays})
        raise ConfigError(
            f"arrays of type {', '.join(kinds)} need array-api-compat: pip install array-api-compat"
        ) from None
    return array_api_compat


def device_name(dev: Any) -> str:
    """Return a library's device object as text: ``cpu:0``, ``gpu:0`` for JAX, ``cuda:0``."""
    if hasattr(dev, "platform") and hasattr(dev, "id"):  # a JAX device: "cpu:0", "gpu:0"
        return f"{dev.platform}:{dev.id}"
    return str(dev)


def _torch_device(device: str) -> Any:
    """Return PyTorch's device object for ``device``, or a ConfigError without a GPU."""
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
    """Return JAX's first device of the platform ``device`` names, or a ConfigError."""
    import jax

    platform = "cpu" if device == "cpu" else "gpu"
    try:
        return jax.devices(platform)[0]
    except RuntimeError:
        raise ConfigError(
            f"--device {device}: JAX sees no {platform.upper()} on this machine "
            f"(jax {jax.__version__}; devices: {jax.devices()})"
        ) from None
