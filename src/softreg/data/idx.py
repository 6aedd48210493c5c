"""Reader for the IDX format of MNIST and Fashion-MNIST, raw or gzip-compressed.

An IDX file is a 4-byte magic number ``00 00 <type code> <ndim>``, then ``ndim``
big-endian uint32 dimension sizes, then the row-major payload in big-endian order.

The header is read first and decides everything that is allocated: a file that declares
more than it can hold, or than fits in memory, is refused before any allocation, and the
payload goes straight into one buffer of the declared size. A gzip stream is inflated a
bounded piece at a time, so a decompression bomb costs at most a few megabytes before it
is refused.
"""

from __future__ import annotations

import io
import math
import os
import struct
import zlib
from collections.abc import Callable

import numpy as np

from softreg import limits
from softreg.errors import SoftregError
from softreg.fileio import regular_file_opener

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

NUMPY_MAX_DIMS = 64  # NumPy >= 2.0 (the project needs 2.1); NumPy 1 allowed 32

# Compressed bytes read at a time. Small, because every zlib call that stops at its output
# limit copies the input it has not consumed yet (``unconsumed_tail``).
READ_CHUNK = 64 * 1024
# Most bytes inflated by one zlib call; each piece is copied into the output buffer.
INFLATE_CHUNK = 256 * 1024
# DEFLATE turns one compressed byte into at most 1032 bytes (258-byte matches coded in
# 2 bits); the constant covers the gzip header, the IDX header and a stored last block.
MAX_DEFLATE_RATIO = 1032
DEFLATE_SLACK = 1024
# Trailing bytes are counted exactly up to this many, so a stream that goes on and on
# (a decompression bomb behind a small header) is refused without inflating it all.
TRAILING_COUNT_LIMIT = 1024 * 1024
# How much of a gzip stream is inflated (and discarded), after an IDX header error, to find
# out whether the stream itself is damaged: then the gzip error is reported, as the cause.
# Enough for the largest MNIST file (47 MB); a bigger stream gets the header's error.
CHECK_REST_LIMIT = 64 * 1024 * 1024


class IDXError(SoftregError, ValueError):
    """A file is missing, unreadable, or not a well-formed IDX file.

    The message is one line: the file, a colon, and what is wrong with it.
    """


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file, gzip-compressed or raw, into a NumPy array.

    Compression is detected from the gzip magic bytes, not the file name. The array is the
    only full-size allocation: the payload is read or inflated straight into it and, for
    multi-byte types, byte-swapped in place.

    Parameters
    ----------
    path : str or os.PathLike
        A regular file (a FIFO or device is refused rather than read).

    Returns
    -------
    numpy.ndarray
        Read-only, of the shape the header declares, e.g. ``(60000, 28, 28)`` for MNIST
        training images or ``(60000,)`` for its labels, and of the header's element type
        in native byte order (uint8 stays uint8).

    Raises
    ------
    IDXError
        The file is missing or unreadable, the gzip stream is corrupt, the header is
        malformed, the payload is shorter or longer than the header says, or the header
        declares more than the file can hold or than fits in memory.
    """
    name = os.fspath(path)
    try:  # a regular file only: a FIFO would block, a device never end
        with open(path, "rb", opener=regular_file_opener) as f:
            # peek, not read: the gzip and raw readers both start at the first byte.
            if f.peek(2)[:2] == GZIP_MAGIC:
                return _read_gzip(f, name)
            return _read_raw(f, name)
    except OSError as exc:
        raise IDXError(f"{name}: cannot read file: {exc.strerror or exc}") from exc


def _read_raw(f: io.BufferedReader, name: str) -> np.ndarray:
    """Read the IDX file ``f`` (positioned at its start) without compression."""
    stored, dims, header_len = _read_header(f.read, name)
    expected = math.prod(dims) * stored.itemsize
    _check_payload_size(name, expected, os.fstat(f.fileno()).st_size - header_len)
    buffer = _allocate(name, stored, dims)
    _fill(f.readinto, buffer, name)
    _check_no_trailing_bytes(f.read, name, expected)
    return _as_array(buffer, stored, dims)


def _read_gzip(f: io.BufferedReader, name: str) -> np.ndarray:
    """Read the IDX file ``f`` (positioned at its start) compressed by gzip."""
    stream = _GzipStream(f, name)
    try:
        stored, dims, _ = _read_header(stream.read, name)
        expected = math.prod(dims) * stored.itemsize
        size = os.fstat(f.fileno()).st_size
        most = size * MAX_DEFLATE_RATIO + DEFLATE_SLACK
        if expected > most:
            raise IDXError(
                f"{name}: the header declares {expected} bytes of IDX data "
                f"({limits.format_bytes(expected)}), but a gzip file of {size} "
                f"bytes can hold at most {most}"
            )
        buffer = _allocate(name, stored, dims)
    except IDXError:
        stream.check_rest(CHECK_REST_LIMIT)  # raises if the header is garbled gzip
        raise
    _fill(stream.readinto, buffer, name)
    _check_no_trailing_bytes(stream.read, name, expected)
    return _as_array(buffer, stored, dims)


def _read_header(read: Callable[[int], bytes], name: str) -> tuple[np.dtype, tuple[int, ...], int]:
    """Read and check the header: the stored element type, the dimensions, its length.

    ``read(n)`` returns ``n`` bytes, or fewer at the end of the data.
    """
    magic = read(4)
    if len(magic) < 4:
        raise IDXError(
            f"{name}: not an IDX file: {len(magic)} bytes, shorter than the 4-byte magic number"
        )
    if magic[0] != 0 or magic[1] != 0:
        raise IDXError(
            f"{name}: not an IDX file: magic number 0x{magic.hex()} "
            "does not start with two zero bytes"
        )
    code, ndim = magic[2], magic[3]
    stored = IDX_DTYPES.get(code)
    if stored is None:
        known = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise IDXError(f"{name}: unknown IDX type code 0x{code:02X} (known: {known})")
    if ndim == 0:
        raise IDXError(f"{name}: IDX header declares 0 dimensions")
    header_len = 4 + 4 * ndim
    sizes = read(4 * ndim)
    if len(sizes) < 4 * ndim:
        raise IDXError(
            f"{name}: truncated IDX header: {ndim} dimensions need {header_len} bytes, "
            f"file has {4 + len(sizes)}"
        )
    if ndim > NUMPY_MAX_DIMS:
        raise IDXError(
            f"{name}: IDX header declares {ndim} dimensions, more than NumPy's {NUMPY_MAX_DIMS}"
        )
    dims = struct.unpack(f">{ndim}I", sizes)
    # NumPy refuses a shape whose nonzero sizes overflow its index type even when another
    # size is 0 (an empty array); arrays with elements are bounded by memory further on.
    if math.prod(d for d in dims if d) * stored.itemsize > np.iinfo(np.intp).max:
        raise IDXError(
            f"{name}: IDX header declares a shape of {_shape(dims)}, too large for NumPy"
        )
    return stored, dims, header_len


def _check_payload_size(name: str, expected: int, actual: int) -> None:
    """Refuse a payload of ``actual`` bytes where the header says ``expected``."""
    if actual < expected:
        raise IDXError(
            f"{name}: truncated IDX data: header says {expected} bytes, file has {actual}"
        )
    if actual > expected:
        raise IDXError(
            f"{name}: {actual - expected} trailing bytes after IDX data: "
            f"header says {expected} bytes, file has {actual}"
        )


def _allocate(name: str, stored: np.dtype, dims: tuple[int, ...]) -> np.ndarray:
    """Allocate an uninitialized byte buffer for the payload, once it is known to fit."""
    nbytes = math.prod(dims) * stored.itemsize
    what = f"{name}: the header declares {_shape(dims)} {stored.newbyteorder('=').name} values,"
    limits.check_fits_in_memory(nbytes, what, IDXError)
    try:
        return np.empty(nbytes, dtype=np.uint8)
    except MemoryError as exc:  # the estimate of available memory was too hopeful
        raise IDXError(
            f"{what} {limits.format_bytes(nbytes)}, more than can be allocated here"
        ) from exc


def _fill(readinto: Callable[[memoryview], int], buffer: np.ndarray, name: str) -> None:
    """Read the payload into ``buffer``; refuse data that ends before it is full."""
    view = memoryview(buffer)
    filled = 0
    while filled < len(view):
        n = readinto(view[filled:])
        if not n:
            raise IDXError(
                f"{name}: truncated IDX data: header says {len(view)} bytes, file has {filled}"
            )
        filled += n


def _check_no_trailing_bytes(read: Callable[[int], bytes], name: str, expected: int) -> None:
    """Refuse data after the payload, counting it only up to TRAILING_COUNT_LIMIT bytes."""
    extra = 0
    while extra <= TRAILING_COUNT_LIMIT:
        piece = read(min(READ_CHUNK, TRAILING_COUNT_LIMIT + 1 - extra))
        if not piece:
            break
        extra += len(piece)
    if extra > TRAILING_COUNT_LIMIT:
        raise IDXError(
            f"{name}: more than {TRAILING_COUNT_LIMIT} trailing bytes after IDX data: "
            f"header says {expected} bytes, file has more than {expected + TRAILING_COUNT_LIMIT}"
        )
    if extra:
        _check_payload_size(name, expected, expected + extra)


def _as_array(buffer: np.ndarray, stored: np.dtype, dims: tuple[int, ...]) -> np.ndarray:
    """Return the filled byte buffer as a read-only array of ``dims``, native byte order."""
    if not stored.isnative:
        buffer.view(stored).byteswap(inplace=True)  # in place: no second full-size copy
    buffer.flags.writeable = False  # views made from here on are read-only too
    return buffer.view(stored.newbyteorder("=")).reshape(dims)


def _shape(dims: tuple[int, ...]) -> str:
    """Format ``dims`` as ``60000x28x28``."""
    return "x".join(map(str, dims))


class _GzipStream:
    """The data of a gzip file's members, inflated at most INFLATE_CHUNK bytes at a time.

    zlib (``wbits=31``) parses each member's header and checks its CRC-32 and length
    trailer when it reaches the member's end. Several members follow one another (legal,
    e.g. from ``cat a.gz b.gz``), and zero bytes between or after them are padding, as
    for the gzip module. Damage raises IDXError.
    """

    def __init__(self, f: io.BufferedReader, name: str) -> None:
        self._file = f
        self._name = name
        self._decompressor = zlib.decompressobj(wbits=31)
        self._input = b""  # compressed bytes zlib has not consumed yet
        self._output_pending = False  # zlib may hold output beyond the last call's limit
        self._compressed = 0  # compressed bytes read so far
        self._ended = False  # every member has ended, and so has the file
        self._failed = False

    def read(self, n: int) -> bytes:
        """Return ``n`` bytes of data, or fewer at the end of the last member."""
        pieces = []
        while n > 0 and (piece := self._inflate(n)):
            pieces.append(piece)
            n -= len(piece)
        return b"".join(pieces)

    def readinto(self, view: memoryview) -> int:
        """Inflate into ``view`` and return the bytes written: 0 only at the end."""
        piece = self._inflate(len(view))
        view[: len(piece)] = piece
        return len(piece)

    def check_rest(self, limit: int) -> None:
        """Inflate and discard up to ``limit`` more bytes: raise IDXError if they are damaged."""
        if self._failed:
            return
        while limit > 0 and (piece := self._inflate(limit)):
            limit -= len(piece)

    def _inflate(self, max_length: int) -> bytes:
        """Return the next 1 to ``max_length`` bytes of data (at most INFLATE_CHUNK).

        Return b"" at the end of the last member.
        """
        max_length = min(max_length, INFLATE_CHUNK)
        if max_length < 1:  # zlib would read 0 as "no limit"
            return b""
        try:
            while not self._ended:
                if self._decompressor.eof and not self._next_member():
                    self._ended = True
                    break
                if not self._input and not self._output_pending:
                    self._input = self._read_chunk()
                    if not self._input:
                        raise IDXError(
                            f"{self._name}: truncated gzip stream: {self._compressed} "
                            "compressed bytes end before the end-of-stream marker"
                        )
                try:
                    piece = self._decompressor.decompress(self._input, max_length)
                except zlib.error as exc:
                    raise IDXError(f"{self._name}: corrupt gzip data: {exc}") from exc
                self._input = self._decompressor.unconsumed_tail
                self._output_pending = len(piece) == max_length
                if piece:
                    return piece
        except IDXError:
            self._failed = True
            raise
        return b""

    def _next_member(self) -> bool:
        """After a member's end, start the next one; False at the end of the file."""
        data = self._decompressor.unused_data.lstrip(b"\x00")
        while not data:
            data = self._read_chunk()
            if not data:
                return False
            data = data.lstrip(b"\x00")
        self._decompressor = zlib.decompressobj(wbits=31)
        self._input = data
        self._output_pending = False
        return True

    def _read_chunk(self) -> bytes:
        """Read the next READ_CHUNK compressed bytes (fewer at the end), counting them."""
        chunk = self._file.read(READ_CHUNK)
        self._compressed += len(chunk)
        return chunk
