"""Checks of single values given to softreg: configuration fields, function arguments.

Each check raises :class:`~softreg.errors.ConfigError` (a :class:`ValueError`) that names
the value, and returns the value when it passes.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

from softreg.errors import ConfigError


def check_int(name: str, value: Any, *, minimum: int) -> int:
    """Return ``value`` as an ``int`` after checking that it is an integer >= ``minimum``.

    Parameters
    ----------
    name : str
        What the value is, for the error message.
    value : Any
        The value to check: a Python or NumPy integer (``bool`` is refused).
    minimum : int
        The smallest value allowed.

    Returns
    -------
    int
        ``value`` as a Python integer.

    Raises
    ------
    ConfigError
        ``value`` is not an integer, or is below ``minimum``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    """Return ``value`` after checking that it is one of ``choices``.

    Parameters
    ----------
    name : str
        What the value is, for the error message.
    value : Any
        The value to check.
    choices : sequence of str
        The values allowed.

    Returns
    -------
    str
        ``value``.

    Raises
    ------
    ConfigError
        ``value`` is not one of ``choices``; the message lists them.
    """
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value
