"""Atomic file writes: a crash or exception never leaves a half-written file behind.

The data goes to a temporary file in the destination's directory (so the final
``os.replace`` is a same-filesystem rename, which POSIX makes atomic) and replaces the
destination only after it has been flushed and fsynced.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_write", "atomic_write_bytes"]


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file that replaces ``path`` when the ``with`` block succeeds.

    ``mode`` is ``"wb"`` (binary) or ``"w"`` (UTF-8 text). If the block raises, the
    temporary file is deleted and ``path`` is left exactly as it was. The new file gets
    the permissions of the file it replaces, or the usual umask-based ones when ``path``
    is new (``NamedTemporaryFile`` alone would leave it readable only by its owner).
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
    _fsync_directory(path.parent)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    with atomic_write(path, "wb") as f:
        f.write(data)


def _permissions_for(path: Path) -> int:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        # There is no os.getumask(); setting and restoring is the portable way to read it.
        umask = os.umask(0o022)
        os.umask(umask)
        return 0o666 & ~umask


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable; best effort because not every platform or
    # filesystem lets a directory be opened and fsynced.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
