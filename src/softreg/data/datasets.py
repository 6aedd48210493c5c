"""Finding, loading and validating MNIST-style datasets.

Search order for a dataset's files (first complete directory wins):

1. an explicit ``data_dir`` argument,
2. the ``SOFTREG_DATA`` environment variable,
3. ``default_cache_dir() / name`` (where :func:`download_dataset` puts them),
4. ``SYSTEM_DATA_DIR / name`` (Debian's ``dataset-fashion-mnist`` installs there).

An explicit ``data_dir`` or ``SOFTREG_DATA`` may name the dataset's own directory or its
parent; if it holds no complete dataset that is an error rather than a silent fall-through.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from softreg.data.catalog import (
    DATASETS,
    ENV_VAR,
    FASHION_MNIST_LABELS,
    MNIST_LABELS,
    ROLES,
    DataError,
    DatasetSpec,
    dataset_spec,
    default_cache_dir,
    expand_user,
)
from softreg.data.download import download_dataset
from softreg.data.idx import IDXError, read_idx
from softreg.data.synthetic import synthetic_dataset

__all__ = [
    "DATASETS",
    "ENV_VAR",
    "FASHION_MNIST_LABELS",
    "MNIST_LABELS",
    "SYSTEM_DATA_DIR",
    "DataError",
    "Dataset",
    "DatasetSpec",
    "default_cache_dir",
    "download_dataset",
    "find_dataset_dir",
    "load_dataset",
    "text_labels",
]

SYSTEM_DATA_DIR = Path("/usr/share/datasets")
IMAGE_SHAPE = (28, 28)


@dataclass(frozen=True, eq=False)  # eq=False: identity hashing; arrays cannot be compared
class Dataset:
    """A train/test split of labelled grayscale images.

    Attributes
    ----------
        name: dataset name, e.g. ``"fashion-mnist"``.
        class_names: text label of each class index.
        train_images, test_images: uint8 arrays of shape (n, height, width), the stored form.
        train_labels, test_labels: int64 arrays of shape (n,), values in
            ``[0, len(class_names))`` (other integer types are converted on construction).
        source: the directory the files were read from.

    Raises
    ------
        DataError: on construction, if the arrays are inconsistent.
    """

    name: str
    class_names: tuple[str, ...]
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    source: Path

    def __post_init__(self) -> None:
        # object.__setattr__ is how a frozen dataclass normalizes its own fields.
        object.__setattr__(self, "class_names", tuple(self.class_names))
        object.__setattr__(self, "source", Path(self.source))
        for split in ("train", "test"):
            labels = check_split(
                split,
                getattr(self, f"{split}_images"),
                getattr(self, f"{split}_labels"),
                self.num_classes,
            )
            object.__setattr__(self, f"{split}_labels", labels)
        if self.train_images.shape[1:] != self.test_images.shape[1:]:
            raise DataError(
                f"{self.name}: train images are {self.train_images.shape[1:]} "
                f"but test images are {self.test_images.shape[1:]}"
            )

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @cached_property
    def X_train(self) -> np.ndarray:
        """Training images as read-only float32 (n, height*width) in [0, 1]."""
        return to_features(self.train_images)

    @cached_property
    def X_test(self) -> np.ndarray:
        """Test images as read-only float32 (n, height*width) in [0, 1]."""
        return to_features(self.test_images)

    @property
    def y_train(self) -> np.ndarray:
        """Training labels, int64 (n,)."""
        return self.train_labels

    @property
    def y_test(self) -> np.ndarray:
        """Test labels, int64 (n,)."""
        return self.test_labels


def to_features(images: np.ndarray) -> np.ndarray:
    """uint8 (n, h, w) -> C-contiguous read-only float32 (n, h*w) in [0, 1].

    Same arithmetic as torchvision's ToTensor (float32 division by 255), so pixel values
    are bit-identical to what a PyTorch pipeline sees.
    """
    # (n, h*w) spelled out: reshape(n, -1) cannot infer the width when n is 0.
    width = int(np.prod(images.shape[1:]))
    features = images.reshape(len(images), width).astype(np.float32)  # fresh C-order copy
    features /= np.float32(255)
    features.flags.writeable = False  # shared, cached: guard against in-place edits
    return features


def check_split(
    split: str,
    images: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    image_file: str | None = None,
    label_file: str | None = None,
) -> np.ndarray:
    """Validate one split and return its labels as int64 (n,).

    ``image_file`` and ``label_file`` name the sources in error messages; by default
    the roles (``train_images`` ...) are named.

    Raises
    ------
        DataError: images are not 3-D uint8, labels not 1-D integers, their counts
            differ, or a label lies outside ``[0, num_classes)``.
    """
    image_file = image_file or f"{split}_images"
    label_file = label_file or f"{split}_labels"
    if not isinstance(images, np.ndarray) or images.ndim != 3 or images.dtype != np.uint8:
        raise DataError(
            f"{image_file}: expected uint8 images of shape (n, height, width), "
            f"got {_describe(images)}"
        )
    if not isinstance(labels, np.ndarray) or labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise DataError(f"{label_file}: expected 1-D integer labels, got {_describe(labels)}")
    if len(images) != len(labels):
        raise DataError(
            f"{split}: {len(images)} images but {len(labels)} labels ({image_file}, {label_file})"
        )
    if labels.size:
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= num_classes:
            bad = low if low < 0 else high
            raise DataError(f"{label_file}: label {bad} outside [0, {num_classes})")
    if labels.dtype != np.int64:
        labels = labels.astype(np.int64)
        labels.flags.writeable = False
    return labels


def _describe(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"{value.dtype} array of shape {value.shape}"
    return type(value).__name__


def text_labels(
    indices: Iterable[int] | np.ndarray, dataset: str | Dataset = "fashion-mnist"
) -> list[str]:
    """Class names for integer class indices, e.g. ``text_labels([0, 9])`` ->
    ``["t-shirt", "ankle boot"]``. ``dataset`` is a dataset name or a :class:`Dataset`.

    Raises
    ------
        ValueError: an index is outside ``[0, number of classes)`` or not an integer.
    """
    names = (
        dataset.class_names if isinstance(dataset, Dataset) else dataset_spec(dataset).class_names
    )
    array = np.asarray(indices if isinstance(indices, np.ndarray) else list(indices))
    if array.size == 0:
        return []
    if array.ndim != 1 or array.dtype.kind not in "iu":
        raise ValueError(
            f"text_labels: expected a 1-D sequence of integers, got {_describe(array)}"
        )
    low, high = int(array.min()), int(array.max())
    if low < 0 or high >= len(names):
        bad = low if low < 0 else high
        raise ValueError(f"text_labels: class index {bad} outside [0, {len(names)})")
    return [names[i] for i in array.tolist()]


def find_dataset_dir(name: str, data_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """The first directory in the search order (see module docstring) holding all four
    files of dataset ``name``, each either ``.gz``-compressed or not; None if none does.

    Raises
    ------
        DataError: ``name`` is unknown, or ``data_dir`` / ``$SOFTREG_DATA`` is given but
            holds no complete dataset.
    """
    spec = dataset_spec(name)
    if data_dir is not None:
        what = f"data_dir {os.fspath(data_dir)}"
        return _explicit_dir(spec, expand_user(data_dir, what), what)
    env = os.environ.get(ENV_VAR)
    if env:
        return _explicit_dir(spec, expand_user(env, f"{ENV_VAR}={env}"), f"{ENV_VAR}={env}")
    for directory in _default_dirs(spec):
        if _missing_files(spec, directory) == []:
            return directory
    return None


def _default_dirs(spec: DatasetSpec) -> list[Path]:
    # SYSTEM_DATA_DIR is read at call time so tests (and users) can repoint it.
    return [default_cache_dir() / spec.name, SYSTEM_DATA_DIR / spec.name]


def _explicit_dir(spec: DatasetSpec, root: Path, what: str) -> Path:
    candidates = [root / spec.name, root]
    for directory in candidates:
        if _missing_files(spec, directory) == []:
            return directory
    if not root.is_dir():
        raise DataError(f"{what}: no such directory")
    missing = _missing_files(spec, root)
    raise DataError(
        f"{what}: no complete {spec.name} dataset in {candidates[0]} or {root} "
        f"(missing in {root}: {', '.join(missing)})"
    )


def _dataset_files(spec: DatasetSpec, directory: Path) -> dict[str, Path]:
    """Role -> existing file in ``directory``, preferring the ``.gz`` name; absent roles
    are left out.
    """
    found = {}
    for role in ROLES:
        gz_name = spec.files[role]
        for candidate in (directory / gz_name, directory / gz_name.removesuffix(".gz")):
            if candidate.is_file():
                found[role] = candidate
                break
    return found


def _missing_files(spec: DatasetSpec, directory: Path) -> list[str]:
    found = _dataset_files(spec, directory)
    return [spec.files[role] for role in ROLES if role not in found]


def load_dataset(
    name: str = "fashion-mnist",
    *,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    progress: bool = True,
) -> Dataset:
    """Find (or else download into the cache) and load dataset ``name``.

    Returns a :class:`Dataset` with uint8 images (n, 28, 28) and int64 labels (n,), or for
    ``"synthetic"`` the seed's generated 2-D, 3-class data as a ``TabularDataset``.

    Raises
    ------
        DataError: the dataset is not found and ``download`` is False (the message
            lists every place searched), a download fails, or a file is corrupt or
            inconsistent with the others.
    """
    if name == "synthetic":  # generated, not read: nothing to find
        return synthetic_dataset()
    spec = dataset_spec(name)
    directory = find_dataset_dir(name, data_dir)
    if directory is None:
        if not download:
            raise DataError(_not_found_message(spec))
        directory = download_dataset(name, progress=progress)
    return read_dataset_dir(spec, directory)


def _not_found_message(spec: DatasetSpec) -> str:
    searched = ", ".join(str(d) for d in _default_dirs(spec))
    hint = f"pass data_dir=, set {ENV_VAR} to a directory holding the files, or allow download"
    if spec.debian_package:
        hint += f", or on Debian/Ubuntu `apt-get install {spec.debian_package}`"
    return (
        f"{spec.name} not found: no data_dir given, {ENV_VAR} not set, and no complete "
        f"copy in {searched}; download=False, so nothing was downloaded; {hint}"
    )


def read_dataset_dir(spec: DatasetSpec, directory: Path) -> Dataset:
    """Read and validate the four IDX files of ``spec`` in ``directory``.

    Raises
    ------
        DataError: a file is missing, corrupt (the IDX error is chained), or the
            arrays are not (n, 28, 28) uint8 images with n >= 1 matching in-range labels.
    """
    files = _dataset_files(spec, directory)
    missing = [spec.files[role] for role in ROLES if role not in files]
    if missing:
        raise DataError(f"{directory}: missing {', '.join(missing)}")
    arrays = {}
    for role, path in files.items():
        try:
            arrays[role] = read_idx(path)
        except IDXError as exc:
            raise DataError(str(exc)) from exc
    labels = {}
    for split in ("train", "test"):
        image_file, label_file = str(files[f"{split}_images"]), str(files[f"{split}_labels"])
        images = arrays[f"{split}_images"]
        if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE:
            raise DataError(
                f"{image_file}: expected uint8 images of shape (n, 28, 28), got {_describe(images)}"
            )
        labels[split] = check_split(
            split, images, arrays[f"{split}_labels"], len(spec.class_names), image_file, label_file
        )
        if len(images) == 0:
            raise DataError(
                f"{image_file}: no images (its header says 0); the {split} set is empty"
            )
    return Dataset(
        name=spec.name,
        class_names=spec.class_names,
        train_images=arrays["train_images"],
        train_labels=labels["train"],
        test_images=arrays["test_images"],
        test_labels=labels["test"],
        source=directory,
    )
