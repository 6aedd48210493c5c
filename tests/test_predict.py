"""Pictures and cost matrices read from files: bit depths, transparency, size limits, and
hostile bytes, which must end in one SoftregError line, never a traceback or a warning."""

from __future__ import annotations

import io
import struct
import tempfile
import tracemalloc
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from softreg import predict
from softreg.errors import SoftregError
from softreg.predict import MAX_IMAGE_PIXELS, read_image_file
from softreg.report import read_cost_matrix

Image = pytest.importorskip("PIL.Image")
ImageFile = pytest.importorskip("PIL.ImageFile")

SIZE = (28, 28)


def plus_sign(ink: float, background: float, dtype=np.uint8) -> np.ndarray:
    """A (28, 28) "+" stroke of ``ink`` on ``background``."""
    arr = np.full(SIZE, background, dtype)
    arr[12:16, 4:24] = ink
    arr[4:24, 12:16] = ink
    return arr


STROKE = plus_sign(1, 0).astype(bool)


def refusal(call, *args, **kwargs) -> str:
    """The message of the SoftregError ``call`` raises, checked to be one line and to be the
    only thing it reports (no warning)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(SoftregError) as info:
            call(*args, **kwargs)
    assert not caught, [str(w.message) for w in caught]
    message = str(info.value)
    assert "\n" not in message and message.strip() == message
    return message


# --- bit depths ---------------------------------------------------------------------------


def test_16_bit_png_is_scaled_by_its_bit_depth_not_clipped(tmp_path):
    values = np.zeros(SIZE, np.uint16)
    values[5, :3] = [0, 32768, 65535]
    path = tmp_path / "grey16.png"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode in predict._UINT16_MODES  # the high-bit-depth path is taken
    arr = read_image_file(path, invert="no")
    assert arr.dtype == np.uint8 and arr.shape == SIZE
    assert arr[5, :3].tolist() == [0, 128, 255]


@pytest.mark.parametrize(
    ("suffix", "mode"), [(".png", "I;16"), (".tif", "I;16"), (".tif", "I;16B"), (".pgm", "I")]
)
def test_16_bit_values_are_scaled_exactly(tmp_path, suffix, mode):
    values = np.linspace(0, 65535, SIZE[0] * SIZE[1]).astype(np.uint16).reshape(SIZE)
    values[0, :4] = [1, 128, 129, 65534]  # around the rounding steps of v / 257
    path = tmp_path / f"grid{suffix}"
    if suffix == ".pgm":  # Pillow opens 16-bit PGM as mode "I"
        path.write_bytes(b"P5 28 28 65535\n" + values.astype(">u2").tobytes())
    else:
        Image.frombytes(
            mode, SIZE, values.astype(">u2" if mode == "I;16B" else "<u2").tobytes()
        ).save(path)
    assert Image.open(path).mode == mode
    expected = np.rint(values.astype(np.float64) * 255 / 65535).astype(np.uint8)
    np.testing.assert_array_equal(read_image_file(path, invert="no"), expected)


def test_mode_i_values_outside_the_bit_depth_are_refused():
    img = Image.fromarray(np.full(SIZE, 70000, np.int32))
    img.format = "PNG"  # what Pillow says of a 16-bit PNG it opens as mode "I"
    message = refusal(predict._scale_bit_depth, Image, img, Path("wide.png"))
    assert message.startswith("wide.png: pixel values outside 0..65535")


def test_32_bit_integer_tiff_is_refused_not_guessed(tmp_path):
    path = tmp_path / "int32.tif"
    Image.fromarray(np.full(SIZE, 7, np.int32)).save(path)
    assert refusal(read_image_file, path).startswith(f"{path}: TIFF picture of 32-bit integers")


def test_float_pictures_must_lie_in_0_1(tmp_path):
    good, bad = tmp_path / "good.tif", tmp_path / "bad.tif"
    Image.fromarray(plus_sign(1.0, 0.0, np.float32)).save(good)
    Image.fromarray(plus_sign(1.5, 0.0, np.float32)).save(bad)
    np.testing.assert_array_equal(read_image_file(good), plus_sign(255, 0))
    assert refusal(read_image_file, bad) == f"{bad}: float image values must lie in [0, 1]"


# --- transparency --------------------------------------------------------------------------


def test_dark_ink_on_transparent_reads_like_black_on_white(tmp_path):
    rgba = np.zeros((*SIZE, 4), np.uint8)  # transparent pixels are (0, 0, 0, 0)
    rgba[STROKE] = (0, 0, 0, 255)
    drawn, opaque = tmp_path / "drawn.png", tmp_path / "opaque.png"
    Image.fromarray(rgba, "RGBA").save(drawn)
    Image.fromarray(plus_sign(0, 255)).convert("RGB").save(opaque)
    arr = read_image_file(drawn)
    assert arr[STROKE].min() >= 200 and arr[~STROKE].max() == 0  # light ink on black
    np.testing.assert_array_equal(arr, read_image_file(opaque))
    np.testing.assert_array_equal(read_image_file(drawn, invert="yes"), arr)


@pytest.mark.parametrize("hidden", [0, 255], ids=["black-transparent", "white-transparent"])
def test_light_ink_on_transparent_reads_as_light_on_black(tmp_path, hidden):
    rgba = np.full((*SIZE, 4), hidden, np.uint8)
    rgba[..., 3] = 0
    rgba[STROKE] = (255, 255, 255, 255)
    path = tmp_path / "light.png"
    Image.fromarray(rgba, "RGBA").save(path)
    np.testing.assert_array_equal(read_image_file(path), plus_sign(255, 0))
    np.testing.assert_array_equal(read_image_file(path, invert="no"), plus_sign(255, 0))


def test_grey_alpha_and_palette_transparency_are_composited(tmp_path):
    expected = plus_sign(255, 0)
    la = np.zeros((*SIZE, 2), np.uint8)
    la[STROKE] = (0, 255)
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    palette = Image.new("P", SIZE[::-1], 0)
    palette.putpalette([0, 0, 0, 10, 10, 10])  # 0: black, hidden by tRNS; 1: dark grey ink
    palette.frombytes(STROKE.astype(np.uint8).tobytes())
    palette.save(tmp_path / "palette.png", transparency=0)
    palette.save(tmp_path / "palette.gif", transparency=0)
    Image.fromarray(plus_sign(0, 255)).save(tmp_path / "grey-hidden-white.png", transparency=255)
    for name in ("la.png", "palette.png", "palette.gif", "grey-hidden-white.png"):
        img = Image.open(tmp_path / name)
        assert img.mode == "LA" or "transparency" in img.info, name
        arr = read_image_file(tmp_path / name)
        assert arr[STROKE].min() >= 200 and arr[~STROKE].max() == 0, name
    np.testing.assert_array_equal(read_image_file(tmp_path / "la.png"), expected)


def test_half_transparent_ink_is_weighted_by_alpha(tmp_path):
    rgba = np.zeros((*SIZE, 4), np.uint8)
    rgba[STROKE] = (0, 0, 0, 128)  # black at half opacity over white is mid grey
    path = tmp_path / "half.png"
    Image.fromarray(rgba, "RGBA").save(path)
    arr = read_image_file(path)
    assert arr[~STROKE].max() == 0 and np.all(np.abs(arr[STROKE].astype(int) - 128) <= 1)


# --- sizes ---------------------------------------------------------------------------------


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def blank_png(path: Path, width: int, height: int) -> None:
    """A valid 1-bit black PNG, written row by row: 20000x20000 compresses to 50 kB."""
    compressor = zlib.compressobj(9)
    row = bytes(1 + (width + 7) // 8)  # filter byte 0, then the packed pixels
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", idat)
        + _chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("width", "height"),
    [
        (20000, 20000),  # beyond 2 * Pillow's limit: open() raises DecompressionBombError
        (10000, 10000),  # between Pillow's limit and twice it: DecompressionBombWarning
        (5000, 4000),  # within Pillow's limit, beyond MAX_IMAGE_PIXELS
    ],
)
def test_huge_pictures_are_refused_before_decoding(tmp_path, monkeypatch, width, height):
    path = tmp_path / "huge.png"
    blank_png(path, width, height)

    def no_decoding(self):
        raise AssertionError("the pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    limit = Image.MAX_IMAGE_PIXELS
    tracemalloc.start()
    try:
        message = refusal(read_image_file, path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    if width * height > Image.MAX_IMAGE_PIXELS:  # refused by Pillow, which counts them
        assert message.startswith(
            f"{path}: image larger than the limit of 4096x4096 = "
            f"{MAX_IMAGE_PIXELS} pixels (Image size "
            f"({width * height} pixels) exceeds limit"
        )
    else:
        assert message == (
            f"{path}: image of {width}x{height} pixels, more than the limit of "
            f"4096x4096 = {MAX_IMAGE_PIXELS} pixels"
        )
    assert peak < 1_000_000
    assert limit == Image.MAX_IMAGE_PIXELS  # Pillow's own limit is left as it was


def test_picture_at_the_limit_is_read(tmp_path):
    path = tmp_path / "big.png"
    blank_png(path, 4096, 4096)
    np.testing.assert_array_equal(read_image_file(path), np.zeros(SIZE, np.uint8))


# --- .npy images ---------------------------------------------------------------------------


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=True)
    return buf.getvalue()


BAD_NPY = {
    "strings": _npy_bytes(np.full(SIZE, "ab")),
    "structured": _npy_bytes(np.zeros(SIZE, dtype=[("a", "u1"), ("b", "f4")])),
    "datetime": _npy_bytes(np.full(SIZE, np.datetime64("2024-01-01"))),
    "object": _npy_bytes(np.full(SIZE, None, dtype=object)),
    "complex": _npy_bytes(np.zeros(SIZE, np.complex64)),
    "truncated": _npy_bytes(np.zeros(SIZE, np.uint8))[:-10],
    "header-only": _npy_bytes(np.zeros(SIZE, np.uint8))[:20],
}


@pytest.mark.parametrize("kind", BAD_NPY)
def test_npy_image_of_another_kind_is_refused(tmp_path, kind):
    path = tmp_path / f"{kind}.npy"
    path.write_bytes(BAD_NPY[kind])
    assert refusal(read_image_file, path).startswith(f"{path}: ")


def _npy_with_header(header: bytes, data: bytes) -> bytes:
    """A version 1.0 .npy file of ``header`` (the dict's text) and ``data``."""
    padding = 64 - (10 + len(header) + 1) % 64
    return (
        b"\x93NUMPY\x01\x00"
        + (len(header) + padding + 1).to_bytes(2, "little")
        + header
        + b" " * padding
        + b"\n"
        + data
    )


@pytest.mark.parametrize(
    "header",
    [
        b"{'descr': '|u1', 'fortran_order': False, 'shape': (28, 28), ",  # unclosed brace
        b"{'descr': '\\e|u1', 'fortran_order': False, 'shape': (28, 28), }",  # bad escape
    ],
    ids=["unclosed", "escape"],
)
def test_npy_header_that_does_not_parse_is_refused(tmp_path, header):
    # numpy retries such headers with its Python 2 filter (tokenize), whose TokenError and
    # warnings are neither ValueError nor SyntaxError
    path = tmp_path / "header.npy"
    path.write_bytes(_npy_with_header(header, bytes(784)))
    assert refusal(read_image_file, path).startswith(f"{path}: not a readable .npy array")
    path.write_bytes(_npy_with_header(header.replace(b"(28, 28)", b"(3, 3)"), bytes(9)))
    assert refusal(read_cost_matrix, path, K).startswith(f"{path}: ")


def test_npy_python2_header_is_read_without_a_warning(tmp_path):
    path = tmp_path / "py2.npy"
    path.write_bytes(
        _npy_with_header(
            b"{'descr': '|u1', 'fortran_order': False, 'shape': (28L, 28L), }",
            plus_sign(255, 0).tobytes(),
        )
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        np.testing.assert_array_equal(read_image_file(path), plus_sign(255, 0))
    assert not caught, [str(w.message) for w in caught]


def test_npy_integer_images(tmp_path):
    good, bad = tmp_path / "good.npy", tmp_path / "bad.npy"
    np.save(good, plus_sign(255, 0, np.int64))
    np.save(bad, plus_sign(256, 0, np.int16))
    np.testing.assert_array_equal(read_image_file(good), plus_sign(255, 0))
    assert refusal(read_image_file, bad) == f"{bad}: integer image values must lie in 0..255"


# --- cost matrices -------------------------------------------------------------------------


K = 3


def test_cost_matrix_files_that_are_good(tmp_path):
    cost = np.ones((K, K)) - np.eye(K)
    np.save(tmp_path / "int.npy", cost.astype(np.int32))
    (tmp_path / "c.csv").write_bytes(b"\xef\xbb\xbf# costs\n0,1,1\r\n1, 0, 1\n\n1,1,0 # last\n")
    for name in ("int.npy", "c.csv"):
        matrix = read_cost_matrix(tmp_path / name, K)
        assert matrix.dtype == np.float64
        np.testing.assert_array_equal(matrix, cost)


BAD_COST_FILES = {
    "strings.npy": _npy_bytes(np.full((K, K), "1")),
    "structured.npy": _npy_bytes(np.zeros((K, K), dtype=[("a", "f8")])),
    "shape.npy": _npy_bytes(np.zeros((K, K + 1))),
    "truncated.npy": _npy_bytes(np.zeros((K, K)))[:-1],
    "nan.npy": _npy_bytes(np.full((K, K), np.nan)),
    "empty.csv": b"",
    "comments.csv": b"# nothing\n\n",
    "words.csv": b"a,b,c\n1,2,3\n4,5,6\n",
    "ragged.csv": b"0,1,1\n1,0\n1,1,0\n",
    "shape.csv": b"0,1\n1,0\n",
    "complex.csv": b"1+2j,0,0\n0,0,0\n0,0,0\n",
    "inf.csv": b"0,1,1\n1,0,1e999\n1,1,0\n",
    "junk.csv": bytes(range(256)) * 4,
    "latin1.csv": "0,1,1\n1,0,1\n1,1,0 # coût\n".encode("latin-1"),
    "nul.csv": b"0,1,1\n1,\x000,1\n1,1,0\n",
    "utf16.csv": "0,1,1\n1,0,1\n1,1,0\n".encode("utf-16"),
}


@pytest.mark.parametrize("name", BAD_COST_FILES)
def test_bad_cost_matrix_files_are_refused(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(BAD_COST_FILES[name])
    assert refusal(read_cost_matrix, path, K).startswith(f"{path}: ")


def test_huge_cost_csv_is_refused_unread(tmp_path):
    path = tmp_path / "huge.csv"
    block = b"1," * 500_000 + b"1\n"  # 1 MB of digits
    with path.open("wb") as f:
        for _ in range(50):
            f.write(block)
    tracemalloc.start()
    try:
        message = refusal(read_cost_matrix, path, 10)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert message == f"{path}: too large for a 10x10 cost matrix (more than 10.5 kB)"
    assert peak < 100_000


def test_missing_cost_matrix(tmp_path):
    for name in ("none.csv", "none.npy"):
        assert refusal(read_cost_matrix, tmp_path / name, K).startswith(f"{tmp_path / name}: ")


# --- fuzzing -------------------------------------------------------------------------------


def _picture_bytes(fmt: str, mode: str) -> bytes:
    arr = plus_sign(0, 255)
    img = Image.fromarray(arr).convert(mode)
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


def _rgba_png() -> bytes:
    rgba = np.zeros((*SIZE, 4), np.uint8)
    rgba[STROKE] = (0, 0, 0, 255)
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, "PNG")
    return buf.getvalue()


def _png16() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(plus_sign(65535, 0, np.uint16)).save(buf, "PNG")
    return buf.getvalue()


SEEDS = {
    ".png": [_picture_bytes("PNG", "L"), _rgba_png(), _png16()],
    ".jpg": [_picture_bytes("JPEG", "L"), _picture_bytes("JPEG", "RGB")],
    ".gif": [_picture_bytes("GIF", "P")],
    ".bmp": [_picture_bytes("BMP", "RGB"), _picture_bytes("BMP", "1")],
    ".npy": [_npy_bytes(plus_sign(255, 0)), _npy_bytes(plus_sign(1.0, 0.0, np.float32))],
}
COST_SEEDS = {
    ".npy": [_npy_bytes(np.ones((K, K)) - np.eye(K))],
    ".csv": [b"0,1,1\n1,0,1\n1,1,0\n", b"0.0,2.5e+00,1\n-1,0,1\n1,1,0\n"],
}

# An edit: what, where (small positions are the headers, the likeliest to matter), which bytes.
EDITS = st.tuples(
    st.sampled_from(["flip", "truncate", "insert", "delete"]),
    st.one_of(st.integers(0, 64), st.integers(0, 1 << 16)),
    st.binary(min_size=1, max_size=8),
)


def mutate(data: bytes, edits: list[tuple[str, int, bytes]]) -> bytes:
    for kind, where, extra in edits:
        i = where % (len(data) + 1)
        if kind == "flip" and i < len(data):
            data = data[:i] + bytes([data[i] ^ (extra[0] or 0xFF)]) + data[i + 1 :]
        elif kind == "truncate":
            data = data[:i]
        elif kind == "insert":
            data = data[:i] + extra + data[i:]
        elif kind == "delete":
            data = data[:i] + data[i + len(extra) :]
    return data


def hostile_files(seeds: dict[str, list[bytes]]) -> st.SearchStrategy[tuple[str, bytes]]:
    mutated = st.sampled_from(
        [(suffix, seed) for suffix, group in seeds.items() for seed in group]
    ).flatmap(
        lambda pick: st.lists(EDITS, min_size=1, max_size=4).map(
            lambda edits: (pick[0], mutate(pick[1], edits))
        )
    )
    random = st.tuples(st.sampled_from(sorted(seeds)), st.binary(max_size=512))
    return st.one_of(mutated, random)


def _never_anything_but_softreg_error(call, path: Path, data: bytes) -> np.ndarray | None:
    path.write_bytes(data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = call(path)
        except SoftregError as exc:
            message = str(exc)
            assert "\n" not in message and message.startswith(f"{path}: "), message
            result = None
    assert not caught, [f"{w.category.__name__}: {w.message}" for w in caught]
    return result


@settings(
    max_examples=1000, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(hostile_files(SEEDS))
def test_fuzz_read_image_file(case):
    suffix, data = case
    with tempfile.TemporaryDirectory() as tmp:
        arr = _never_anything_but_softreg_error(read_image_file, Path(tmp) / f"f{suffix}", data)
    if arr is not None:
        assert arr.dtype == np.uint8 and arr.shape == SIZE


@settings(max_examples=500, deadline=None, database=None)
@given(hostile_files(COST_SEEDS))
def test_fuzz_read_cost_matrix(case):
    suffix, data = case
    with tempfile.TemporaryDirectory() as tmp:
        matrix = _never_anything_but_softreg_error(
            lambda p: read_cost_matrix(p, K), Path(tmp) / f"c{suffix}", data
        )
    if matrix is not None:
        assert matrix.dtype == np.float64 and matrix.shape == (K, K)
        assert np.all(np.isfinite(matrix))


@pytest.mark.parametrize("name", ["costs.csv", "costs.npy"])
def test_a_fifo_is_refused_without_blocking(tmp_path, name):
    """A named pipe would block the reader forever: only regular files are read."""
    import os

    fifo = tmp_path / name
    os.mkfifo(fifo)
    with pytest.raises(SoftregError, match="not a regular file"):
        read_cost_matrix(fifo, 3)
