"""Tests for softreg.data.idx.read_idx on small hand-built IDX files."""

from __future__ import annotations

import gzip
import struct
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from softreg import limits
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


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
@pytest.mark.parametrize("key", ["uint8-3d", "float64-2d"])
def test_result_is_a_read_only_view(tmp_path: Path, key: str, compress: bool) -> None:
    got = read_idx(write(tmp_path / "a", idx_bytes(ARRAYS[key]), compress=compress))
    assert got.base is not None  # views the buffer the payload was read into
    assert not got.flags.writeable
    with pytest.raises(ValueError):  # nor can it be made writeable again
        got.flags.writeable = True


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


# ------------------------------------------------ decompression and size bombs, memory


MB = 1_000_000


def traced(call: Callable[[], object]) -> tuple[int, object]:
    """Peak bytes traced while ``call()`` runs (NumPy reports its buffers to tracemalloc),
    and what it returned or raised."""
    tracemalloc.start()
    try:
        try:
            outcome = call()
        except Exception as exc:
            outcome = exc
        return tracemalloc.get_traced_memory()[1], outcome
    finally:
        tracemalloc.stop()


def gzip_stream(*parts: bytes, zeros: int = 0) -> bytes:
    """One gzip member of ``parts`` then ``zeros`` zero bytes, compressed a MiB at a time
    (so a 200 MB stream costs the test no 200 MB)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [compressor.compress(part) for part in parts]
    block = bytes(1 << 20)
    while zeros > 0:
        out.append(compressor.compress(block[:zeros]))
        zeros -= len(block)
    out.append(compressor.flush())
    return b"".join(out)


def header(code: int, *dims: int) -> bytes:
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


def test_gzip_bomb_behind_small_header_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    # 1,000 declared bytes, then 200 MB of zeros: a ~200 kB file. The old reader inflated
    # all of it before comparing sizes.
    path = tmp_path / "bomb.gz"
    path.write_bytes(gzip_stream(header(0x08, 1000), bytes(1000), zeros=200 * MB))
    assert path.stat().st_size < MB
    peak, error = traced(lambda: read_idx(path))
    assert isinstance(error, IDXError), error
    message = str(error)
    assert message.startswith(f"{path}: more than ")
    assert "trailing bytes after IDX data: header says 1000 bytes" in message
    assert peak < 4 * MB, peak


def test_gzip_declaring_more_than_deflate_can_produce_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "f.gz", header(0x08, 10_000, 1_000_000) + bytes(100), compress=True)
    size = path.stat().st_size
    peak, error = traced(lambda: read_idx(path))
    assert isinstance(error, IDXError), error
    message = str(error)
    assert "the header declares 10000000000 bytes of IDX data (10.0 GB)" in message
    assert f"a gzip file of {size} bytes can hold at most {size * 1032 + 1024}" in message
    assert "\n" not in message
    assert peak < MB, peak


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
def test_declaration_beyond_available_memory_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compress: bool
) -> None:
    monkeypatch.setattr(limits, "available_memory", lambda: 100 * MB)
    path = tmp_path / "big"
    if compress:  # 200 MB of zeros, within DEFLATE's ratio of this ~200 kB file
        path.write_bytes(gzip_stream(header(0x0D, 50, 1000, 1000), zeros=200 * MB))
        what = "50x1000x1000 float32 values, 200.0 MB"
    else:  # a sparse file that really holds the 2 GB it declares
        with path.open("wb") as f:
            f.write(header(0x08, 2000, 1000, 1000))
            f.truncate(16 + 2000 * MB)
        what = "2000x1000x1000 uint8 values, 2.0 GB"
    peak, error = traced(lambda: read_idx(path))
    assert isinstance(error, IDXError), error  # not a MemoryError
    assert str(error) == (
        f"{path}: the header declares {what}, more than the 100.0 MB of memory available"
    )
    assert peak < 4 * MB, peak


def test_raw_declaration_beyond_file_size_is_refused_before_allocating(tmp_path: Path) -> None:
    path = write(tmp_path / "f", header(0x0E, 1000, 1000, 1000) + bytes(10))
    peak, error = traced(lambda: read_idx(path))
    assert isinstance(error, IDXError), error
    assert "truncated IDX data: header says 8000000000 bytes, file has 10" in str(error)
    assert peak < MB, peak


def test_trailing_bytes_are_counted_up_to_a_limit(tmp_path: Path) -> None:
    data = idx_bytes(ARRAYS["uint8-1d"]) + bytes(3 * MB)
    # A gzip stream is inflated only a MiB past the declared size...
    message = error_for(write(tmp_path / "f.gz", data, compress=True))
    assert message.endswith(
        ": more than 1048576 trailing bytes after IDX data: "
        "header says 4 bytes, file has more than 1048580"
    )
    # ... while a raw file's size says how much more it holds.
    message = error_for(write(tmp_path / "f", data))
    assert message.endswith(
        ": 3000000 trailing bytes after IDX data: header says 4 bytes, file has 3000004"
    )


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
@pytest.mark.parametrize("dtype", [np.int32, np.float32, np.float64])
def test_multi_byte_types_are_swapped_in_place(tmp_path: Path, dtype: type, compress: bool) -> None:
    rng = np.random.default_rng(1)
    count = 8 * MB // np.dtype(dtype).itemsize
    if np.dtype(dtype).kind == "i":
        expected = rng.integers(-(2**31), 2**31, count, dtype=dtype)
    else:
        expected = rng.standard_normal(count).astype(dtype)
    expected = expected.reshape(-1, 100)
    path = write(tmp_path / "f", idx_bytes(expected), compress=compress)
    peak, got = traced(lambda: read_idx(path))
    assert isinstance(got, np.ndarray), got
    assert got.dtype == np.dtype(dtype) and got.dtype.isnative
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)
    assert peak < 1.5 * expected.nbytes, peak  # the old astype made a second full copy


def test_gzip_members_split_anywhere_with_zero_padding(tmp_path: Path) -> None:
    expected = ARRAYS["float32-4d"]
    data = idx_bytes(expected)
    cuts = [0, 1, 3, 9, 20, len(data) - 1, len(data)]  # inside the header, the payload
    members = [gzip.compress(data[a:b]) for a, b in zip(cuts, cuts[1:], strict=False)]
    path = tmp_path / "multi.gz"
    # Zero bytes between and after members are padding, as for the gzip module.
    path.write_bytes(members[0] + b"".join(m + bytes(i) for i, m in enumerate(members[1:])))
    assert gzip.decompress(path.read_bytes()) == data
    np.testing.assert_array_equal(read_idx(path), expected)


def test_garbage_after_a_gzip_member(tmp_path: Path) -> None:
    path = tmp_path / "f.gz"
    path.write_bytes(gzip.compress(idx_bytes(ARRAYS["uint8-1d"])) + b"\x00\x00junk")
    assert "corrupt gzip data" in error_for(path)


def test_garbled_header_in_a_damaged_gzip_stream_reports_the_damage(tmp_path: Path) -> None:
    # Bytes 12-19 of the deflate data garble the IDX header; the CRC-32 check at the end of
    # the stream says why, which is more useful than "not an IDX file".
    compressed = gzip.compress(idx_bytes(np.arange(60, dtype=np.uint8) % 10), mtime=0)
    path = tmp_path / "f.gz"
    path.write_bytes(compressed[:12] + b"\xff" * 8 + compressed[20:])
    assert "corrupt gzip data" in error_for(path)


def test_more_dimensions_than_numpy_allows(tmp_path: Path) -> None:
    path = write(tmp_path / "f", header(0x08, *[1] * 65) + b"\x07")
    assert "declares 65 dimensions, more than NumPy's 64" in error_for(path)
    path = write(tmp_path / "g", header(0x08, *[1] * 64) + b"\x07")
    assert read_idx(path).shape == (1,) * 64


def test_empty_shape_too_large_for_numpy(tmp_path: Path) -> None:
    path = write(tmp_path / "f", header(0x0E, 0, *[2**32 - 1] * 3))
    assert "too large for NumPy" in error_for(path)
    path = write(tmp_path / "g", header(0x0E, 0, 2**32 - 1))
    assert read_idx(path).shape == (0, 2**32 - 1)


@pytest.mark.parametrize("dataset", ["fashion-mnist", "mnist"])
@pytest.mark.parametrize(
    "role",
    [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ],
)
@pytest.mark.slow
def test_real_files_read_as_plain_decompression(
    data_root: Path, tmp_path: Path, dataset: str, role: str
) -> None:
    path = data_root / dataset / f"{role}.gz"
    raw = gzip.decompress(path.read_bytes())
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    expected = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)
    got = read_idx(path)
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, expected)
    if role.startswith("t10k"):  # the same file uncompressed
        np.testing.assert_array_equal(read_idx(write(tmp_path / role, raw)), expected)
