"""Predictions for people: top-k labels with probabilities, and images read from files."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from softreg import backend, ops
from softreg.errors import SoftregError, describe, require
from softreg.npyfile import load_npy

__all__ = [
    "MAX_IMAGE_PIXELS",
    "MAX_IMAGE_SIDE",
    "Prediction",
    "finite_logits",
    "predict_top_k",
    "read_image_file",
]

MAX_IMAGE_SIDE = 4096
MAX_IMAGE_PIXELS = MAX_IMAGE_SIDE * MAX_IMAGE_SIDE  # 64 MB once decoded as RGBA

# Pillow's modes of one unsigned 16-bit channel, and those with an alpha channel.
_UINT16_MODES = ("I;16", "I;16B", "I;16L", "I;16N")
_ALPHA_MODES = ("RGBA", "LA", "La", "RGBa", "PA")
# Pillow gives mode "I" (32-bit integers) to these formats' 16-bit pictures (to PGM/PPM ones
# of any maximum value above 255, scaled by Pillow to 0..65535).
_MODE_I_BITS = {"PNG": 16, "PPM": 16}


@dataclass(frozen=True)
class Prediction:
    """The ``k`` most likely classes of one input.

    Attributes
    ----------
    labels : tuple of str
        The top-k class names, most likely first.
    probs : tuple of float
        Their probabilities, in the same order.
    """

    labels: tuple[str, ...]
    probs: tuple[float, ...]


def predict_top_k(
    model: Any, params: dict[str, Any], X: Any, class_names: tuple[str, ...], *, k: int = 1
) -> list[Prediction]:
    """Return the ``k`` most likely classes of each input, with their probabilities.

    Parameters
    ----------
    model : SoftmaxRegression or MLP
        The model.
    params : dict of str to array
        Its parameters.
    X : array of shape (n_samples, n_features)
        The inputs, of the parameters' backend.
    class_names : tuple of str
        One name per output.
    k : int
        How many classes per input; clipped to 1 .. n_classes.

    Returns
    -------
    list of Prediction
        One per input, in order.

    Raises
    ------
    SoftregError
        The model's scores overflow float32 for some input (see :func:`finite_logits`).
    """
    probs = ops.softmax(finite_logits(model, params, X), axis=1)
    k = max(1, min(k, probs.shape[1]))
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return [
        Prediction(tuple(class_names[j] for j in row), tuple(float(probs[i, j]) for j in row))
        for i, row in enumerate(order)
    ]


def finite_logits(model: Any, params: dict[str, Any], X: Any) -> np.ndarray:
    """Return the model's scores of ``X`` on the host, refused when any is not finite.

    A model whose weights are finite can still overflow float32 on its inputs (weights grown
    huge by too large a learning rate, say); its probabilities would be NaN, and every
    decision taken from them arbitrary.

    Parameters
    ----------
    model : SoftmaxRegression or MLP
        The model.
    params : dict of str to array
        Its parameters.
    X : array of shape (n_samples, n_features)
        The inputs, of the parameters' backend.

    Returns
    -------
    ndarray of shape (n_samples, n_classes)
        The logits, as a NumPy array.

    Raises
    ------
    SoftregError
        Saying for how many inputs the scores overflow.
    """
    with np.errstate(over="ignore", invalid="ignore"):  # said below, in one line
        logits = backend.to_numpy(model.forward(params, X))
    bad = ~np.isfinite(logits).all(axis=1)
    if bad.any():
        raise SoftregError(
            f"the model's scores overflow float32 for {int(bad.sum())} of "
            f"{len(bad)} inputs (its weights are too large: it was trained "
            f"with too large a learning rate?); it cannot classify them"
        )
    return logits


def read_image_file(
    path: str | Path, *, size: tuple[int, int] = (28, 28), invert: str = "auto"
) -> np.ndarray:
    """Read an image file as an array like the datasets' images: light object, black background.

    Parameters
    ----------
    path : str or Path
        A ``.npy`` file holding a ``size`` array (uint8 0..255, other integers 0..255, or
        floats in [0, 1]), or a picture Pillow reads (PNG, JPEG, GIF, BMP, ...).
    size : tuple of int
        ``(height, width)``:the shape of the result; pictures are resized to it (LANCZOS),
        ``.npy`` arrays must have it.
    invert : {"auto", "yes", "no"}
        ``"auto"`` inverts pictures whose border is mostly light (ink on paper);
        ``"yes"``/``"no"`` force it. A transparent background is filled before that: white
        behind dark ink, black behind light ink (``"yes"``: white, ``"no"``: black).

    Returns
    -------
    ndarray of uint8, of shape ``size``
        Grey levels, 0 (black) to 255 (white).

    Raises
    ------
    SoftregError
        One line starting with ``path``: a missing file, a file that is not an image or whose
        values are out of range, a picture of more than ``MAX_IMAGE_PIXELS`` pixels.
    """
    if invert not in ("auto", "yes", "no"):
        raise SoftregError(f"invert must be auto, yes or no, got {invert!r}")
    path = Path(path)
    if not path.is_file():
        raise SoftregError(f"{path}: no such image file")
    if path.suffix.lower() == ".npy":
        arr = _read_npy_image(path, size)
    else:
        arr = _read_picture(path, size, invert)
    border = np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]])
    if invert == "yes" or (invert == "auto" and border.mean() > 127):
        arr = 255 - arr
    return arr


def _read_npy_image(path: Path, size: tuple[int, int]) -> np.ndarray:
    """Return the ``size`` uint8 array of a ``.npy`` image (header checked before loading)."""
    values = load_npy(path, "image", shape=size)
    if values.dtype == np.uint8:
        return values
    if values.dtype.kind in "iu":
        if values.min() < 0 or values.max() > 255:
            raise SoftregError(f"{path}: integer image values must lie in 0..255")
        return values.astype(np.uint8)
    return _floats_to_uint8(path, values)


def _floats_to_uint8(path: Path, values: np.ndarray) -> np.ndarray:
    """Return grey levels in [0, 1], any shape, as uint8 0..255 of the same shape."""
    if not np.all(np.isfinite(values)):
        raise SoftregError(f"{path}: image contains NaN or infinite values")
    if values.min() < 0 or values.max() > 1:
        raise SoftregError(f"{path}: float image values must lie in [0, 1]")
    return np.rint(values.astype(np.float64) * 255).astype(np.uint8)


def _read_picture(path: Path, size: tuple[int, int], invert: str) -> np.ndarray:
    """Return a picture file, through Pillow, as a uint8 ``size`` grey array (not inverted)."""
    Image = require("PIL.Image", "reading image files", package="pillow")
    height, width = size
    with _pillow_errors(Image, path):
        with _decode_with_pillow(Image, path) as img:
            grey, alpha = _to_grey_and_alpha(Image, img, path)
        if alpha is not None:
            grey = _composite(Image, grey, alpha, invert)
        if grey.size != (width, height):
            grey = grey.resize((width, height), Image.Resampling.LANCZOS)
        return np.array(grey, dtype=np.uint8)


@contextlib.contextmanager
def _pillow_errors(Image: Any, path: Path) -> Iterator[None]:
    """Turn every failure of Pillow on an untrusted file into one SoftregError line.

    Pillow's parsers raise whatever their code hits on hostile bytes (OSError, ValueError,
    SyntaxError, struct.error, EOFError, IndexError, TypeError, ZeroDivisionError, ...), so
    the block's exceptions are not listed but all turned into "not a readable image".
    Pillow's ``DecompressionBombWarning`` becomes an error too; its other warnings (corrupt
    EXIF data, chunks it skips) are about metadata and are silenced, the pixels being checked
    anyway.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except SoftregError:
        raise
    except Exception as exc:
        raise SoftregError(f"{path}: not a readable image ({describe(exc)})") from None


def _decode_with_pillow(Image: Any, path: Path) -> Any:
    """Return the picture opened and decoded by Pillow, its size checked before decoding."""
    img = _open_header(Image, path)
    try:
        _check_pixels(path, img.size)
        img.load()
    except BaseException:
        img.close()
        raise
    return img


def _open_header(Image: Any, path: Path) -> Any:
    """Return ``Image.open(path)``: the header is read, the pixels are not yet decoded."""
    try:
        return Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow refuses pictures far beyond this module's limit itself, inside open() (the
        # warning is made an error above); its message says how many pixels.
        raise SoftregError(
            f"{path}: image larger than the limit of {MAX_IMAGE_SIDE}x"
            f"{MAX_IMAGE_SIDE} = {MAX_IMAGE_PIXELS} pixels "
            f"({describe(exc)})"
        ) from None


def _check_pixels(path: Path, size: tuple[int, int]) -> None:
    """Refuse a picture of no pixels, or of more than ``MAX_IMAGE_PIXELS``."""
    width, height = size
    if width * height > MAX_IMAGE_PIXELS:
        raise SoftregError(
            f"{path}: image of {width}x{height} pixels, more than the limit of "
            f"{MAX_IMAGE_SIDE}x{MAX_IMAGE_SIDE} = {MAX_IMAGE_PIXELS} pixels"
        )
    if width < 1 or height < 1:
        raise SoftregError(f"{path}: image of {width}x{height} pixels, no pixels to read")


def _to_grey_and_alpha(Image: Any, img: Any, path: Path) -> tuple[Any, Any | None]:
    """Return a decoded picture as a mode "L" grey image and alpha (None if opaque).

    Each of Pillow's modes is scaled by its bit depth: 16-bit grey to 0..255 (not clipped, as
    ``convert("L")`` does), float grey from [0, 1]; transparency (an alpha channel, or a
    ``transparency`` entry of a palette, grey or RGB picture) is kept apart for compositing.
    """
    mode = img.mode
    if mode in _UINT16_MODES or mode == "I":
        return _scale_bit_depth(Image, img, path), None
    if mode == "F":
        return Image.fromarray(_floats_to_uint8(path, np.asarray(img))), None
    if mode in _ALPHA_MODES or (mode in ("P", "L", "RGB") and "transparency" in img.info):
        # Pillow converts "La" to "LA" only, and the colour modes to "LA" through "RGBA"
        la = img.convert("LA") if mode in ("L", "LA", "La") else img.convert("RGBA").convert("LA")
        grey, alpha = la.split()
        return grey, alpha
    if mode == "LAB":  # Pillow converts LAB to RGB only
        img = img.convert("RGB")
    return img.convert("L"), None


def _scale_bit_depth(Image: Any, img: Any, path: Path) -> Any:
    """Return a 16-bit (or mode "I") grey picture as mode "L".

    Each value becomes ``rint(value * 255 / (2**bits - 1))``.
    """
    bits = 16 if img.mode in _UINT16_MODES else _MODE_I_BITS.get(img.format)
    if bits is None:
        raise SoftregError(
            f"{path}: {img.format} picture of 32-bit integers, whose range is "
            "unknown; save it with 8 or 16 bits"
        )
    top = 2**bits - 1
    values = np.asarray(img)  # (height, width) uint16 or int32
    if values.min() < 0 or values.max() > top:
        raise SoftregError(
            f"{path}: pixel values outside 0..{top}, the range of a {bits}-bit image"
        )
    scaled = values * 255.0
    scaled /= top
    return Image.fromarray(np.rint(scaled).astype(np.uint8))


def _composite(Image: Any, grey: Any, alpha: Any, invert: str) -> Any:
    """Return ``grey`` over the background its ink implies, weighted by ``alpha`` (mode "L").

    The datasets show light ink on black. Dark ink (a drawing program's black pen on a
    transparent canvas) goes onto white, which the border rule then inverts; light ink goes
    onto black. ``invert="yes"`` says the picture is dark on light (white background),
    ``"no"`` that it is light on dark (black background).
    """
    if alpha.getextrema()[0] == 255:  # opaque everywhere: nothing shows through
        return grey
    if invert == "auto":
        background = 255 if _ink_is_dark(Image, grey, alpha) else 0
    else:
        background = 255 if invert == "yes" else 0
    return Image.composite(grey, Image.new("L", grey.size, background), alpha)


def _ink_is_dark(Image: Any, grey: Any, alpha: Any) -> bool:
    """Return whether the alpha-weighted mean grey level is below the middle, 127.5."""
    # Over black, each pixel becomes grey * alpha / 255: summed, the weighted sum of the ink.
    premultiplied = Image.composite(grey, Image.new("L", grey.size, 0), alpha)
    ink = np.asarray(premultiplied).sum(dtype=np.int64)
    coverage = np.asarray(alpha).sum(dtype=np.int64) / 255  # nothing visible: not dark
    return bool(ink < 127.5 * coverage)
