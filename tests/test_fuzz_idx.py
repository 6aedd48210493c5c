"""Fuzzing softreg.data.idx.read_idx with Hypothesis.

Files are generated valid, then damaged: random magic bytes, type codes and dimension
counts, huge sizes, payloads shorter or longer than declared (by up to megabytes of
zeros), gzip members split anywhere, bytes flipped anywhere in the raw or compressed
bytes, truncation at any point. Whatever the file, read_idx either returns the array the
file holds or raises IDXError with one line naming the file, and never traces more memory
than the header declares plus a fixed slack.
"""

from __future__ import annotations

import gzip
import math
import re
import struct
import tracemalloc
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from softreg import limits
from softreg.data import IDXError, read_idx
from softreg.errors import SoftregError

# The IDX type codes and their element types, written out independently of the reader.
ITEMSIZES = {0x08: 1, 0x09: 1, 0x0B: 2, 0x0C: 4, 0x0D: 4, 0x0E: 8}
DTYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
MAX_DIMS = 64  # NumPy 2's limit
# What the test pretends is available: huge declarations fail fast, and some that DEFLATE
# could produce (a few MB of zeros) are refused as too big for memory.
MEMORY = 2_000_000
SLACK = 4_000_000  # memory read_idx may trace beyond the declared payload


@dataclass
class Declared:
    """What a header says, parsed by the test (None where it is malformed)."""

    dtype: np.dtype
    dims: tuple[int, ...]
    header_len: int

    @property
    def nbytes(self) -> int:
        return math.prod(self.dims) * self.dtype.itemsize


def parse_header(content: bytes) -> Declared | None:
    """The header at the start of ``content``, if it is a well-formed one NumPy can hold."""
    if len(content) < 4 or content[:2] != b"\x00\x00" or content[2] not in DTYPES:
        return None
    ndim = content[3]
    header_len = 4 + 4 * ndim
    if ndim == 0 or ndim > MAX_DIMS or len(content) < header_len:
        return None
    dims = struct.unpack(f">{ndim}I", content[4:header_len])
    dtype = np.dtype(DTYPES[content[2]])
    if math.prod(d for d in dims if d) * dtype.itemsize > np.iinfo(np.intp).max:
        return None
    return Declared(dtype, dims, header_len)


def inflated_prefix(data: bytes, n: int) -> bytes:
    """Up to ``n`` bytes the gzip members in ``data`` inflate to, one byte per zlib call,
    up to the first error: the bytes a reader could have seen before noticing damage."""
    out = bytearray()
    decompressor = zlib.decompressobj(wbits=31)
    pending = data
    while len(out) < n:
        if decompressor.eof:
            pending = decompressor.unused_data.lstrip(b"\x00")
            if not pending:
                break
            decompressor = zlib.decompressobj(wbits=31)
        try:
            byte = decompressor.decompress(pending, 1)
        except zlib.error:
            break
        pending = decompressor.unconsumed_tail
        if not byte and not pending and not decompressor.eof:
            break  # the data ends inside a member
        out += byte
    return bytes(out)


@dataclass
class Case:
    data: bytes  # the file's bytes
    content: bytes  # the IDX bytes they were made from
    compressed: bool
    pristine: bool  # compressed (or not) as made, without flips or truncation


U32 = 2**32 - 1


def sometimes(draw: st.DrawFn, usual: st.SearchStrategy, rare: st.SearchStrategy) -> Any:
    """Mostly a value from ``usual``; one time in eight, one from ``rare``."""
    return draw(rare if draw(st.integers(0, 7)) == 0 else usual)


@st.composite
def idx_files(draw: st.DrawFn) -> Case:
    magic = sometimes(draw, st.just(b"\x00\x00"), st.binary(min_size=2, max_size=2))
    code = sometimes(draw, st.sampled_from(sorted(ITEMSIZES)), st.integers(0, 255))
    ndim = sometimes(draw, st.integers(1, 4), st.integers(0, 255))
    size = st.integers(0, 6) | st.integers(0, 300)
    huge = st.sampled_from([U32, 2**31, 65_536, 10**9]) | st.integers(0, U32)
    shape = draw(st.sampled_from(["mixed"] * 6 + ["ones", "megabytes"]))
    if shape == "mixed":
        dims = [sometimes(draw, size, huge) for _ in range(ndim)]
    elif shape == "ones":  # many dimensions, few elements
        dims = [1] * ndim
        if ndim:
            dims[draw(st.integers(0, ndim - 1))] = draw(size)
    else:  # within MEMORY or not
        ndim, dims = 2, [draw(st.integers(100, 1500)), 500]
    declared = math.prod(dims) * ITEMSIZES.get(code, 1)
    if declared <= 4096:
        payload = draw(st.binary(min_size=declared, max_size=declared))
    elif declared <= 6_000_000 and draw(st.booleans()):
        payload = bytes(declared)  # zeros: cheap to make and to compress
    else:  # a payload that cannot be written out: some bytes of it
        payload = draw(st.binary(max_size=64))
    change = sometimes(draw, st.just(0), st.sampled_from([-1, 1, 2]) | st.integers(-64, 64))
    payload = payload[: max(0, len(payload) + change)] + bytes(max(0, change))
    # A long run of zeros after the payload: a (mild) decompression bomb.
    payload += bytes(sometimes(draw, st.just(0), st.sampled_from([1, 3_000_000])))
    content = magic + bytes([code, ndim]) + struct.pack(f">{ndim}I", *dims) + payload

    form = draw(st.sampled_from(["raw", "gzip", "members", "padded"]))
    if form == "raw":
        data = content
    elif form == "gzip":
        data = gzip.compress(content, compresslevel=draw(st.integers(0, 9)), mtime=0)
    else:  # split into members anywhere (in the header too), maybe with zero padding
        cuts = sorted(draw(st.lists(st.integers(0, len(content)), max_size=4)))
        bounds = [0, *cuts, len(content)]
        pad = 0 if form == "members" else draw(st.integers(1, 600))
        data = b"".join(
            gzip.compress(content[a:b], mtime=0) + bytes(pad)
            for a, b in zip(bounds, bounds[1:], strict=False)
        )

    flip = st.tuples(st.integers(0, len(data) - 1), st.integers(1, 255))
    flips = sometimes(draw, st.just([]), st.lists(flip, min_size=1, max_size=3))
    mutable = bytearray(data)
    for at, mask in flips:
        mutable[at] ^= mask
    cut = sometimes(draw, st.none(), st.integers(0, len(data)))
    mutable = mutable[:cut]
    pristine = not flips and cut in (None, len(data))
    return Case(bytes(mutable), content, form != "raw", pristine)


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(case=idx_files())
def test_read_idx_returns_the_data_or_one_line_idx_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: Case
) -> None:
    monkeypatch.setattr(limits, "available_memory", lambda: MEMORY)
    path = tmp_path / "fuzz.idx"
    path.write_bytes(case.data)
    is_gzip = case.data[:2] == b"\x1f\x8b"  # a flip can make or unmake gzip magic

    # What the reader may allocate for: the header it could read before any damage.
    seen = inflated_prefix(case.data, 4 + 4 * 255) if is_gzip else case.data
    header = parse_header(seen)
    declared = header.nbytes if header is not None else 0

    tracemalloc.start()
    try:
        array, error = read_idx(path), None
    except IDXError as exc:  # anything else fails the test
        array, error = None, exc
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak <= min(declared, MEMORY) + SLACK, (peak, declared)

    if array is None:
        assert isinstance(error, SoftregError)
        message = str(error)
        event("refused: " + re.sub(r"0x\w+|\d+", "N", message.removeprefix(f"{path}: "))[:40])
        assert message.startswith(f"{path}: "), message
        assert "\n" not in message, message
        # A well-formed file that fits in memory, untouched since it was written, is read.
        reference = parse_header(case.content)
        assert not (
            case.pristine
            and reference is not None
            and len(case.content) == reference.header_len + reference.nbytes
            and reference.nbytes <= MEMORY
        ), message
        return

    event(f"read ({'gzip' if is_gzip else 'raw'}{', pristine' if case.pristine else ''})")
    # Read: what the file holds, as gzip (or no decompression) says it holds.
    content = gzip.decompress(case.data) if is_gzip else case.data
    reference = parse_header(content)
    assert reference is not None
    assert len(content) == reference.header_len + reference.nbytes
    assert array.shape == reference.dims
    assert array.dtype == reference.dtype.newbyteorder("=")
    assert array.dtype.isnative
    assert not array.flags.writeable
    stored = array if reference.dtype.isnative else array.byteswap()  # bits, not values
    assert stored.tobytes() == content[reference.header_len :]
