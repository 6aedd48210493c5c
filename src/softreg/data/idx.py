"""Reader for the IDX format of MNIST and Fashion-MNIST, raw or gzip-compressed.

An IDX file is a 4-byte magic number ``00 00 <type code> <ndim>``, then ``ndim``
big-endian uint32 dimension sizes, then the row-major payload in big-endian order.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib

import numpy as np

from softreg.errors import SoftregError

__all__ = ["IDXError", "read_idx"]

GZIP_MAGIC = b"\x1f\x8b"

# IDX type code -> element type as stored in the file (always big-endian).
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


class IDXError(SoftregError, ValueError):
    """A file is missing, unreadable, or not a well-formed IDX file.

    The message is one line: the file, a colon, and what is wrong with it.
    """


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file, gzip-compressed or raw, into a NumPy array.

    Compression is detected from the gzip magic bytes, not the file name. The result has
    the shape the header declares, e.g. ``(60000, 28, 28)`` for MNIST training images or
    ``(60000,)`` for its labels, and the header's element type in native byte order
    (uint8 stays uint8). It is read-only: single-byte types view the decompressed bytes
    without a copy.

    Raises:
        IDXError: the file is missing or unreadable, the gzip stream is corrupt, the
            header is malformed, or the payload is shorter or longer than the header says.
    """
    name = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise IDXError(f"{name}: cannot read file: {exc.strerror or exc}") from exc
    if data[:2] == GZIP_MAGIC:
        data = _gunzip(data, name)
    return _parse_idx(data, name)


def _gunzip(data: bytes, name: str) -> bytes:
    # zlib with wbits=31 parses the gzip header and checks the CRC-32 and length trailer
    # itself, in one pass and without gzip.decompress's extra copies.
    try:
        decompressor = zlib.decompressobj(wbits=31)
        out = decompressor.decompress(data)
        if not decompressor.eof:
            raise IDXError(
                f"{name}: truncated gzip stream: {len(data)} compressed bytes end "
                "before the end-of-stream marker"
            )
        if decompressor.unused_data:
            # Several concatenated gzip members (legal, e.g. from `cat a.gz b.gz`):
            # the gzip module handles that general case.
            out = gzip.decompress(data)
    except (zlib.error, EOFError, OSError) as exc:  # gzip.BadGzipFile is an OSError
        raise IDXError(f"{name}: corrupt gzip data: {exc}") from exc
    return out


def _parse_idx(data: bytes, name: str) -> np.ndarray:
    if len(data) < 4:
        raise IDXError(
            f"{name}: not an IDX file: {len(data)} bytes, shorter than the 4-byte magic number"
        )
    if data[0] != 0 or data[1] != 0:
        raise IDXError(
            f"{name}: not an IDX file: magic number 0x{data[:4].hex()} "
            "does not start with two zero bytes"
        )
    code, ndim = data[2], data[3]
    stored = IDX_DTYPES.get(code)
    if stored is None:
        known = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise IDXError(f"{name}: unknown IDX type code 0x{code:02X} (known: {known})")
    if ndim == 0:
        raise IDXError(f"{name}: IDX header declares 0 dimensions")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise IDXError(
            f"{name}: truncated IDX header: {ndim} dimensions need {header_len} bytes, "
            f"file has {len(data)}"
        )
    dims = struct.unpack(f">{ndim}I", data[4:header_len])
    count = math.prod(dims)
    expected = count * stored.itemsize
    actual = len(data) - header_len
    if actual < expected:
        raise IDXError(
            f"{name}: truncated IDX data: header says {expected} bytes, file has {actual}"
        )
    if actual > expected:
        raise IDXError(
            f"{name}: {actual - expected} trailing bytes after IDX data: "
            f"header says {expected} bytes, file has {actual}"
        )
    array = np.frombuffer(data, dtype=stored, count=count, offset=header_len).reshape(dims)
    if not stored.isnative:
        array = array.astype(stored.newbyteorder("="))
        array.flags.writeable = False  # same contract as the zero-copy single-byte case
    return array
