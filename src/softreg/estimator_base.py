"""What softreg's scikit-learn estimators share: ``fit``, ``partial_fit`` and predictions.

:class:`SoftregClassifier` trains with :func:`softreg.fit`, so a fitted estimator holds
exactly the weights that ``fit`` returns for the same :class:`~softreg.TrainConfig`
(``random_state=s`` is ``seed=s``); it predicts on the host in float64. The estimators
themselves (:mod:`softreg.estimators`) only name their model and hyperparameters.

This module needs scikit-learn (the ``softreg[sklearn]`` extra); ``import softreg`` does not
import it.
"""

from __future__ import annotations

import numbers
from dataclasses import replace
from typing import Any

import numpy as np

from softreg import backend, ops
from softreg.build import make_model
from softreg.config import TrainConfig
from softreg.errors import MissingDependencyError
from softreg.history import History, TrainState
from softreg.train import fit as train

try:
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.utils import check_random_state
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import _check_sample_weight, check_is_fitted
except ImportError:
    raise MissingDependencyError(
        "scikit-learn", "softreg's scikit-learn estimators", extra="sklearn"
    ) from None

try:  # scikit-learn >= 1.6: a function
    from sklearn.utils.validation import validate_data
except ImportError:  # before: the same thing as a method

    def validate_data(estimator: Any, /, *args: Any, **kwargs: Any) -> Any:
        """Return ``estimator._validate_data(*args, **kwargs)``."""
        return estimator._validate_data(*args, **kwargs)


__all__ = ["PREDICT_CHUNK_ROWS", "SoftregClassifier"]

PREDICT_CHUNK_ROWS = 8192  # rows per forward pass at prediction: bounds memory, not results


class SoftregClassifier(ClassifierMixin, BaseEstimator):
    """Base class of softreg's estimators: a softmax classifier trained by :func:`softreg.fit`.

    A subclass names its model in ``_MODEL`` (a ``TrainConfig.model``) and lists its
    hyperparameters as the keyword arguments of its ``__init__``, which stores them and does
    nothing else (:meth:`_keep`). That signature is the one list of them: every one but
    ``random_state`` is the :class:`~softreg.TrainConfig` field of the same name, and
    ``random_state`` picks ``TrainConfig.seed``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The labels, sorted.
    n_features_in_ : int
        The number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (n_features,)
        The column names, when ``X`` was a DataFrame.
    model_ : SoftmaxRegression or MLP
        The softreg model, with its input standardisation.
    params_ : dict of str to ndarray
        Its parameters, host NumPy float32 arrays.
    config_ : TrainConfig
        The configuration trained with.
    state_ : TrainState
        The training state, on the host, that ``partial_fit`` continues from.
    history_ : History
        All epochs trained.
    n_iter_ : int
        The number of epochs done.
    """

    _MODEL: str  # TrainConfig.model

    def _keep(self, arguments: dict[str, Any]) -> None:
        """Store each ``__init__`` argument, unchanged, as the attribute of its name."""
        for name in self._get_param_names():
            setattr(self, name, arguments[name])

    def _fitted_param(self, name: str) -> np.ndarray:
        """Return ``params_[name]``; NotFittedError before ``fit``."""
        check_is_fitted(self)
        return self.params_[name]

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> SoftregClassifier:
        """Train from scratch for ``epochs`` epochs.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The inputs (validated as float32).
        y : array-like of shape (n_samples,)
            The labels, of any type; at least 2 classes.
        sample_weight : array-like of shape (n_samples,), optional
            Weights of each example's loss (only their ratios matter).

        Returns
        -------
        self
            The fitted estimator.

        Raises
        ------
        ValueError
            ``y`` holds only one class, or bad inputs or weights.
        """
        X, y = _validate(self, X, y, reset=True)
        check_classification_targets(y)
        classes, y_index = np.unique(y, return_inverse=True)
        if classes.shape[0] < 2:
            raise ValueError(
                f"y contains only one class ({classes.tolist()[0]!r}); a "
                f"classifier needs examples of at least 2 classes"
            )
        sample_weight = _weights(sample_weight, X)
        config = self._train_config(seed=_seed(self.random_state))
        model = make_model(config, X, classes.shape[0], sample_weight=sample_weight)
        self._train(model, config, X, y_index, sample_weight, state=None, history=None)
        self.classes_ = classes
        return self

    def partial_fit(
        self, X: Any, y: Any, classes: Any = None, sample_weight: Any = None
    ) -> SoftregClassifier:
        """Train one more epoch, continuing from the last ``fit`` or ``partial_fit``.

        Calling it ``k`` times on the same data gives exactly what ``fit`` does with
        ``epochs=k`` (epoch ``e`` shuffles with ``(seed, e)``, whatever ``X`` is). The first
        call fixes the seed and, for ``normalize="yes"`` or ``"per-feature"``, the input
        standardisation; sample weights are rescaled to average 1 within each call.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The inputs.
        y : array-like of shape (n_samples,)
            The labels, each one of ``classes``.
        classes : array-like of shape (n_classes,), optional
            Every label there will be; needed on the first call (e.g. ``np.unique(y)``).
        sample_weight : array-like of shape (n_samples,), optional
            Weights of each example's loss.

        Returns
        -------
        self
            The fitted estimator.

        Raises
        ------
        ValueError
            ``lr_schedule`` is not ``"constant"``, ``classes`` is missing on the first call
            or changed since, or ``y`` holds a label not in ``classes``.
        """
        first_call = not hasattr(self, "state_")
        # lr and the like may have changed since the last call (set_params); the seed may not.
        config = (
            self._train_config(seed=_seed(self.random_state), epochs=1)
            if first_call
            else self._train_config(seed=self.config_.seed, epochs=self.n_iter_ + 1)
        )
        if config.lr_schedule != "constant":
            raise ValueError(
                f"partial_fit trains for as long as it is called, but "
                f"lr_schedule={config.lr_schedule!r} needs the run's length: use "
                f"fit, or lr_schedule='constant'"
            )
        X, y = _validate(self, X, y, reset=first_call)
        check_classification_targets(y)
        classes = self._partial_fit_classes(classes, first_call)
        y_index = _label_indices(y, classes)
        sample_weight = _weights(sample_weight, X)
        if first_call:
            model = make_model(config, X, classes.shape[0], sample_weight=sample_weight)
            state = history = None
        else:
            model, state, history = self.model_, self._state_on(config), self.history_
        self._train(model, config, X, y_index, sample_weight, state=state, history=history)
        self.classes_ = classes
        return self

    def _partial_fit_classes(self, classes: Any, first_call: bool) -> np.ndarray:
        """Return the sorted classes: from ``classes`` on the first call, then the same again."""
        if not first_call:
            if classes is not None and not np.array_equal(np.unique(classes), self.classes_):
                raise ValueError(
                    f"classes {np.unique(classes).tolist()} differ from those of "
                    f"the first call to partial_fit, {self.classes_.tolist()}"
                )
            return self.classes_
        if classes is None:
            raise ValueError(
                "classes must be passed on the first call to partial_fit: every "
                "label the classifier will see, e.g. np.unique(y)"
            )
        classes = np.unique(classes)
        if classes.shape[0] < 2:
            raise ValueError(
                f"classes holds only one class ({classes.tolist()[0]!r}); a "
                f"classifier needs at least 2"
            )
        return classes

    def decision_function(self, X: Any) -> np.ndarray:
        """Return the logits, or with 2 classes the margin, as scikit-learn expects.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The inputs.

        Returns
        -------
        ndarray of shape (n_samples, n_classes) or (n_samples,)
            The logits; with 2 classes ``logit_1 - logit_0``, positive where the second
            class is predicted.
        """
        logits = self._logits(X)
        return logits[:, 1] - logits[:, 0] if logits.shape[1] == 2 else logits

    def predict_proba(self, X: Any) -> np.ndarray:
        """Return the class probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The inputs.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Columns in the order of ``classes_``.
        """
        return ops.softmax(self._logits(X), axis=1)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Return the log-probabilities, the log-softmax of the logits.

        Not ``log(predict_proba)``, which underflows to ``-inf``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The inputs.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Columns in the order of ``classes_``.
        """
        return ops.log_softmax(self._logits(X), axis=1)

    def predict(self, X: Any) -> np.ndarray:
        """Return the most probable class of each row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The inputs.

        Returns
        -------
        ndarray of shape (n_samples,)
            Labels of ``classes_``.
        """
        logits = self._logits(X)  # first: it raises NotFittedError before fit
        return self.classes_[np.argmax(logits, axis=1)]

    def _train_config(self, *, seed: int, epochs: int | None = None) -> TrainConfig:
        """Return the TrainConfig of the hyperparameters, with ``seed`` (and ``epochs``)."""
        fields = {name: getattr(self, name) for name in self._get_param_names()}
        del fields["random_state"]  # picks the seed
        if epochs is not None:
            fields["epochs"] = epochs
        return TrainConfig(model=self._MODEL, seed=seed, log_every=0, **fields)

    def _train(
        self,
        model: Any,
        config: TrainConfig,
        X: np.ndarray,
        y: np.ndarray,
        sample_weight: np.ndarray | None,
        *,
        state: TrainState | None,
        history: History | None,
    ) -> None:
        """Run :func:`softreg.fit` and keep what it returns, on the host."""
        result = train(
            model, (X, y), config=config, state=state, history=history, sample_weight=sample_weight
        )
        # On the host: picklable, and independent of the device it was trained on.
        state = replace(
            result.state,
            params=_to_host(result.state.params),
            opt_state=_to_host(result.state.opt_state),
        )
        self.model_, self.config_, self.state_ = model, config, state
        self.params_, self.history_, self.n_iter_ = state.params, result.history, state.epoch

    def _state_on(self, config: TrainConfig) -> TrainState:
        """Return ``state_`` moved to ``config``'s backend and device, for ``fit`` to continue."""
        be = backend.resolve(config.backend, config.device)
        return replace(
            self.state_,
            params=backend.tree_map(be.asarray, self.state_.params),
            opt_state=backend.tree_map(be.asarray, self.state_.opt_state),
        )

    def _logits(self, X: Any) -> np.ndarray:
        """Return the logits ``(n_samples, n_classes)`` in float64, computed on the host.

        The inputs are validated as float32, as in ``fit``, then the parameters and inputs
        are upcast. In float32, BLAS sums in an order that depends on the number of rows, so
        a row's logits change in the last bits with the batch it comes in (softmax
        regression on digits: 2.3e-5 between one row at a time and all rows at once, on
        logits up to 119); in float64 the difference measured 0 there and 7e-17 for the MLP,
        far below what scikit-learn's subset- and order-invariance checks resolve.
        """
        check_is_fitted(self)
        X = _validate(self, X, reset=False)
        params = {name: p.astype(np.float64) for name, p in self.params_.items()}
        chunks = [
            self.model_.forward(params, X[i : i + PREDICT_CHUNK_ROWS].astype(np.float64))
            for i in range(0, X.shape[0], PREDICT_CHUNK_ROWS)
        ]
        return np.concatenate(chunks) if len(chunks) != 1 else chunks[0]


def _validate(estimator: Any, *arrays: Any, reset: bool) -> Any:
    """Return scikit-learn's ``validate_data`` of ``arrays`` as C-ordered float32.

    Values beyond float32's range become inf there, which it refuses with a ValueError;
    NumPy's warning about the cast before that would only be noise.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        return validate_data(estimator, *arrays, reset=reset, dtype=np.float32, order="C")


def _label_indices(y: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Return each label's index in the sorted ``classes``, refusing a label not there."""
    unknown = ~np.isin(y, classes)
    if unknown.any():
        raise ValueError(
            f"y contains label {y[unknown].tolist()[0]!r}, which is not one "
            f"of the classes {classes.tolist()}"
        )
    return np.searchsorted(classes, y)


def _seed(random_state: Any) -> int:
    """Return ``TrainConfig.seed`` for a ``random_state``.

    An int is the seed itself (so ``random_state=s`` reproduces ``softreg.fit`` with
    ``seed=s``); ``None`` or a ``RandomState`` draws one (from NumPy's global generator, or
    advancing the given one).
    """
    rng = check_random_state(random_state)  # also refuses ints outside [0, 2**32)
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return int(random_state)
    return int(rng.randint(np.iinfo(np.int32).max))


def _weights(sample_weight: Any, X: np.ndarray) -> np.ndarray | None:
    """Return checked weights ``(n_samples,)``, or None when they are all equal.

    ``fit`` rescales weights to average 1, so equal weights mean no weights, and None makes
    that exact (the weighted loss computes ``g * (w / n)``, which differs from ``g / n`` in
    the last bit).
    """
    if sample_weight is None:
        return None
    w = _check_sample_weight(sample_weight, X, dtype=np.float64)
    if (w < 0).any():
        raise ValueError(f"sample weights must be >= 0, got {w[w < 0][0]}")
    if not w.any():
        raise ValueError("Sample weights must contain at least one non-zero number.")
    return None if (w == w[0]).all() else w


def _to_host(tree: Any) -> Any:
    """Return a dict (of dicts) of backend arrays as writeable NumPy copies, off the device."""
    return backend.tree_map(lambda a: np.array(backend.to_numpy(a)), tree)
