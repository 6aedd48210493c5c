"""Exceptions users can act on. The CLI turns every SoftregError into one line and exit status 2."""

import importlib
from types import ModuleType


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
    """Training data that cannot be trained on: NaN or inf features, labels out of range,
    mismatched lengths, bad sample weights.
    """


class RunDirError(SoftregError):
    """The run directory cannot be created or would overwrite an earlier run."""


class MissingDependencyError(SoftregError, ImportError):
    """An optional dependency (an extra) is needed for this feature."""

    def __init__(self, package: str, feature: str, extra: str = "cli"):
        super().__init__(f"{feature} needs the '{package}' package: pip install 'softreg[{extra}]'")


def require(
    module: str, feature: str, *, package: str | None = None, extra: str = "cli"
) -> ModuleType:
    """Import an optional dependency, or say which extra provides it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(package or module.split(".")[0], feature, extra) from None


class DistributedError(SoftregError):
    """A data-parallel run cannot go on: another rank died or stopped answering within the
    timeout, or the ranks do not hold the same data and state.
    """


class DivergenceError(SoftregError, FloatingPointError):
    """Training produced a non-finite loss. ``state`` is the last good training state (the
    one before the step that diverged) and ``history`` what was reported until then.
    """

    def __init__(self, message: str, *, state: object, history: object, step: int):
        super().__init__(message)
        self.state = state
        self.history = history
        self.step = step  # the 1-based optimiser step whose loss was not finite

    def __reduce__(self) -> tuple:
        # Pickled with its keywords (a process pool sends it back from its worker).
        return _divergence_error, (str(self), self.state, self.history, self.step)


def _divergence_error(message: str, state: object, history: object, step: int) -> DivergenceError:
    return DivergenceError(message, state=state, history=history, step=step)


def printable(text: str) -> str:
    """``text`` on one line with nothing a terminal would interpret: line breaks and tabs
    become spaces, other control characters their escapes (``\\x1b``). For anything printed
    that comes from outside (paths, file contents, exception messages).
    """
    text = text.strip()
    if text.isprintable():  # the usual case, at C speed
        return text
    return "".join(
        c if c.isprintable() else " " if c in "\n\r\t\v\f" else repr(c)[1:-1] for c in text
    )


def describe(exc: BaseException, limit: int = 300) -> str:
    """An exception from a library (a parser, say) as a short phrase for one of softreg's
    messages: its text on one line, at most ``limit`` characters, or its type's name.
    """
    return printable(" ".join(str(exc).split()))[:limit] or type(exc).__name__
