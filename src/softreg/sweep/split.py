"""The training set of a sweep, cut into the part points fit and the part that scores them.

The rows are split with :func:`softreg.data.split.validation_split`; the test set is never
read, so choosing a value by the validation numbers does not leak the test set into the
choice. A sweep's data comes either as arrays already in memory (:class:`SplitData`) or as a
dataset each worker loads and splits itself (:class:`DatasetSplit`, cheaper than sending each
a copy).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from softreg.data import load_dataset
from softreg.data.split import validation_split
from softreg.errors import ConfigError

__all__ = ["DatasetSplit", "SplitData", "load_split", "split_arrays"]


@dataclass(frozen=True)
class SplitData:
    """The training set cut into the part models fit and the part that scores them.

    Parameters
    ----------
    X_fit : numpy.ndarray
        The rows the points train on, ``(n_fit, n_features)``.
    y_fit : numpy.ndarray
        Their class indices, ``(n_fit,)``.
    X_val : numpy.ndarray
        The held-out rows that score the points, ``(n_val, n_features)``.
    y_val : numpy.ndarray
        Their class indices, ``(n_val,)``.
    num_classes : int
        The number of classes; labels lie in ``[0, num_classes)``.
    """

    X_fit: np.ndarray
    y_fit: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    num_classes: int

    @property
    def n_fit(self) -> int:
        """The number of rows the points train on."""
        return int(self.X_fit.shape[0])


@dataclass(frozen=True)
class DatasetSplit:
    """A named dataset's training set, to be loaded and split where it is used.

    Parameters
    ----------
    name : str
        The dataset (:func:`softreg.data.load_dataset`'s name).
    directory : str, Path or None
        Where its files are; None: the places :func:`~softreg.data.load_dataset` searches.
    fraction : float
        The fraction of the training rows held out, in (0, 1).
    seed : int
        Seeds the choice of the held-out rows.
    """

    name: str
    directory: str | Path | None
    fraction: float
    seed: int

    def load(self) -> SplitData:
        """Load the dataset's training set only and split it; the test arrays are never read.

        Returns
        -------
        SplitData
            The fit and validation parts.

        Raises
        ------
        softreg.errors.SoftregError
            The dataset cannot be found or read (nothing is downloaded here).
        ConfigError
            The split leaves a part empty.
        """
        data = load_dataset(self.name, data_dir=self.directory, download=False, progress=False)
        return split_arrays(data.X_train, data.y_train, self.fraction, self.seed, data.num_classes)


def load_split(source: SplitData | DatasetSplit) -> SplitData:
    """Return the split data ``source`` stands for.

    Parameters
    ----------
    source : SplitData or DatasetSplit
        Arrays already split, or a dataset to load and split.

    Returns
    -------
    SplitData
        ``source`` itself, or the dataset loaded and split.
    """
    return source if isinstance(source, SplitData) else source.load()


def split_arrays(
    X: Any, y: Any, fraction: float, seed: int, num_classes: int | None = None
) -> SplitData:
    """Hold out a seeded random ``fraction`` of the rows ``(X, y)`` to score the points on.

    Parameters
    ----------
    X : array_like
        The training rows, ``(n_samples, n_features)``.
    y : array_like
        Their class indices, 1-D integers ``(n_samples,)``.
    fraction : float
        The fraction held out, in (0, 1); ``round(fraction * n_samples)`` rows.
    seed : int
        Seeds the choice of the held-out rows.
    num_classes : int or None, default None
        The number of classes; None: the largest label + 1.

    Returns
    -------
    SplitData
        The fit and validation parts, each in the rows' original order.

    Raises
    ------
    ConfigError
        The labels are not 1-D integers in ``[0, num_classes)``, or the split leaves a part
        empty.
    """
    y = np.asarray(y)
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise ConfigError(f"labels must be 1-D integers, got {y.dtype} array of shape {y.shape}")
    if num_classes is None:
        num_classes = int(y.max()) + 1 if y.size else 0
    if y.size and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise ConfigError(
            f"labels must lie in [0, {num_classes}), got {int(y.min())}..{int(y.max())}"
        )
    X_fit, y_fit, X_val, y_val = validation_split(X, y, fraction=fraction, seed=seed)
    return SplitData(X_fit, y_fit, X_val, y_val, num_classes)
