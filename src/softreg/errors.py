"""Exceptions users can act on.

The CLI turns every :class:`SoftregError` into one line and exit status 2.
"""

import importlib
from types import ModuleType

__all__ = [
    "MAX_MESSAGE",
    "ConfigError",
    "DataValueError",
    "DistributedError",
    "DivergenceError",
    "MissingDependencyError",
    "ModelFileError",
    "RunDirError",
    "SoftregError",
    "describe",
    "printable",
    "require",
]


class SoftregError(Exception):
    """Base class: something about the user's input or environment is wrong, not a bug.

    The message is made one printable line (see :func:`printable`) of at most
    MAX_MESSAGE characters, whatever it quotes: a file name, a key or a value from a hostile
    file cannot break the one-line promise, reach a terminal as control characters, or
    make the message itself a copy of a large file.
    """

    def __init__(self, message: object = "", *args: object):
        text = str(message)
        if len(text) > MAX_MESSAGE:
            text = text[:MAX_MESSAGE] + " ..."
        super().__init__(printable(text), *args)


MAX_MESSAGE = 2000  # characters of an error's message: one line a person reads


class ConfigError(SoftregError, ValueError):
    """A hyperparameter or option has a value that cannot work (e.g. batch_size=0)."""


class ModelFileError(SoftregError):
    """A model file is missing, truncated, tampered with, or of another shape."""


class DataValueError(SoftregError, ValueError):
    """Training data that cannot be trained on.

    NaN or inf features, labels out of range, mismatched lengths, bad sample weights.
    """


class RunDirError(SoftregError):
    """The run directory cannot be created or would overwrite an earlier run."""


class MissingDependencyError(SoftregError, ImportError):
    """An optional dependency (an extra) is needed for this feature.

    Parameters
    ----------
    package : str
        The package to install.
    feature : str
        What needs it, starting the message.
    extra : str
        The softreg extra that installs it.
    """

    def __init__(self, package: str, feature: str, extra: str = "cli"):
        super().__init__(f"{feature} needs the '{package}' package: pip install 'softreg[{extra}]'")


def require(
    module: str, feature: str, *, package: str | None = None, extra: str = "cli"
) -> ModuleType:
    """Import an optional dependency, or say which extra provides it.

    Parameters
    ----------
    module : str
        The module to import, e.g. ``"safetensors.numpy"``.
    feature : str
        What needs it, for the message.
    package : str, optional
        The package that provides it (default: the module's top-level name).
    extra : str
        The softreg extra that installs it.

    Returns
    -------
    module
        The imported module.

    Raises
    ------
    MissingDependencyError
        The module cannot be imported.
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(package or module.split(".")[0], feature, extra) from None


class DistributedError(SoftregError):
    """A data-parallel run cannot go on.

    Another rank died or stopped answering within the timeout, or the ranks do not hold the
    same data and state.
    """


class DivergenceError(SoftregError, FloatingPointError):
    """Training produced a non-finite loss.

    Parameters
    ----------
    message : str
        What happened.
    state : TrainState
        The last good training state (the one before the step that diverged).
    history : History
        What was reported until then.
    step : int
        The 1-based optimiser step whose loss was not finite.

    Attributes
    ----------
    state, history, step
        As given.
    """

    def __init__(self, message: str, *, state: object, history: object, step: int):
        super().__init__(message)
        self.state = state
        self.history = history
        self.step = step  # the 1-based optimiser step whose loss was not finite

    def __reduce__(self) -> tuple:
        """Pickle it with its keywords (a process pool sends it back from its worker)."""
        return _divergence_error, (str(self), self.state, self.history, self.step)


def _divergence_error(message: str, state: object, history: object, step: int) -> DivergenceError:
    """Return the DivergenceError of these arguments (for unpickling)."""
    return DivergenceError(message, state=state, history=history, step=step)


def printable(text: str) -> str:
    r"""Return ``text`` on one line with nothing a terminal would interpret.

    Line breaks and tabs become spaces, other control characters their escapes (``\x1b``).
    For anything printed that comes from outside (paths, file contents, exception messages).

    Parameters
    ----------
    text : str
        Any text.

    Returns
    -------
    str
        The text, stripped and printable.
    """
    text = text.strip()
    if text.isprintable():  # the usual case, at C speed
        return text
    return "".join(
        c if c.isprintable() else " " if c in "\n\r\t\v\f" else repr(c)[1:-1] for c in text
    )


def describe(exc: BaseException, limit: int = 300) -> str:
    """Return an exception from a library (a parser, say) as a phrase for softreg's messages.

    Parameters
    ----------
    exc : BaseException
        The exception.
    limit : int
        The most characters returned.

    Returns
    -------
    str
        Its text on one printable line, at most ``limit`` characters, or its type's name.
    """
    return printable(" ".join(str(exc).split()))[:limit] or type(exc).__name__
