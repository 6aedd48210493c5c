"""Files in and out: atomic writes, and JSON read back without surprises.

A crash or exception never leaves a half-written file behind:
the data goes to a temporary file in the destination's directory (so the final
``os.replace`` is a same-filesystem rename, which POSIX makes atomic) and replaces the
destination only after it has been flushed and fsynced.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import math
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from softreg.errors import SoftregError
from softreg.limits import check_fits_in_memory

__all__ = [
    "atomic_write",
    "atomic_write_bytes",
    "canonical_json",
    "fsync_directory",
    "make_directories",
    "parse_json",
    "regular_file_opener",
    "remove_empty_directories",
    "write_csv",
    "write_json",
]


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file that replaces ``path`` when the ``with`` block succeeds.

    If the block raises, the temporary file is deleted and ``path`` is left exactly as it
    was. The new file gets the permissions of the file it replaces, or the usual umask-based
    ones when ``path`` is new (``NamedTemporaryFile`` alone would leave it readable only by
    its owner).

    Parameters
    ----------
    path : str or os.PathLike
        The file to write; its directory must exist.
    mode : {"wb", "w"}
        Binary, or UTF-8 text.

    Yields
    ------
    file object
        The temporary file, in the destination's directory, named ``.<name>.<random>.tmp``.

    Raises
    ------
    ValueError
        Another ``mode``.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write: mode must be 'wb' or 'w', got {mode!r}")
    path = Path(path)
    permissions = _permissions_for(path)
    tmp = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed below, kept on success
        mode=mode,
        encoding=None if "b" in mode else "utf-8",
        delete=False,
        dir=path.parent,
        prefix=f".{path.name}.",
        suffix=".tmp",
    )
    try:
        with tmp:
            yield tmp
            tmp.flush()
            os.fsync(tmp.fileno())
        os.chmod(tmp.name, permissions)
        os.replace(tmp.name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp.name)
        raise
    fsync_directory(path.parent)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`).

    Parameters
    ----------
    path : str or os.PathLike
        The file to write.
    data : bytes
        Its whole content.
    """
    with atomic_write(path, "wb") as f:
        f.write(data)


def make_directories(path: str | os.PathLike[str]) -> list[Path]:
    """Create a directory and its missing parents.

    Parameters
    ----------
    path : str or os.PathLike
        The directory.

    Returns
    -------
    list of Path
        The directories this call created, deepest first (one another process made meanwhile
        is not counted), for :func:`remove_empty_directories` to take back when what was to
        go in them fails.
    """
    path = Path(path)
    missing = [d for d in (path, *path.parents) if not d.exists()]
    created = []
    for directory in reversed(missing):
        try:
            directory.mkdir()
        except FileExistsError:
            continue
        created.append(directory)
    return created[::-1]


def remove_empty_directories(directories: list[Path]) -> None:
    """Remove each of ``directories`` (deepest first) that is still empty.

    Parameters
    ----------
    directories : list of Path
        As :func:`make_directories` returns them.
    """
    for directory in directories:
        with contextlib.suppress(OSError):
            directory.rmdir()


def _permissions_for(path: Path) -> int:
    """Return the permission bits of the file ``path`` replaces, or of a new file."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        # There is no os.getumask(); setting and restoring is the portable way to read it.
        umask = os.umask(0o022)
        os.umask(umask)
        return 0o666 & ~umask


def fsync_directory(directory: str | os.PathLike[str]) -> None:
    """Flush a directory's entries to disk, making a rename into it durable.

    Best effort: not every platform or filesystem lets a directory be opened and fsynced
    (Windows cannot open one, and needs no such step), and then nothing happens.

    Parameters
    ----------
    directory : str or os.PathLike
        The directory.
    """
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


MAX_JSON_DEPTH = 64  # softreg's own JSON nests 4 deep
MAX_JSON_INT = 2**64  # integers beyond this are no count or seed softreg writes
# Bytes of memory a byte of JSON text may become once parsed, at most, when containers make
# up no more than 1 in MAX_CONTAINER_DENSITY of its characters (Python's empty dict takes
# 64 bytes; "{}," three characters).
JSON_EXPANSION = 40
MAX_CONTAINER_DENSITY = 16


def parse_json(text: str | bytes, what: str, error: type[SoftregError] = SoftregError) -> Any:
    """Parse JSON from outside: ``json.loads(text)``, bounded, failing with one line.

    JSON from outside is bounded before and while it is parsed: text that could not fit in
    memory once parsed, or made mostly of brackets (a flood of ``{}`` takes twenty times its
    size), nesting deeper than MAX_JSON_DEPTH, numbers beyond float64 or integers beyond
    MAX_JSON_INT (which later arithmetic would overflow on), NaN and infinity (which JSON does
    not have), and bytes that are not UTF-8 are all refused.

    Parameters
    ----------
    text : str or bytes
        The JSON text; bytes are decoded as UTF-8 (a byte-order mark is allowed).
    what : str
        What the text is (e.g. a file's name), starting every message.
    error : type of SoftregError
        The exception raised.

    Returns
    -------
    Any
        The parsed value.

    Raises
    ------
    SoftregError
        (``error``) For every way the text can fail, naming ``what``.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise error(
                f"{what}: not valid JSON (not UTF-8: {exc.reason} at byte {exc.start})"
            ) from None
    check_fits_in_memory(
        len(text) * JSON_EXPANSION, f"{what}: {len(text)} bytes of JSON may take", error
    )
    containers = text.count("{") + text.count("[")
    if containers > 64 and containers * MAX_CONTAINER_DENSITY > len(text):
        raise error(
            f"{what}: {containers} objects and lists in {len(text)} bytes, too many to be softreg's"
        )
    try:
        value = json.loads(
            text, parse_constant=_no_constant, parse_int=_bounded_int, parse_float=_finite_float
        )
    except RecursionError:
        raise error(f"{what}: nested too deeply to be read") from None
    except (ValueError, TypeError) as exc:  # JSONDecodeError included
        raise error(f"{what}: not valid JSON ({exc})") from None
    if _depth(value) > MAX_JSON_DEPTH:
        raise error(f"{what}: nested deeper than {MAX_JSON_DEPTH} levels")
    return value


def _no_constant(name: str) -> Any:
    """Refuse NaN and Infinity, which JSON does not have."""
    raise ValueError(f"{name} is not a JSON number")


def _bounded_int(text: str) -> int:
    """Return the integer of ``text``, refused from MAX_JSON_INT on."""
    value = int(text)  # Python refuses more than 4300 digits itself (a ValueError)
    if abs(value) >= MAX_JSON_INT:
        raise ValueError(f"the integer {text[:20]}... is too large")
    return value


def _finite_float(text: str) -> float:
    """Return the float of ``text``, refused beyond float64's range."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]} is beyond float64's range")
    return value


def _depth(value: Any) -> int:
    """Return how deeply lists and dicts nest in ``value``.

    Iteratively: no recursion limit; only containers are visited, so a long list of numbers
    costs nothing.
    """
    deepest = 0
    stack = [(value, 1)] if isinstance(value, (dict, list)) else []
    while stack and deepest <= MAX_JSON_DEPTH:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1))
    return deepest


def write_csv(path: str | os.PathLike[str], rows: Iterable[Mapping[str, Any]]) -> None:
    """Write rows as a CSV file with a header line, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Where the file goes; it appears whole or not at all (see :func:`atomic_write`).
    rows : iterable of mapping
        One mapping per row, all with the same keys in the same order: the first row's keys
        are the header.

    Raises
    ------
    ValueError
        There are no rows, or a row has keys the first one does not.
    """
    rows = list(rows)
    if not rows:
        raise ValueError(f"no rows to write to {path}")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(path, buf.getvalue().encode())


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically.

    JSON has no NaN or infinity (a diverged run's loss, say): those are written as ``null``,
    so every reader can read the file.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write.
    obj : Any
        Dicts, lists, tuples, strings, numbers, booleans and None.
    """
    text = json.dumps(_finite(obj), indent=2, allow_nan=False)
    atomic_write_bytes(path, (text + "\n").encode())


def _finite(obj: Any) -> Any:
    """Return ``obj`` with every NaN or infinite float as None."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {key: _finite(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(value) for value in obj]
    return obj


def canonical_json(obj: Any) -> str:
    """Return the one spelling of ``obj`` as JSON: keys sorted, no spaces, ASCII only.

    Equal objects give equal strings in every process, so the text can be hashed and
    compared.

    Parameters
    ----------
    obj : Any
        A JSON value, without NaN or infinity.

    Returns
    -------
    str
        The canonical JSON text.

    Raises
    ------
    ValueError
        ``obj`` holds NaN or infinity.
    """
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    )


def regular_file_opener(path: str, flags: int) -> int:
    """Open a file with ``os.open``, refusing anything but a regular file before reading.

    For ``open(..., opener=regular_file_opener)``: a FIFO would block, a device never end.
    O_NONBLOCK lets a FIFO open at all; it does not matter for a regular file.

    Parameters
    ----------
    path : str
        The file.
    flags : int
        ``os.open``'s flags.

    Returns
    -------
    int
        The file descriptor.

    Raises
    ------
    OSError
        ``EINVAL`` "not a regular file", or what ``os.open`` raises.
    """
    fd = os.open(path, flags | os.O_NONBLOCK)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file", path)
    return fd
