"""Predictions for people: top-k labels with probabilities, and images read from files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from softreg import backend
from softreg.errors import SoftregError, require


@dataclass(frozen=True)
class Prediction:
    labels: tuple[str, ...]  # the top-k class names, most likely first
    probs: tuple[float, ...]


def predict_top_k(
    model: Any, params: dict[str, Any], X: Any, class_names: tuple[str, ...], *, k: int = 1
) -> list[Prediction]:
    """The ``k`` most likely classes of each row of ``X (n_samples, n_features)``."""
    probs = backend.to_numpy(model.predict_proba(params, X))
    k = max(1, min(k, probs.shape[1]))
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return [
        Prediction(tuple(class_names[j] for j in row), tuple(float(probs[i, j]) for j in row))
        for i, row in enumerate(order)
    ]


def read_image_file(path: str | Path, *, size: tuple[int, int] = (28, 28),
                    invert: str = "auto") -> np.ndarray:
    """An image file as a uint8 ``(height, width)`` array like the datasets' images.

    ``.npy`` files must hold a 2-D array of that size (uint8 0..255 or float 0..1). Other files
    (PNG, JPEG, ...) are read with Pillow, converted to grey and resized. The datasets show a
    light object on black; ``invert="auto"`` inverts pictures whose border is mostly light
    (a photo on white paper), ``"yes"``/``"no"`` force it.
    """
    path = Path(path)
    if not path.is_file():
        raise SoftregError(f"{path}: no such image file")
    if path.suffix == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise SoftregError(f"{path}: not a readable .npy array ({exc})") from None
        if arr.shape != size:
            raise SoftregError(f"{path}: image of shape {arr.shape}, expected {size}")
        if not np.all(np.isfinite(arr)):
            raise SoftregError(f"{path}: image contains NaN or infinite values")
        if arr.dtype != np.uint8:
            if arr.min() < 0 or arr.max() > 1:
                raise SoftregError(f"{path}: float image values must lie in [0, 1]")
            arr = np.rint(arr * 255).astype(np.uint8)
    else:
        Image = require("PIL.Image", "reading image files", package="pillow")
        UnidentifiedImageError = Image.UnidentifiedImageError
        try:
            with Image.open(path) as img:
                grey = img.convert("L")
                if grey.size != size[::-1]:
                    grey = grey.resize(size[::-1], Image.Resampling.LANCZOS)
                arr = np.asarray(grey, dtype=np.uint8)
        except (UnidentifiedImageError, OSError) as exc:
            raise SoftregError(f"{path}: not a readable image ({exc})") from None
    if invert not in ("auto", "yes", "no"):
        raise SoftregError(f"invert must be auto, yes or no, got {invert!r}")
    border = np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]])
    if invert == "yes" or (invert == "auto" and border.mean() > 127):
        arr = 255 - arr
    return arr
