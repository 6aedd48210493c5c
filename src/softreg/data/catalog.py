"""What the known datasets are: file names, official checksums, mirrors, class names.

Also home to :class:`DataError` and :func:`default_cache_dir`, which both the loader
(:mod:`softreg.data.datasets`) and the downloader (:mod:`softreg.data.download`) need.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from softreg.errors import SoftregError

__all__ = [
    "DATASETS",
    "ENV_VAR",
    "FASHION_MNIST_LABELS",
    "MNIST_LABELS",
    "ROLES",
    "DataError",
    "DatasetSpec",
    "dataset_spec",
    "default_cache_dir",
    "expand_user",
]

# Environment variable naming a directory with the data (see datasets.find_dataset_dir).
ENV_VAR = "SOFTREG_DATA"

# The four files of a dataset, by role; the keys of DatasetSpec.files and .md5.
ROLES = ("train_images", "train_labels", "test_images", "test_labels")

# Spelled as in the d2l book's get_fashion_mnist_labels.
FASHION_MNIST_LABELS = (
    "t-shirt",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
)
MNIST_LABELS = tuple(str(digit) for digit in range(10))


class DataError(SoftregError, RuntimeError):
    """A dataset could not be found, downloaded or verified, or its arrays are inconsistent.

    The message says which file or directory, what is wrong, and what to do where there is
    something to do (pass ``data_dir=``, set ``SOFTREG_DATA``, allow the download).
    """


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset as published: where to get it and how to check it.

    Parameters
    ----------
    name : str
        The name softreg knows it by, e.g. ``"fashion-mnist"``.
    class_names : tuple of str
        The text label of each class index.
    files : mapping of str to str
        Each role in :data:`ROLES` (``"train_images"`` ...) to the official compressed file
        name, e.g. ``"train-images-idx3-ubyte.gz"``.
    md5 : mapping of str to str
        Each role to the hex MD5 of that compressed file.
    mirrors : tuple of str
        Base URLs, tried in order, each serving all four files.
    debian_package : str, optional
        The Debian/Ubuntu package that installs the files under
        ``/usr/share/datasets/<name>``, if there is one.
    """

    name: str
    class_names: tuple[str, ...]
    files: Mapping[str, str]
    md5: Mapping[str, str]
    mirrors: tuple[str, ...]
    debian_package: str | None = None


_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}

# Checksums are the ones torchvision checks for the official downloads.
DATASETS: dict[str, DatasetSpec] = {
    "fashion-mnist": DatasetSpec(
        name="fashion-mnist",
        class_names=FASHION_MNIST_LABELS,
        files=_MNIST_FILES,
        md5={
            "train_images": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train_labels": "25c81989df183df01b3e8a0aad5dffbe",
            "test_images": "bef4ecab320f06d8554ea6380940ec79",
            "test_labels": "bb300cfdad3c16e7a12a480ee83cd310",
        },
        mirrors=(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ),
        debian_package="dataset-fashion-mnist",
    ),
    "mnist": DatasetSpec(
        name="mnist",
        class_names=MNIST_LABELS,
        files=_MNIST_FILES,
        md5={
            "train_images": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train_labels": "d53e105ee54ea40749a09fcbcd1e9432",
            "test_images": "9fb629c4189551a2d022fa330f9573f3",
            "test_labels": "ec29112dd5afa0611ce80d1b7f02629c",
        },
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
    ),
}


def dataset_spec(name: str) -> DatasetSpec:
    """Return the spec of a known dataset.

    Parameters
    ----------
    name : str
        A key of :data:`DATASETS`.

    Returns
    -------
    DatasetSpec
        ``DATASETS[name]``.

    Raises
    ------
    DataError
        ``name`` is not a known dataset; the message lists the known ones.
    """
    try:
        return DATASETS[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(DATASETS))
        raise DataError(f"unknown dataset {name!r}; known datasets: {known}") from None


def expand_user(path: str | os.PathLike[str], what: str) -> Path:
    """Return ``path`` with a leading ``~`` or ``~user`` expanded.

    Parameters
    ----------
    path : str or os.PathLike
        A path, e.g. ``"~/data"``.
    what : str
        What the path is, for the error message, e.g. ``"data_dir ~/data"``.

    Returns
    -------
    pathlib.Path
        The expanded path (unchanged without a leading ``~``).

    Raises
    ------
    DataError
        There is no such user, or no home directory to expand to.
    """
    try:
        return Path(path).expanduser()
    except RuntimeError:  # pathlib's "Could not determine home directory"
        user = os.fspath(path).split(os.sep, 1)[0]
        raise DataError(
            f"{what}: cannot expand {user} (no such user, or no home directory)"
        ) from None


def default_cache_dir() -> Path:
    """Return the directory softreg downloads datasets into (one folder per dataset).

    ``$XDG_CACHE_HOME/softreg``, or ``~/.cache/softreg`` when ``XDG_CACHE_HOME`` is unset or
    relative (a relative one is ignored, as the XDG Base Directory spec asks). It is third
    in the search order of :func:`~softreg.data.find_dataset_dir`.

    Returns
    -------
    pathlib.Path
        The directory; it may not exist yet.
    """
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "softreg"
