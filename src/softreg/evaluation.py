"""Evaluation: the mean loss and accuracy of a model on a dataset, in chunks of rows."""

from __future__ import annotations

import functools
from typing import Any

from softreg import backend
from softreg.history import Evaluation
from softreg.protocols import Model, Params
from softreg.step import evaluation_sums
from softreg.validation import check_data


def evaluate(model: Model, params: Params, X: Any, y: Any, *, batch_size: int = 8192) -> Evaluation:
    """Return the mean cross-entropy and accuracy of ``model`` on ``(X, y)``.

    The book's ``evaluate_accuracy`` with its accumulator of correct and total, in chunks of
    ``batch_size`` rows (which bound memory, not results).

    Parameters
    ----------
    model : Model
        The model, with its input standardisation.
    params : Params
        Its parameters.
    X : array, shape (n_samples, n_features) or (n_samples, 28, 28)
        Inputs.
    y : array, shape (n_samples,)
        Integer labels in ``[0, n_classes)``.
    batch_size : int
        Rows per chunk.

    Returns
    -------
    Evaluation
        ``loss``, ``accuracy`` and ``n``.

    Raises
    ------
    DataValueError
        The data do not fit the model (see :func:`softreg.validation.check_data`).
    """
    check_data(backend.to_numpy(X), backend.to_numpy(y), "evaluation data", model)
    return evaluate_in_chunks(functools.partial(evaluation_sums, model), params, X, y, batch_size)


def evaluate_in_chunks(sums: Any, params: Params, X: Any, y: Any, batch_size: int) -> Evaluation:
    """Return the mean loss and accuracy on ``(X, y)``, summed ``batch_size`` rows at a time.

    Parameters
    ----------
    sums : callable
        ``sums(params, X_chunk, y_chunk) -> (loss_sum, correct)``, e.g.
        :func:`softreg.step.evaluation_sums` bound to a model (and compiled).
    params : Params
        The model's parameters.
    X : array, shape (n_samples, n_features)
        Inputs, as the model takes them.
    y : array, shape (n_samples,)
        Checked labels.
    batch_size : int
        Rows per chunk: bounds memory, not results.

    Returns
    -------
    Evaluation
        ``loss``, ``accuracy`` and ``n``.
    """
    return evaluate_chunks(sums, params, chunks_of(X, y, batch_size))


def chunks_of(X: Any, y: Any, batch_size: int) -> tuple[tuple[Any, Any], ...]:
    """Return ``(X, y)`` cut into chunks of at most ``batch_size`` rows (no copy of a whole).

    Parameters
    ----------
    X : array, shape (n_samples, n_features)
        Inputs.
    y : array, shape (n_samples,)
        Labels.
    batch_size : int
        Rows per chunk.

    Returns
    -------
    tuple of (X_chunk, y_chunk)
        In order; ``((X, y),)`` itself when it fits in one chunk.
    """
    n = X.shape[0]
    if n <= batch_size:
        return ((X, y),)
    # the standard leaves out-of-range stops undefined: the last stop is n
    stops = [(begin, min(begin + batch_size, n)) for begin in range(0, n, batch_size)]
    return tuple((X[begin:end, ...], y[begin:end]) for begin, end in stops)


def evaluate_chunks(sums: Any, params: Params, chunks: tuple[tuple[Any, Any], ...]) -> Evaluation:
    """Return the mean loss and accuracy over the chunks :func:`chunks_of` made.

    The sums cross to the host once per chunk and are added there in their own dtypes (the
    same float32 additions as on the device).

    Parameters
    ----------
    sums : callable
        ``sums(params, X_chunk, y_chunk) -> (loss_sum, correct)``.
    params : Params
        The model's parameters.
    chunks : tuple of (X_chunk, y_chunk)
        The data, in chunks.

    Returns
    -------
    Evaluation
        ``loss``, ``accuracy`` and ``n``.
    """
    n = sum(X.shape[0] for X, _ in chunks)
    loss_sum = correct = None
    for X, y in chunks:
        chunk_loss, chunk_correct = (backend.to_numpy(v) for v in sums(params, X, y))
        loss_sum = chunk_loss if loss_sum is None else loss_sum + chunk_loss
        correct = chunk_correct if correct is None else correct + chunk_correct
    return Evaluation(loss=float(loss_sum) / n, accuracy=float(correct) / n, n=n)
