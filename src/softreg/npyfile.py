"""NumPy's ``.npy`` files from outside: the header checked before anything is allocated.

A ``.npy`` file declares its dtype and shape in a short header; a damaged or hostile one can
declare strings or objects, a size other than the file's, or more memory than the machine
has. :func:`load_npy` reads the header alone first and refuses all of that with one line,
then reads exactly the declared bytes (never through pickle).
"""

from __future__ import annotations

import os
import tokenize
import warnings
from typing import IO

import numpy as np

from softreg.errors import SoftregError, describe
from softreg.fileio import regular_file_opener
from softreg.limits import check_fits_in_memory

__all__ = ["NPY_MAX_HEADER", "load_npy"]

NPY_MAX_HEADER = 10_000  # bytes of a .npy header's text (NumPy's own default limit)


def load_npy(
    path: str | os.PathLike[str],
    what: str,
    *,
    shape: tuple[int, ...] | None = None,
    error: type[SoftregError] = SoftregError,
) -> np.ndarray:
    """Read a real-number array from a ``.npy`` file, checked before anything is allocated.

    Parameters
    ----------
    path : str or os.PathLike
        The file; it must be a regular file (not a FIFO or a device).
    what : str
        What the file should hold, for messages (e.g. ``"cost matrix"``).
    shape : tuple of int, optional
        The shape the array must have.
    error : type of SoftregError
        The exception raised.

    Returns
    -------
    ndarray
        The array, integers or floats in native byte order, C-ordered, of shape ``shape``
        when given.

    Raises
    ------
    SoftregError
        (``error``) With a message that starts with ``path``: the file cannot be read or is
        not a ``.npy`` array; it holds strings, objects, dates, records or complex numbers;
        its shape is not ``shape``; its size does not match the file's; or it cannot fit in
        memory.
    """
    name = os.fspath(path)
    try:
        with open(path, "rb", opener=regular_file_opener) as f:
            declared, fortran_order, dtype, nbytes = _read_header(f, name, what, shape, error)
            check_fits_in_memory(nbytes, f"{name}: the header declares", error)
            data = f.read(nbytes)
    except SoftregError:
        raise
    except OSError as exc:
        raise error(f"{name}: cannot read {what} ({exc.strerror or exc})") from None
    except (
        ValueError,
        SyntaxError,
        TypeError,
        RecursionError,
        EOFError,
        tokenize.TokenError,
    ) as exc:
        # read_magic's and the header parser's errors for anything that is not a .npy file
        raise error(f"{name}: not a readable .npy array ({describe(exc)})") from None
    array = np.frombuffer(data, dtype=dtype).reshape(declared, order="F" if fortran_order else "C")
    return array.astype(dtype.newbyteorder("="), order="C")


def _read_header(
    f: IO[bytes],
    name: str,
    what: str,
    shape: tuple[int, ...] | None,
    error: type[SoftregError],
) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """Return the declared shape, Fortran order, dtype and size in bytes, all checked.

    ``f`` is left at the data. A shape that is negative or not ``shape``, a dtype that is
    not integers or floats, or a size other than the file's is refused with ``error``.
    """
    size = os.fstat(f.fileno()).st_size
    version = np.lib.format.read_magic(f)
    read_header = (
        np.lib.format.read_array_header_1_0
        if version == (1, 0)
        else np.lib.format.read_array_header_2_0
    )
    with warnings.catch_warnings():
        # NumPy's notes on Python 2 headers, Python's on escapes in the header's text
        warnings.simplefilter("ignore")
        declared, fortran_order, dtype = read_header(f, max_header_size=NPY_MAX_HEADER)
    offset = f.tell()
    if any(d < 0 for d in declared):
        raise error(f"{name}: {what} of negative shape {declared}")
    if dtype.names is not None or dtype.subdtype is not None or dtype.kind not in "iuf":
        raise error(f"{name}: {what} must hold real numbers, got dtype {dtype}")
    if shape is not None and tuple(declared) != tuple(shape):
        raise error(f"{name}: {what} of shape {declared}, expected {tuple(shape)}")
    nbytes = int(np.prod(declared, dtype=object)) * dtype.itemsize
    if size - offset != nbytes:
        raise error(
            f"{name}: the header declares {nbytes} bytes of data, the file holds {size - offset}"
        )
    return declared, fortran_order, dtype, nbytes
