"""Datasets for softreg: MNIST-style image data, generated data, and minibatch order.

The package reads IDX files (:mod:`~softreg.data.idx`), finds, downloads and loads the
image datasets (:mod:`~softreg.data.datasets`, :mod:`~softreg.data.download`), generates
data (:mod:`~softreg.data.synthetic`, :mod:`~softreg.data.tokens`) and decides the order
of the minibatches (:mod:`~softreg.data.batching`).

Every loaded dataset is a :class:`LabelledData`: an image :class:`Dataset` (MNIST,
Fashion-MNIST) or a :class:`TabularDataset` (the generated ``"synthetic"`` data). Where the
files are looked for is documented in :mod:`softreg.data.datasets`.

Typical use::

    from softreg.data import load_dataset
    data = load_dataset("fashion-mnist")   # uint8 images, int64 labels
    data.X_train.shape                     # (60000, 784) float32 in [0, 1]
"""

from softreg.data.batching import epoch_permutation, minibatch_indices
from softreg.data.catalog import (
    DATASETS,
    FASHION_MNIST_LABELS,
    MNIST_LABELS,
    DataError,
    DatasetSpec,
    default_cache_dir,
)
from softreg.data.datasets import find_dataset_dir, load_dataset, text_labels
from softreg.data.download import download_dataset
from softreg.data.idx import IDXError, read_idx
from softreg.data.labelled import Dataset, LabelledData, TabularDataset
from softreg.data.synthetic import make_classification, synthetic_dataset

# Every name load_dataset knows: the downloadable image datasets and the generated one.
DATASET_NAMES = (*DATASETS, "synthetic")

__all__ = [
    "DATASETS",
    "DATASET_NAMES",
    "FASHION_MNIST_LABELS",
    "MNIST_LABELS",
    "DataError",
    "Dataset",
    "DatasetSpec",
    "IDXError",
    "LabelledData",
    "TabularDataset",
    "default_cache_dir",
    "download_dataset",
    "epoch_permutation",
    "find_dataset_dir",
    "load_dataset",
    "make_classification",
    "minibatch_indices",
    "read_idx",
    "synthetic_dataset",
    "text_labels",
]
