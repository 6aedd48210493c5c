"""What every softreg model shares.

Input standardisation, configuration, and the loss and gradient computations built on each
model's own forward and backward passes.

A model computes through four methods of its own, each backward right under its forward:

- ``forward_cached(params, X)``: logits ``(n_samples, num_outputs)`` and a cache;
- ``backward(params, cache, dlogits)``: the gradients of every parameter;
- ``features_cached(params, X)``: the output layer's input ``h`` and a cache;
- ``backward_features(params, cache, dh)``: the gradients of the layers below the output
  layer, from the gradient with respect to ``h``.

:class:`Classifier` turns them into losses and gradients in one call, with all logits at
once; its base :class:`~softreg.models.chunked_output.ChunkedOutput` does it over chunks of
classes (never forming the logits) or with the sampled softmax.
"""

from __future__ import annotations

import operator
from dataclasses import fields, replace
from types import ModuleType
from typing import Any

from softreg import array_extras, backend, ops
from softreg.errors import ConfigError
from softreg.models.chunked_output import ChunkedOutput
from softreg.protocols import Params
from softreg.standardise import as_features, as_scaling, scaling_kind


class Classifier(ChunkedOutput):
    """Base class of the models: what they share on top of their own forward and backward.

    A model is a frozen dataclass holding only its configuration; its parameters live in a
    plain ``dict`` of arrays (:data:`~softreg.protocols.Params`) that every method takes.
    The input standardisation (``input_mean`` and ``input_scale``, read-only float32 NumPy
    arrays of shape ``()`` or ``(num_inputs,)``) is data, not configuration: models compare
    equal when their configuration and those arrays are equal.

    Every method that computes takes a keyword ``xp``, the array namespace of its arrays;
    None finds it from them.

    Attributes
    ----------
    num_inputs : int
        Features per example (inputs are flattened to ``(n_samples, num_inputs)``).
    num_outputs : int
        Classes: logits are ``(n_samples, num_outputs)``.
    input_mean, input_scale : numpy.ndarray
        The input standardisation, ``(X - input_mean) / input_scale``.
    output_names : tuple of (str, str)
        The names of the output layer's weight and bias in ``params``.
    has_hidden_layers : bool
        Whether layers lie below the output layer (so that ``backward_features`` has work).
    """

    num_inputs: int
    num_outputs: int
    input_mean: Any
    input_scale: Any
    output_names: tuple[str, str]
    has_hidden_layers: bool

    def _check(self) -> None:
        """Refuse a configuration no model can have (the dataclasses' ``__post_init__``)."""
        for name in ("num_inputs", "num_outputs"):
            object.__setattr__(self, name, check_size(name, getattr(self, name)))
        mean, scale = as_scaling(self.input_mean, self.input_scale, self.num_inputs)
        object.__setattr__(self, "input_mean", mean)
        object.__setattr__(self, "input_scale", scale)

    def config(self) -> dict[str, Any]:
        """Return the model's configuration as JSON-ready numbers.

        Everything but the input standardisation's arrays: ``type(model)(**model.config())``
        builds the model again (without its standardisation).

        Returns
        -------
        dict
            The dataclass fields by name, tuples as lists.
        """
        config = {}
        for f in fields(self):  # type: ignore[arg-type]
            if f.name not in ("input_mean", "input_scale"):
                value = getattr(self, f.name)
                config[f.name] = list(value) if isinstance(value, tuple) else value
        return config

    @property
    def input_scaling(self) -> str:
        """The kind of input standardisation: ``"none"``, ``"scalar"`` or ``"per-feature"``.

        ``"scalar"`` is one mean and scale for every feature.
        """
        return scaling_kind(self.input_mean, self.input_scale)

    def without_input_scaling(self) -> Any:
        """Return the same model for inputs already standardised (see :meth:`scale_inputs`).

        Returns
        -------
        Classifier
            A copy with ``input_mean=0`` and ``input_scale=1``.
        """
        return replace(self, input_mean=0.0, input_scale=1.0)

    def scale_inputs(self, X: Any, *, xp: ModuleType | None = None) -> Any:
        """Return inputs flattened and standardised, as the forward pass does it.

        Parameters
        ----------
        X : array, shape (n_samples, ...)
            Inputs with ``num_inputs`` entries per example.
        xp : module, optional
            The array namespace of ``X`` (found from it when None).

        Returns
        -------
        array, shape (n_samples, num_inputs)
            ``(X - input_mean) / input_scale`` in float32, in ``X``'s namespace and on its
            device. uint8 inputs are image bytes, first read as torchvision's ``ToTensor``
            reads them (``X / 255`` in float32); other dtypes are converted to float32.
        """
        xp = backend.get_namespace(X, xp=xp)
        X = xp.reshape(X, (X.shape[0], self.num_inputs))
        X = as_features(X, xp)
        kind = self.input_scaling
        if kind == "none":
            return X
        if kind == "scalar":  # Python numbers: each library's scalar arithmetic, as always
            mean, scale = float(self.input_mean), float(self.input_scale)
        else:
            dev = backend.device(X)
            mean = backend.asarray(self.input_mean, xp, device=dev)
            scale = backend.asarray(self.input_scale, xp, device=dev)
        X = X - mean
        X /= scale  # in place where the namespace allows it: one temporary, not two
        return X

    def __eq__(self, other: object) -> bool:
        """Compare the configuration and the input standardisation's arrays."""
        if type(other) is not type(self):
            return NotImplemented
        return (
            self.config() == other.config()  # type: ignore[attr-defined]
            and all(
                a.shape == b.shape and bool((a == b).all())
                for a, b in (
                    (self.input_mean, other.input_mean),
                    (self.input_scale, other.input_scale),
                )
            )
        )

    def __hash__(self) -> int:
        """Hash the type and the configuration (equal models hash alike)."""
        return hash((type(self).__name__, repr(sorted(self.config().items()))))

    def forward_cached(
        self, params: Params, X: Any, *, xp: ModuleType | None = None
    ) -> tuple[Any, Any]:
        """Return the logits and what :meth:`backward` needs (each model's own).

        Parameters
        ----------
        params : Params
            The model's parameters.
        X : array, shape (n_samples, ...)
            Inputs, flattened to ``(n_samples, num_inputs)`` and standardised.
        xp : module, optional
            The array namespace of the arrays (found from ``X`` when None).

        Returns
        -------
        logits : array, shape (n_samples, num_outputs)
            The class scores.
        cache : Any
            Whatever the model's :meth:`backward` takes back (the standardised inputs, or
            every layer's input).
        """
        raise NotImplementedError

    def backward(
        self, params: Params, cache: Any, dlogits: Any, *, xp: ModuleType | None = None
    ) -> Params:
        """Return the gradients from ``dlogits`` and a cache (each model's own).

        Parameters
        ----------
        params : Params
            The model's parameters.
        cache : Any
            From :meth:`forward_cached` on the same ``params``.
        dlogits : array, shape (n_samples, num_outputs)
            ``d loss / d logits``.
        xp : module, optional
            The array namespace of the arrays (found from them when None).

        Returns
        -------
        Params
            The gradient of every parameter, by name, each of its parameter's shape.
        """
        raise NotImplementedError

    def features_cached(
        self, params: Params, X: Any, *, xp: ModuleType | None = None
    ) -> tuple[Any, Any]:
        """Return the output layer's input and a cache (each model's own).

        Parameters
        ----------
        params : Params
            The model's parameters (the output layer's are not used).
        X : array, shape (n_samples, ...)
            Inputs, flattened to ``(n_samples, num_inputs)`` and standardised.
        xp : module, optional
            The array namespace of the arrays (found from ``X`` when None).

        Returns
        -------
        h : array, shape (n_samples, n_hidden)
            The output layer's input: the standardised inputs (``n_hidden`` is
            ``num_inputs``) with no hidden layer, else the last hidden layer's output.
        cache : Any
            Whatever the model's :meth:`backward_features` takes back.
        """
        raise NotImplementedError

    def backward_features(
        self, params: Params, cache: Any, dh: Any, *, xp: ModuleType | None = None
    ) -> Params:
        """Return the gradients of the layers below the output layer (each model's own).

        Parameters
        ----------
        params : Params
            The model's parameters.
        cache : Any
            From :meth:`features_cached` on the same ``params``.
        dh : array, shape (n_samples, n_hidden)
            ``d loss / d h``, the gradient with respect to the output layer's input (softreg
            computes it, and calls this method, only when :attr:`has_hidden_layers` is true).
        xp : module, optional
            The array namespace of the arrays (found from ``dh`` when None).

        Returns
        -------
        Params
            The gradient of every parameter but the output layer's (named in
            :attr:`output_names`); empty with no hidden layer.
        """
        raise NotImplementedError

    def forward(self, params: Params, X: Any, *, xp: ModuleType | None = None) -> Any:
        """Return the logits of a batch of inputs.

        Parameters
        ----------
        params : Params
            The model's parameters.
        X : array, shape (n_samples, ...)
            Inputs, flattened to ``(n_samples, num_inputs)`` and standardised.
        xp : module, optional
            The array namespace of ``X`` and ``params`` (found from ``X`` when None).

        Returns
        -------
        array, shape (n_samples, num_outputs)
            The class scores.
        """
        return self.forward_cached(params, X, xp=xp)[0]

    def predict_proba(self, params: Params, X: Any, *, xp: ModuleType | None = None) -> Any:
        """Return class probabilities: the softmax of :meth:`forward`.

        Parameters
        ----------
        params : Params
            The model's parameters.
        X : array, shape (n_samples, ...)
            Inputs.
        xp : module, optional
            The array namespace of ``X`` and ``params`` (found from ``X`` when None).

        Returns
        -------
        array, shape (n_samples, num_outputs)
            Each row sums to 1.
        """
        xp = backend.get_namespace(X, xp=xp)
        return ops.softmax(self.forward(params, X, xp=xp), axis=1, xp=xp)

    def loss_and_grad(
        self,
        params: Params,
        X: Any,
        y: Any,
        *,
        weight: Any = None,
        softmax: str = "stable",
        xp: ModuleType | None = None,
    ) -> tuple[Any, Params, Any]:
        """Return per-example losses, gradients and logits: one forward and one backward pass.

        Parameters
        ----------
        params : Params
            The model's parameters.
        X : array, shape (n_samples, ...)
            Inputs.
        y : array of int, shape (n_samples,)
            Class indices (not range-checked: the training hot path).
        weight : array, shape (n_samples,), optional
            Scales each example's loss.
        softmax : {"stable", "naive"}, default "stable"
            ``"naive"`` computes the loss the book's way (see
            :func:`ops.cross_entropy_with_grad_naive`).
        xp : module, optional
            The array namespace of the arrays (found from ``X`` when None).

        Returns
        -------
        losses : array, shape (n_samples,)
            Cross-entropy per example, times ``weight`` when given.
        grads : Params
            Gradients of the mean of ``losses`` over the batch, by parameter name.
        logits : array, shape (n_samples, num_outputs)
            The forward pass's scores.
        """
        xp = backend.get_namespace(X, xp=xp)
        logits, cache = self.forward_cached(params, X, xp=xp)
        logits = array_extras.rows_last(logits)  # for the loss's and the accuracy's reductions
        losses, dlogits = ops.LOSS_GRADS[softmax](logits, y, weight=weight, xp=xp)
        return losses, self.backward(params, cache, dlogits, xp=xp), logits


def check_size(name: str, value: Any) -> int:
    """Return ``value`` as an ``int`` after checking that it is an integer >= 1.

    Parameters
    ----------
    name : str
        What the value is, for the error message.
    value : Any
        A Python or NumPy integer (anything with ``__index__`` but ``bool``).

    Returns
    -------
    int
        ``value``.

    Raises
    ------
    ConfigError
        ``value`` is not an integer, or is below 1.
    """
    try:
        size = operator.index(value) if not isinstance(value, bool) else None
    except TypeError:
        size = None
    if size is None or size < 1:
        raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
    return size
