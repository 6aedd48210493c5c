"""Files in and out: atomic writes, and JSON read back without surprises.

A crash or exception never leaves a half-written file behind:
the data goes to a temporary file in the destination's directory (so the final
``os.replace`` is a same-filesystem rename, which POSIX makes atomic) and replaces the
destination only after it has been flushed and fsynced.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
import tokenize
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from softreg.errors import SoftregError
from softreg.limits import check_fits_in_memory

__all__ = ["atomic_write", "atomic_write_bytes", "canonical_json", "load_npy", "parse_json"]


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


def parse_json(text: str | bytes, what: str, error: type[SoftregError] = SoftregError) -> Any:
    """``json.loads(text)``, with every way it can fail turned into ``error`` naming ``what``.

    Besides malformed text that includes nesting too deep for Python's parser (its
    ``RecursionError``) and bytes that are not UTF-8; NaN and infinity, which JSON does not
    have, are refused too.
    """

    def no_constants(name: str) -> Any:
        raise ValueError(f"{name} is not a JSON number")

    try:
        return json.loads(text, parse_constant=no_constants)
    except RecursionError:
        raise error(f"{what}: nested too deeply to be read") from None
    except (ValueError, TypeError) as exc:  # JSONDecodeError and UnicodeDecodeError included
        raise error(f"{what}: not valid JSON ({exc})") from None


def canonical_json(obj: Any) -> str:
    """One spelling of ``obj`` as JSON: keys sorted, no spaces, ASCII only, no NaN. Equal
    objects give equal strings in every process, so the text can be hashed and compared."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False)


NPY_MAX_HEADER = 10_000  # bytes of a .npy header's text (NumPy's own default limit)


def load_npy(path: str | os.PathLike[str], what: str, *, shape: tuple[int, ...] | None = None,
             ndim: int | None = None, error: type[SoftregError] = SoftregError) -> np.ndarray:
    """A real-number array from a ``.npy`` file, checked before anything is allocated.

    The header is read first: an array of strings, objects, dates, records or complex
    numbers, another shape than ``shape`` (or number of dimensions than ``ndim``), a size
    that does not match the file's, or one that cannot fit in memory is refused with
    ``error``, whose message starts with ``path`` and names ``what`` the file should hold.
    Returns the array in native byte order, shape ``shape``.
    """
    name = os.fspath(path)
    try:
        size = os.stat(path).st_size
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            with warnings.catch_warnings():
                # NumPy's notes on Python 2 headers, Python's on escapes in the header's text
                warnings.simplefilter("ignore")
                declared, fortran_order, dtype = read_header(f, max_header_size=NPY_MAX_HEADER)
            offset = f.tell()
            if any(d < 0 for d in declared):
                raise error(f"{name}: {what} of negative shape {declared}")
            if dtype.names is not None or dtype.subdtype is not None or dtype.kind not in "iuf":
                raise error(f"{name}: {what} must hold real numbers, got dtype {dtype}")
            if ndim is not None and len(declared) != ndim:
                raise error(f"{name}: {what} must be {ndim}-D, got shape {declared}")
            if shape is not None and tuple(declared) != tuple(shape):
                raise error(f"{name}: {what} of shape {declared}, expected {tuple(shape)}")
            nbytes = int(np.prod(declared, dtype=object)) * dtype.itemsize
            if size - offset != nbytes:
                raise error(f"{name}: the header declares {nbytes} bytes of data, the file "
                            f"holds {size - offset}")
            check_fits_in_memory(nbytes, f"{name}: the header declares", error)
            data = f.read(nbytes)
    except SoftregError:
        raise
    except OSError as exc:
        raise error(f"{name}: cannot read {what} ({exc.strerror or exc})") from None
    except (ValueError, SyntaxError, TypeError, RecursionError, EOFError,
            tokenize.TokenError) as exc:
        # read_magic's and the header parser's errors for anything that is not a .npy file
        raise error(f"{name}: not a readable .npy array ({_one_line(exc)})") from None
    array = np.frombuffer(data, dtype=dtype).reshape(declared, order="F" if fortran_order
                                                     else "C")
    return array.astype(dtype.newbyteorder("="), order="C")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
