"""Tests for softreg.data.idx.read_idx on small hand-built IDX files."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from softreg.data import IDXError, read_idx
from softreg.errors import SoftregError

TYPE_CODES = {
    np.dtype(np.uint8): 0x08,
    np.dtype(np.int8): 0x09,
    np.dtype(">i2"): 0x0B,
    np.dtype(">i4"): 0x0C,
    np.dtype(">f4"): 0x0D,
    np.dtype(">f8"): 0x0E,
}


def idx_bytes(array: np.ndarray) -> bytes:
    """Serialize independently of the reader: magic, big-endian dims, big-endian payload."""
    stored = array.dtype.newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype
    code = TYPE_CODES[stored]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(stored).tobytes()


def write(path: Path, data: bytes, *, compress: bool = False) -> Path:
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


ARRAYS = {
    "uint8-3d": np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4),
    "uint8-1d": np.array([0, 9, 255, 7], dtype=np.uint8),
    "int8-2d": np.array([[-128, 0], [5, 127]], dtype=np.int8),
    "int16-2d": np.array([[-32768, 1], [258, 32767]], dtype=np.int16),
    "int32-1d": np.array([-(2**31), -1, 0, 2**31 - 1], dtype=np.int32),
    "float32-4d": np.linspace(-1, 1, 2 * 1 * 3 * 2, dtype=np.float32).reshape(2, 1, 3, 2),
    "float64-2d": np.array([[np.pi, -np.e], [1e300, -0.0]], dtype=np.float64),
    "empty": np.zeros((0, 28, 28), dtype=np.uint8),
}


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
@pytest.mark.parametrize("key", list(ARRAYS))
def test_round_trip(tmp_path: Path, key: str, compress: bool) -> None:
    expected = ARRAYS[key]
    # A misleading name: compression must be detected from the content.
    path = write(tmp_path / "data.idx", idx_bytes(expected), compress=compress)
    got = read_idx(path)
    assert got.shape == expected.shape
    assert got.dtype == expected.dtype  # native byte order, same kind and size
    assert got.dtype.isnative
    np.testing.assert_array_equal(got, expected)
    assert np.array_equal(np.signbit(got), np.signbit(expected))  # -0.0 survives


def test_gzip_detected_by_content_not_name(tmp_path: Path) -> None:
    raw = write(tmp_path / "x.gz", idx_bytes(ARRAYS["uint8-1d"]))
    np.testing.assert_array_equal(read_idx(raw), ARRAYS["uint8-1d"])


def test_uint8_is_a_zero_copy_read_only_view(tmp_path: Path) -> None:
    got = read_idx(write(tmp_path / "a", idx_bytes(ARRAYS["uint8-3d"]), compress=True))
    assert got.base is not None  # views the decompressed buffer
    assert not got.flags.writeable


def test_concatenated_gzip_members(tmp_path: Path) -> None:
    data = idx_bytes(ARRAYS["int16-2d"])
    path = tmp_path / "multi.gz"
    path.write_bytes(gzip.compress(data[:7]) + gzip.compress(data[7:]))
    np.testing.assert_array_equal(read_idx(path), ARRAYS["int16-2d"])


def error_for(path: Path) -> str:
    with pytest.raises(IDXError) as info:
        read_idx(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path) + ": ")
    return message


def test_wrong_magic(tmp_path: Path) -> None:
    data = bytearray(idx_bytes(ARRAYS["uint8-1d"]))
    data[1] = 0x01
    assert "magic" in error_for(write(tmp_path / "f", bytes(data)))


def test_unknown_type_code(tmp_path: Path) -> None:
    data = bytearray(idx_bytes(ARRAYS["uint8-1d"]))
    data[2] = 0x0A
    assert "unknown IDX type code 0x0A" in error_for(write(tmp_path / "f", bytes(data)))


def test_zero_dimensions(tmp_path: Path) -> None:
    assert "0 dimensions" in error_for(write(tmp_path / "f", bytes([0, 0, 8, 0])))


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
def test_truncated_payload(tmp_path: Path, compress: bool) -> None:
    data = idx_bytes(ARRAYS["int32-1d"])  # 16 payload bytes
    message = error_for(write(tmp_path / "f", data[:-3], compress=compress))
    assert "truncated IDX data: header says 16 bytes, file has 13" in message


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
def test_trailing_bytes(tmp_path: Path, compress: bool) -> None:
    data = idx_bytes(ARRAYS["uint8-1d"]) + b"\x00\x01"
    message = error_for(write(tmp_path / "f", data, compress=compress))
    assert "2 trailing bytes" in message
    assert "header says 4 bytes, file has 6" in message


def test_header_only(tmp_path: Path) -> None:
    header = idx_bytes(ARRAYS["uint8-3d"])[:16]
    assert "header says 24 bytes, file has 0" in error_for(write(tmp_path / "f", header))


def test_truncated_header(tmp_path: Path) -> None:
    header = idx_bytes(ARRAYS["uint8-3d"])[:10]
    assert "truncated IDX header" in error_for(write(tmp_path / "f", header))


@pytest.mark.parametrize("size", [0, 3])
def test_empty_or_tiny_file(tmp_path: Path, size: int) -> None:
    assert "not an IDX file" in error_for(write(tmp_path / "f", bytes(size)))


def test_truncated_gzip_stream(tmp_path: Path) -> None:
    compressed = gzip.compress(idx_bytes(ARRAYS["float32-4d"]))
    path = tmp_path / "f.gz"
    path.write_bytes(compressed[:-20])
    assert "gzip" in error_for(path)


def test_gzip_crc_mismatch(tmp_path: Path) -> None:
    # Level 0 stores the payload verbatim, so flipping a byte corrupts only the data
    # and the CRC-32 check is what must catch it.
    compressed = bytearray(gzip.compress(idx_bytes(ARRAYS["uint8-3d"]), compresslevel=0))
    compressed[-12] ^= 0xFF  # last payload byte, just before the 8-byte trailer
    path = tmp_path / "f.gz"
    path.write_bytes(bytes(compressed))
    assert "corrupt gzip data" in error_for(path)


def test_gzip_garbage_after_header(tmp_path: Path) -> None:
    compressed = bytearray(gzip.compress(idx_bytes(ARRAYS["uint8-3d"])))
    compressed[10:] = b"\xff" * (len(compressed) - 10)  # invalid deflate block type
    path = tmp_path / "f.gz"
    path.write_bytes(bytes(compressed))
    assert "corrupt gzip data" in error_for(path)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "train-images-idx3-ubyte.gz"
    message = error_for(path)
    assert "No such file" in message


def test_directory_instead_of_file(tmp_path: Path) -> None:
    assert "cannot read file" in error_for(tmp_path)


def test_idx_error_types() -> None:
    # ValueError for callers of read_idx; SoftregError so the CLI reports it in one line.
    assert issubclass(IDXError, ValueError)
    assert issubclass(IDXError, SoftregError)
