"""Softmax regression: one linear layer from pixels to class scores, the chapter's model."""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from softreg import backend
from softreg.errors import ConfigError
from softreg.models.classifier import Classifier
from softreg.protocols import Params

FLOAT32_MAX = 3.4028234663852886e38  # the largest finite float32


@dataclass(frozen=True, eq=False)
class SoftmaxRegression(Classifier):
    """``softmax(X @ W + b)``: one linear layer from pixels to class scores.

    ``W`` is ``(num_inputs, num_outputs)`` drawn from N(0, sigma^2), ``b`` is zeros, as in the
    book. :meth:`forward` returns logits; :meth:`predict_proba` applies the softmax.

    Parameters
    ----------
    num_inputs : int, default 784
        Features per example (a 28 x 28 image, flattened).
    num_outputs : int, default 10
        Classes.
    sigma : float, default 0.01
        The book's standard deviation of the initial weights, finite and >= 0.
    input_mean, input_scale : float or array of shape (num_inputs,), default 0.0 and 1.0
        Inputs are standardised as ``(X - input_mean) / input_scale``: one number each, or one
        per feature (see :mod:`softreg.standardise`).

    Raises
    ------
    ConfigError
        A size that is not an integer >= 1, a bad ``sigma``, or a standardisation of another
        shape or not finite.
    """

    num_inputs: int = 784
    num_outputs: int = 10
    sigma: float = 0.01  # the book's standard deviation of the initial weights
    input_mean: Any = 0.0  # inputs are standardised as (X - input_mean) / input_scale: one
    input_scale: Any = 1.0  # number each, or one per feature (softreg.standardise)

    output_names = ("W", "b")  # the output layer's parameters
    has_hidden_layers = False

    def __post_init__(self) -> None:
        """Check the configuration; store sizes as ints and the standardisation as arrays."""
        self._check()
        check_sigma(self.sigma)

    def init(self, rng: Any, *, xp: ModuleType | None = None, device: Any = None) -> Params:
        """Draw initial parameters on the host and move them to ``device`` once.

        Every backend starts from the same weights.

        Parameters
        ----------
        rng : numpy.random.Generator
            The source of the draws.
        xp : module, optional
            The array namespace of the parameters (default NumPy).
        device : optional
            The device of ``xp`` to put them on (None: its default).

        Returns
        -------
        Params
            ``W (num_inputs, num_outputs)`` and ``b (num_outputs,)``, float32.

        Raises
        ------
        ConfigError
            ``sigma`` so large that a weight falls beyond float32's range.
        """
        W = rng.normal(0.0, self.sigma, size=(self.num_inputs, self.num_outputs))
        if max(float(W.max()), -float(W.min())) > FLOAT32_MAX:  # (no copy the size of W)
            raise ConfigError(
                f"sigma={self.sigma:g} draws initial weights beyond float32's range (about 3.4e38)"
            )
        xp = xp if xp is not None else backend.get_namespace(W)
        return {
            "W": backend.asarray(W.astype("float32"), xp, device=device),
            "b": xp.zeros((self.num_outputs,), dtype=xp.float32, device=device),
        }

    def forward_cached(
        self, params: Params, X: Any, *, xp: ModuleType | None = None
    ) -> tuple[Any, Any]:
        """Return the logits and what :meth:`backward` needs.

        Parameters
        ----------
        params : Params
            ``W`` and ``b``.
        X : array, shape (n_samples, ...)
            Inputs.
        xp : module, optional
            The array namespace of the arrays (found from ``X`` when None).

        Returns
        -------
        logits : array, shape (n_samples, num_outputs)
            ``scale_inputs(X) @ W + b``.
        cache : array, shape (n_samples, num_inputs)
            The flattened, standardised inputs.
        """
        X = self.scale_inputs(X, xp=xp)
        return X @ params["W"] + params["b"], X

    def backward(
        self, params: Params, cache: Any, dlogits: Any, *, xp: ModuleType | None = None
    ) -> Params:
        """Return the gradients of the loss, given its gradient with respect to the logits.

        Parameters
        ----------
        params : Params
            ``W`` and ``b``.
        cache : array, shape (n_samples, num_inputs)
            From :meth:`forward_cached`.
        dlogits : array, shape (n_samples, num_outputs)
            ``d loss / d logits``.
        xp : module, optional
            The array namespace of the arrays (found from them when None).

        Returns
        -------
        Params
            ``W``: ``X.T @ dlogits``, ``b``: the column sums of ``dlogits``.
        """
        xp = backend.get_namespace(cache, dlogits, xp=xp)
        # (dlogits.T @ X).T, not X.T @ dlogits: BLAS is a third faster this way round for
        # these shapes (10 x 256 @ 256 x 784), and the transpose is a free view.
        return {"W": (dlogits.T @ cache).T, "b": xp.sum(dlogits, axis=0)}

    def features_cached(
        self, params: Params, X: Any, *, xp: ModuleType | None = None
    ) -> tuple[Any, Any]:
        """Return the output layer's input and a cache: both the standardised data.

        Parameters
        ----------
        params : Params
            ``W`` and ``b``.
        X : array, shape (n_samples, ...)
            Inputs.
        xp : module, optional
            The array namespace of ``X`` (found from it when None).

        Returns
        -------
        h, cache : array, shape (n_samples, num_inputs)
            The flattened, standardised inputs.
        """
        X = self.scale_inputs(X, xp=xp)
        return X, X

    def backward_features(
        self, params: Params, cache: Any, dh: Any, *, xp: ModuleType | None = None
    ) -> Params:
        """Return no gradients: no layer lies below the output layer.

        Parameters
        ----------
        params : Params
            ``W`` and ``b`` (not used).
        cache : array, shape (n_samples, num_inputs)
            From :meth:`features_cached` (not used).
        dh : array, shape (n_samples, num_inputs)
            ``d loss / d h``, ``h`` the standardised inputs (not used).
        xp : module, optional
            The array namespace of the arrays (not used).

        Returns
        -------
        Params
            An empty dict.
        """
        return {}

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Return the shape every entry of ``params`` must have (checked when loading a model).

        Returns
        -------
        dict of str to tuple of int
            ``{"W": (num_inputs, num_outputs), "b": (num_outputs,)}``.
        """
        return {"W": (self.num_inputs, self.num_outputs), "b": (self.num_outputs,)}


def check_sigma(sigma: Any) -> None:
    """Refuse a standard deviation of the initial weights that is not a finite number >= 0.

    Parameters
    ----------
    sigma : Any
        The value to check.

    Raises
    ------
    ConfigError
        ``sigma`` is not a finite int or float >= 0.
    """
    if not (
        isinstance(sigma, (int, float))
        and not isinstance(sigma, bool)
        and math.isfinite(sigma)
        and sigma >= 0
    ):
        raise ConfigError(f"sigma must be a finite number >= 0, got {sigma!r}")
