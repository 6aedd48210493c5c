"""Where the predictions land.

How often the label is among the top ``k`` scores, and which classes are mistaken for which
(the confusion matrix).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from softreg import ops
from softreg.backend import device, get_namespace
from softreg.checks import check_int
from softreg.metrics._inputs import check_scores

# The k of the top-k accuracies evaluation_report gives (those up to the number of classes).
DEFAULT_TOP_K = (1, 2, 3, 5)
# Rows per product in confusion_matrix: fewer than 2**24, so every float32 partial sum is exact.
_CONFUSION_CHUNK = 1 << 23


def top_k_accuracy(scores: Any, y: Any, k: int, /, *, xp: ModuleType | None = None) -> float:
    """Return the fraction of rows whose label is among the ``k`` largest scores.

    Ties: a row is a hit when fewer than ``k`` classes score *strictly* higher than its
    label, i.e. when the label's score is >= the ``k``-th largest score. A tie at the
    boundary therefore counts in the label's favour (``k = 1`` with two equal top scores is
    a hit for either), so the result never depends on how a sort orders equal values.
    Works on logits or probabilities alike; ``k = n_classes`` gives 1.

    Parameters
    ----------
    scores : array, shape (n_samples, n_classes)
        Logits or probabilities.
    y : array of int, shape (n_samples,)
        True class indices in ``[0, n_classes)``.
    k : int
        How many of the highest scores count as a hit, ``1 <= k <= n_classes``.
    xp : module, optional
        The array namespace of ``scores`` and ``y`` (found from them when None).

    Returns
    -------
    float
        The top-``k`` accuracy, in [0, 1].

    Raises
    ------
    ValueError
        Shapes that do not match, no rows, a label out of range, or ``k`` not an integer in
        ``[1, n_classes]``.
    """
    xp = get_namespace(scores, y, xp=xp)
    num_classes = check_scores(scores, y, xp, "scores")
    k = check_int("k", k, minimum=1)
    if k > num_classes:
        raise ValueError(f"k={k} exceeds the number of classes ({num_classes})")
    label_score = ops.pick(scores, y, xp=xp)
    higher = xp.sum(xp.astype(scores > label_score[:, None], xp.int32), axis=1)
    return int(xp.sum(xp.astype(higher < k, xp.int32))) / y.shape[0]


def confusion_matrix(
    y_true: Any, y_pred: Any, num_classes: int, /, *, xp: ModuleType | None = None
) -> Any:
    """Return the counts of each (true class, predicted class) pair.

    The diagonal holds the hits; an off-diagonal cell says which mistake the model makes,
    which a single accuracy hides. Computed as ``one_hot(y_true).T @ one_hot(y_pred)`` in
    float32 over chunks of fewer than 2**24 rows, where every partial sum is exact.

    Parameters
    ----------
    y_true : array of int, shape (n_samples,)
        True class indices in ``[0, num_classes)``.
    y_pred : array of int, shape (n_samples,)
        Predicted class indices in ``[0, num_classes)``.
    num_classes : int
        The number of classes, >= 1.
    xp : module, optional
        The array namespace of the labels (found from them when None).

    Returns
    -------
    array of int32, shape (num_classes, num_classes)
        Entry ``[i, j]`` is the number of examples of true class ``i`` predicted as ``j``
        (rows true, columns predicted, as scikit-learn).

    Raises
    ------
    ValueError
        Labels that are not 1-D, of different lengths, or out of range, or ``num_classes``
        not an integer >= 1.
    """
    xp = get_namespace(y_true, y_pred, xp=xp)
    num_classes = check_int("num_classes", num_classes, minimum=1)
    for name, labels in (("y_true", y_true), ("y_pred", y_pred)):
        if labels.ndim != 1:
            raise ValueError(f"{name} must be 1-D (n_samples,), got shape {tuple(labels.shape)}")
    if y_true.shape[0] != y_pred.shape[0]:
        raise ValueError(f"y_true has {y_true.shape[0]} labels but y_pred has {y_pred.shape[0]}")
    ops.check_labels(y_true, num_classes, xp=xp)
    ops.check_labels(y_pred, num_classes, xp=xp)
    n = y_true.shape[0]
    total = xp.zeros((num_classes, num_classes), dtype=xp.int32, device=device(y_true))
    for begin in range(0, n, _CONFUSION_CHUNK):
        end = min(begin + _CONFUSION_CHUNK, n)
        true_hot = ops.one_hot(y_true[begin:end], num_classes, dtype=xp.float32, xp=xp)
        pred_hot = ops.one_hot(y_pred[begin:end], num_classes, dtype=xp.float32, xp=xp)
        total = total + xp.astype(xp.round(true_hot.T @ pred_hot), xp.int32)
    return total
