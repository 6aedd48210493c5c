"""Exceptions users can act on. The CLI turns every SoftregError into one line and exit status 2."""

import importlib
from types import ModuleType


class SoftregError(Exception):
    """Base class: something about the user's input or environment is wrong, not a bug."""


class ConfigError(SoftregError, ValueError):
    """A hyperparameter or option has a value that cannot work (e.g. batch_size=0)."""


class ModelFileError(SoftregError):
    """A model file is missing, truncated, tampered with, or of another shape."""


class RunDirError(SoftregError):
    """The run directory cannot be created or would overwrite an earlier run."""


class MissingDependencyError(SoftregError, ImportError):
    """An optional dependency (an extra) is needed for this feature."""

    def __init__(self, package: str, feature: str, extra: str = "cli"):
        super().__init__(
            f"{feature} needs the '{package}' package: pip install 'softreg[{extra}]'"
        )


def require(module: str, feature: str, *, package: str | None = None) -> ModuleType:
    """Import an optional dependency, or say which extra provides it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(package or module.split(".")[0], feature) from None
