"""Labelled train/test data in memory: what training and evaluation read.

:class:`LabelledData` is the contract: a name, class names, and the feature matrices and
labels of a training and a test set. Two frozen dataclasses implement it:

- :class:`Dataset`, grayscale images (MNIST, Fashion-MNIST) kept in their stored uint8 form,
  with the float32 features computed from them on first use;
- :class:`TabularDataset`, feature vectors with no images (the generated ``"synthetic"``
  data).

Code that needs the pictures (a grid of predictions) asks ``isinstance(data, Dataset)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Protocol

import numpy as np

from softreg.data.catalog import DataError
from softreg.standardise import as_features

__all__ = [
    "Dataset",
    "LabelledData",
    "TabularDataset",
    "check_split",
    "describe_array",
    "to_features",
]


class LabelledData(Protocol):
    """A train/test split of labelled examples: the attributes training and evaluation read.

    :class:`Dataset` and :class:`TabularDataset` both have them; write a function that
    takes either as ``data: LabelledData``.
    """

    @property
    def name(self) -> str:
        """The dataset's name, e.g. ``"fashion-mnist"``."""

    @property
    def class_names(self) -> tuple[str, ...]:
        """The text label of each class index."""

    @property
    def num_classes(self) -> int:
        """Number of classes, ``len(class_names)``."""

    @property
    def X_train(self) -> np.ndarray:
        """Training features, float32 ``(n_train, n_features)``."""

    @property
    def y_train(self) -> np.ndarray:
        """Training labels, int64 ``(n_train,)``, values in ``[0, num_classes)``."""

    @property
    def X_test(self) -> np.ndarray:
        """Test features, float32 ``(n_test, n_features)``."""

    @property
    def y_test(self) -> np.ndarray:
        """Test labels, int64 ``(n_test,)``, values in ``[0, num_classes)``."""

    @property
    def train_inputs(self) -> np.ndarray:
        """Training inputs as stored: uint8 images, or the float32 features ``X_train``.

        What training reads (models read uint8 images as ``X_train`` holds them, ``/ 255``
        in float32, batch by batch: a quarter of the memory of ``X_train``).
        """

    @property
    def test_inputs(self) -> np.ndarray:
        """Test inputs as stored, as :attr:`train_inputs`."""

    @property
    def source(self) -> Path | str:
        """Where the data came from: a directory, or how they were generated."""


@dataclass(frozen=True, eq=False)  # eq=False: identity hashing; arrays cannot be compared
class Dataset:
    """A train/test split of labelled grayscale images.

    The images are kept as stored (uint8); :attr:`X_train` and :attr:`X_test` are the
    float32 features computed from them once, on first use.

    Parameters
    ----------
    name : str
        The dataset's name, e.g. ``"fashion-mnist"``.
    class_names : sequence of str
        The text label of each class index (stored as a tuple).
    train_images : numpy.ndarray
        uint8 ``(n_train, height, width)``, the stored form.
    train_labels : numpy.ndarray
        Integer ``(n_train,)`` with values in ``[0, len(class_names))``; stored as int64
        (other integer types are converted).
    test_images : numpy.ndarray
        uint8 ``(n_test, height, width)``, images of the training images' size.
    test_labels : numpy.ndarray
        Integer ``(n_test,)``, as ``train_labels``.
    source : str or os.PathLike
        The directory the files were read from (stored as a :class:`~pathlib.Path`).

    Attributes
    ----------
    num_classes : int
        ``len(class_names)``.
    X_train, X_test : numpy.ndarray
        The images as read-only float32 ``(n, height * width)`` in ``[0, 1]``.
    y_train, y_test : numpy.ndarray
        The same arrays as ``train_labels`` and ``test_labels``.

    Raises
    ------
    DataError
        On construction, if the arrays are inconsistent (see :func:`check_split`), or the
        training and test images differ in size.
    """

    name: str
    class_names: tuple[str, ...]
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    source: Path

    def __post_init__(self) -> None:
        """Check the arrays and normalize the fields' types."""
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
        """Number of classes, ``len(class_names)``."""
        return len(self.class_names)

    @cached_property
    def X_train(self) -> np.ndarray:
        """Training images as read-only float32 ``(n_train, height * width)`` in [0, 1]."""
        return to_features(self.train_images)

    @cached_property
    def X_test(self) -> np.ndarray:
        """Test images as read-only float32 ``(n_test, height * width)`` in [0, 1]."""
        return to_features(self.test_images)

    @property
    def train_inputs(self) -> np.ndarray:
        """Training images as stored, uint8 ``(n_train, height, width)``."""
        return self.train_images

    @property
    def test_inputs(self) -> np.ndarray:
        """Test images as stored, uint8 ``(n_test, height, width)``."""
        return self.test_images

    @property
    def y_train(self) -> np.ndarray:
        """Training labels, int64 ``(n_train,)``: the array ``train_labels``."""
        return self.train_labels

    @property
    def y_test(self) -> np.ndarray:
        """Test labels, int64 ``(n_test,)``: the array ``test_labels``."""
        return self.test_labels


@dataclass(frozen=True, eq=False)
class TabularDataset:
    """A train/test split of labelled feature vectors, with no images.

    Parameters
    ----------
    name : str
        The dataset's name, e.g. ``"synthetic"``.
    class_names : tuple of str
        The text label of each class index.
    X_train : numpy.ndarray
        Training features, float32 ``(n_train, n_features)``.
    y_train : numpy.ndarray
        Training labels, int64 ``(n_train,)``.
    X_test : numpy.ndarray
        Test features, float32 ``(n_test, n_features)``.
    y_test : numpy.ndarray
        Test labels, int64 ``(n_test,)``.
    source : str
        How the data were made, e.g. the generator's call.

    Attributes
    ----------
    num_classes : int
        ``len(class_names)``.
    train_labels, test_labels : numpy.ndarray
        The same arrays as ``y_train`` and ``y_test`` (the names :class:`Dataset` uses).
    test_images : None
        Always None: there are no images. Test ``isinstance(data, Dataset)`` instead.
    """

    name: str
    class_names: tuple[str, ...]
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    source: str

    @property
    def num_classes(self) -> int:
        """Number of classes, ``len(class_names)``."""
        return len(self.class_names)

    @property
    def train_inputs(self) -> np.ndarray:
        """Training features, the array ``X_train``."""
        return self.X_train

    @property
    def test_inputs(self) -> np.ndarray:
        """Test features, the array ``X_test``."""
        return self.X_test

    @property
    def train_labels(self) -> np.ndarray:
        """Training labels, int64 ``(n_train,)``: the array ``y_train``."""
        return self.y_train

    @property
    def test_labels(self) -> np.ndarray:
        """Test labels, int64 ``(n_test,)``: the array ``y_test``."""
        return self.y_test

    @property
    def test_images(self) -> None:
        """None: feature vectors have no pictures to draw."""
        return None


def to_features(images: np.ndarray) -> np.ndarray:
    """Return images as C-contiguous read-only float32 features in [0, 1].

    Same arithmetic as torchvision's ``ToTensor`` (float32 division by 255), so pixel values
    are bit-identical to what a PyTorch pipeline sees.

    Parameters
    ----------
    images : numpy.ndarray
        uint8 ``(n_samples, height, width)``.

    Returns
    -------
    numpy.ndarray
        float32 ``(n_samples, height * width)``, a fresh read-only array.
    """
    # (n, h*w) spelled out: reshape(n, -1) cannot infer the width when n is 0.
    width = int(np.prod(images.shape[1:]))
    features = as_features(images.reshape(len(images), width), np)  # a fresh C-order copy
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
    """Validate one split's images and labels, and return the labels as int64.

    Parameters
    ----------
    split : str
        ``"train"`` or ``"test"``, for the messages.
    images : numpy.ndarray
        uint8 ``(n_samples, height, width)``.
    labels : numpy.ndarray
        Integer ``(n_samples,)``.
    num_classes : int
        Labels must lie in ``[0, num_classes)``.
    image_file, label_file : str, optional
        The sources named in error messages; by default the roles (``train_images``,
        ``train_labels`` ...).

    Returns
    -------
    numpy.ndarray
        int64 ``(n_samples,)``: ``labels`` itself if already int64, else a read-only copy.

    Raises
    ------
    DataError
        The images are not 3-D uint8, the labels not 1-D integers, their counts differ, or
        a label lies outside ``[0, num_classes)``.
    """
    image_file = image_file or f"{split}_images"
    label_file = label_file or f"{split}_labels"
    if not isinstance(images, np.ndarray) or images.ndim != 3 or images.dtype != np.uint8:
        raise DataError(
            f"{image_file}: expected uint8 images of shape (n, height, width), "
            f"got {describe_array(images)}"
        )
    if not isinstance(labels, np.ndarray) or labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise DataError(f"{label_file}: expected 1-D integer labels, got {describe_array(labels)}")
    if len(images) != len(labels):
        raise DataError(
            f"{split}: {len(images)} images but {len(labels)} labels ({image_file}, {label_file})"
        )
    _check_label_range(labels, num_classes, label_file)
    if labels.dtype != np.int64:
        labels = labels.astype(np.int64)
        labels.flags.writeable = False
    return labels


def _check_label_range(labels: np.ndarray, num_classes: int, label_file: str) -> None:
    """Raise DataError naming the first out-of-range extreme of ``labels``."""
    if labels.size:
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= num_classes:
            bad = low if low < 0 else high
            raise DataError(f"{label_file}: label {bad} outside [0, {num_classes})")


def describe_array(value: object) -> str:
    """Describe a value for an error message.

    Parameters
    ----------
    value : object
        Usually an array.

    Returns
    -------
    str
        ``"<dtype> array of shape <shape>"`` for an array, else the type's name.
    """
    if isinstance(value, np.ndarray):
        return f"{value.dtype} array of shape {value.shape}"
    return type(value).__name__
