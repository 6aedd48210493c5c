"""Finding and loading MNIST-style datasets: where their files are looked for.

Search order for a dataset's four files (the first complete directory wins):

1. an explicit ``data_dir`` argument,
2. the ``SOFTREG_DATA`` environment variable,
3. ``default_cache_dir() / name`` (where :func:`~softreg.data.download_dataset` puts them:
   ``$XDG_CACHE_HOME/softreg/<name>``, else ``~/.cache/softreg/<name>``),
4. ``SYSTEM_DATA_DIR / name``, i.e. ``/usr/share/datasets/<name>`` (Debian's
   ``dataset-fashion-mnist`` package installs there).

An explicit ``data_dir`` or ``SOFTREG_DATA`` may name the dataset's own directory or its
parent; if it holds no complete dataset that is an error rather than a silent fall-through.
Each file may be ``.gz``-compressed (the official name) or not.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from softreg.data.catalog import (
    ENV_VAR,
    ROLES,
    DataError,
    DatasetSpec,
    dataset_spec,
    default_cache_dir,
    expand_user,
)
from softreg.data.download import download_dataset
from softreg.data.idx import IDXError, read_idx
from softreg.data.labelled import Dataset, TabularDataset, check_split, describe_array
from softreg.data.synthetic import synthetic_dataset

__all__ = [
    "SYSTEM_DATA_DIR",
    "find_dataset_dir",
    "load_dataset",
    "read_dataset_dir",
    "text_labels",
]

# The last place searched; read at call time, so it can be repointed.
SYSTEM_DATA_DIR = Path("/usr/share/datasets")
IMAGE_SHAPE = (28, 28)  # (height, width) of every image a dataset directory may hold


def text_labels(
    indices: Iterable[int] | np.ndarray,
    dataset: str | Dataset | TabularDataset = "fashion-mnist",
) -> list[str]:
    """Return the class names of integer class indices.

    Parameters
    ----------
    indices : iterable of int or numpy.ndarray
        Class indices, 1-D ``(n_samples,)``.
    dataset : str or Dataset or TabularDataset, default "fashion-mnist"
        A dataset name (see :data:`~softreg.data.DATASETS`) or a loaded dataset, whose
        ``class_names`` are used.

    Returns
    -------
    list of str
        One name per index, e.g. ``text_labels([0, 9])`` is ``["t-shirt", "ankle boot"]``.

    Raises
    ------
    ValueError
        An index is outside ``[0, number of classes)`` or not an integer.
    DataError
        ``dataset`` is a name softreg does not know.
    """
    names = (
        dataset.class_names
        if isinstance(dataset, (Dataset, TabularDataset))
        else dataset_spec(dataset).class_names
    )
    array = np.asarray(indices if isinstance(indices, np.ndarray) else list(indices))
    if array.size == 0:
        return []
    if array.ndim != 1 or array.dtype.kind not in "iu":
        raise ValueError(
            f"text_labels: expected a 1-D sequence of integers, got {describe_array(array)}"
        )
    low, high = int(array.min()), int(array.max())
    if low < 0 or high >= len(names):
        bad = low if low < 0 else high
        raise ValueError(f"text_labels: class index {bad} outside [0, {len(names)})")
    return [names[i] for i in array.tolist()]


def find_dataset_dir(name: str, data_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """Return the first directory in the search order holding all four files of a dataset.

    The search order is ``data_dir``, then ``$SOFTREG_DATA``, then ``default_cache_dir() /
    name``, then ``SYSTEM_DATA_DIR / name`` (see :mod:`softreg.data.datasets`). Each file
    may be ``.gz``-compressed or not.

    Parameters
    ----------
    name : str
        A known dataset, e.g. ``"fashion-mnist"`` (see :data:`~softreg.data.DATASETS`).
    data_dir : str or os.PathLike, optional
        A directory holding the files, or its parent (``~`` is expanded). When given, it
        is the only place searched.

    Returns
    -------
    pathlib.Path or None
        The directory, or None if no default place holds a complete copy.

    Raises
    ------
    DataError
        ``name`` is unknown, or ``data_dir`` / ``$SOFTREG_DATA`` is given but holds no
        complete dataset (the message lists the files missing).
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
    """Return the cache and the system directory of ``spec``, in search order."""
    # SYSTEM_DATA_DIR is read at call time so tests (and users) can repoint it.
    return [default_cache_dir() / spec.name, SYSTEM_DATA_DIR / spec.name]


def _explicit_dir(spec: DatasetSpec, root: Path, what: str) -> Path:
    """Return ``root / name`` or ``root`` if complete, else raise DataError naming ``what``."""
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
    """Map each role to its file in ``directory``, preferring the ``.gz`` name.

    Roles without a file are left out.
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
    """Return the official names of the files ``directory`` lacks."""
    found = _dataset_files(spec, directory)
    return [spec.files[role] for role in ROLES if role not in found]


def load_dataset(
    name: str = "fashion-mnist",
    *,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    progress: bool = True,
) -> Dataset | TabularDataset:
    """Find (or else download into the cache) and load a dataset.

    Parameters
    ----------
    name : str, default "fashion-mnist"
        ``"fashion-mnist"``, ``"mnist"``, or ``"synthetic"`` (generated, never read).
    data_dir : str or os.PathLike, optional
        A directory holding the files, or its parent: the only place searched. Otherwise
        the search order of :func:`find_dataset_dir` applies.
    download : bool, default True
        Download the files into ``default_cache_dir() / name`` when no complete copy is
        found.
    progress : bool, default True
        Show download progress on stderr.

    Returns
    -------
    Dataset or TabularDataset
        A :class:`Dataset` of uint8 images ``(n_samples, 28, 28)`` and int64 labels
        ``(n_samples,)``, 60000 training and 10000 test examples for the official files;
        for ``"synthetic"`` the fixed generated 2-feature, 3-class data as a
        :class:`TabularDataset` (see :func:`~softreg.data.synthetic_dataset`).

    Raises
    ------
    DataError
        ``name`` is unknown, the dataset is not found and ``download`` is False (the
        message lists every place searched), a download fails, or a file is corrupt or
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
    """Return the error message for a dataset found nowhere, with what to do."""
    searched = ", ".join(str(d) for d in _default_dirs(spec))
    hint = f"pass data_dir=, set {ENV_VAR} to a directory holding the files, or allow download"
    if spec.debian_package:
        hint += f", or on Debian/Ubuntu `apt-get install {spec.debian_package}`"
    return (
        f"{spec.name} not found: no data_dir given, {ENV_VAR} not set, and no complete "
        f"copy in {searched}; download=False, so nothing was downloaded; {hint}"
    )


def read_dataset_dir(spec: DatasetSpec, directory: Path) -> Dataset:
    """Read and validate the four IDX files of a dataset in one directory.

    Parameters
    ----------
    spec : DatasetSpec
        The dataset, its file names and class names.
    directory : pathlib.Path
        The directory holding the four files, each ``.gz``-compressed or not.

    Returns
    -------
    Dataset
        uint8 images ``(n_samples, 28, 28)`` and int64 labels ``(n_samples,)`` for each
        split, with ``source`` set to ``directory``.

    Raises
    ------
    DataError
        A file is missing, corrupt (the :class:`~softreg.data.IDXError` is chained), or
        the arrays are not ``(n, 28, 28)`` uint8 images with ``n >= 1`` and as many
        in-range labels.
    """
    files = _dataset_files(spec, directory)
    missing = [spec.files[role] for role in ROLES if role not in files]
    if missing:
        raise DataError(f"{directory}: missing {', '.join(missing)}")
    arrays = _read_files(files)
    labels = {split: _checked_labels(spec, split, files, arrays) for split in ("train", "test")}
    return Dataset(
        name=spec.name,
        class_names=spec.class_names,
        train_images=arrays["train_images"],
        train_labels=labels["train"],
        test_images=arrays["test_images"],
        test_labels=labels["test"],
        source=directory,
    )


def _read_files(files: dict[str, Path]) -> dict[str, np.ndarray]:
    """Read each role's IDX file; an IDXError becomes a DataError (chained)."""
    arrays = {}
    for role, path in files.items():
        try:
            arrays[role] = read_idx(path)
        except IDXError as exc:
            raise DataError(str(exc)) from exc
    return arrays


def _checked_labels(
    spec: DatasetSpec, split: str, files: dict[str, Path], arrays: dict[str, np.ndarray]
) -> np.ndarray:
    """Check one split read from ``files``: non-empty 28x28 images, in-range labels."""
    image_file, label_file = str(files[f"{split}_images"]), str(files[f"{split}_labels"])
    images = arrays[f"{split}_images"]
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE:
        raise DataError(
            f"{image_file}: expected uint8 images of shape (n, 28, 28), "
            f"got {describe_array(images)}"
        )
    labels = check_split(
        split, images, arrays[f"{split}_labels"], len(spec.class_names), image_file, label_file
    )
    if len(images) == 0:
        raise DataError(f"{image_file}: no images (its header says 0); the {split} set is empty")
    return labels
