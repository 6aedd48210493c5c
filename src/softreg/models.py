"""Models as frozen specifications plus an explicit parameter dict.

A model object holds only its configuration; parameters live in a plain ``dict`` of arrays
(a pytree for JAX, a state dict for checkpoints) that every method takes and the optimiser
returns anew. Each backward pass sits right under its forward pass.

Both models standardise their inputs, ``(X - input_mean) / input_scale``, with one number for
every feature (the lecture's ``transforms.Normalize((0.1307,), (0.3081,))``) or one per
feature (see :mod:`softreg.standardise`). The numbers are part of the model, so a saved model
applies them to whatever it is given later; the defaults, 0 and 1, leave inputs as they are.
"""

from __future__ import annotations

import itertools
import math
import operator
from dataclasses import dataclass, fields, replace
from typing import Any

from softreg import backend, ops, vocab
from softreg.errors import ConfigError
from softreg.standardise import as_scaling, scaling_kind

Params = dict[str, Any]
FLOAT32_MAX = 3.4028234663852886e38  # the largest finite float32


class _Classifier:
    """What both models share, on top of their own ``forward_cached`` and ``backward``.

    The input standardisation (``input_mean`` and ``input_scale``, read-only float32 NumPy
    arrays of shape ``()`` or ``(num_inputs,)``) is data, not configuration: models compare
    equal when their configuration and those arrays are equal.
    """

    num_inputs: int
    num_outputs: int
    input_mean: Any
    input_scale: Any

    def _check(self) -> None:
        """Refuse a configuration no model can have (the dataclasses' ``__post_init__``)."""
        for name in ("num_inputs", "num_outputs"):
            object.__setattr__(self, name, _size(name, getattr(self, name)))
        mean, scale = as_scaling(self.input_mean, self.input_scale, self.num_inputs)
        object.__setattr__(self, "input_mean", mean)
        object.__setattr__(self, "input_scale", scale)

    def config(self) -> dict[str, Any]:
        """The model's configuration as JSON-ready numbers (everything but the input
        standardisation's arrays): ``type(model)(**model.config())`` builds it again.
        """
        config = {}
        for f in fields(self):  # type: ignore[arg-type]
            if f.name not in ("input_mean", "input_scale"):
                value = getattr(self, f.name)
                config[f.name] = list(value) if isinstance(value, tuple) else value
        return config

    @property
    def input_scaling(self) -> str:
        """``"none"``, ``"scalar"`` (one mean and scale for every feature) or
        ``"per-feature"``.
        """
        return scaling_kind(self.input_mean, self.input_scale)

    def without_input_scaling(self) -> Any:
        """The same model for inputs already standardised (see :meth:`scale_inputs`)."""
        return replace(self, input_mean=0.0, input_scale=1.0)

    def scale_inputs(self, X: Any) -> Any:
        """``X (n_samples, ...)`` flattened to ``(n_samples, num_inputs)`` and standardised,
        as the forward pass does it (in ``X``'s namespace and on its device).
        """
        xp = backend.get_namespace(X)
        X = xp.reshape(X, (X.shape[0], self.num_inputs))
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
        return hash((type(self).__name__, repr(sorted(self.config().items()))))

    def forward(self, params: Params, X: Any) -> Any:
        """Logits ``(n_samples, num_outputs)`` of inputs ``(n_samples, ...)`` (flattened)."""
        return self.forward_cached(params, X)[0]

    def loss_and_grad(
        self, params: Params, X: Any, y: Any, *, weight: Any = None, softmax: str = "stable"
    ) -> tuple[Any, Params, Any]:
        """One forward and one backward pass: ``(per-example losses (n,), grads, logits)``.

        The gradients are those of the mean loss over the batch, each example's loss scaled
        by ``weight`` (``(n,)``) when given. ``softmax="naive"`` computes the loss the book's
        way (see :func:`ops.cross_entropy_with_grad_naive`).
        """
        logits, cache = self.forward_cached(params, X)
        logits = backend.rows_last(logits)  # for the loss's and the accuracy's reductions
        losses, dlogits = ops.LOSS_GRADS[softmax](logits, y, weight=weight)
        return losses, self.backward(params, cache, dlogits), logits

    # With many classes (a vocabulary) the (n, num_outputs) logits and their gradient are the
    # largest arrays by far; the methods below never form them (see softreg.vocab).

    def loss_and_grad_chunked(
        self, params: Params, X: Any, y: Any, *, chunk_size: int | None, weight: Any = None
    ) -> tuple[Any, Params, Any]:
        """:meth:`loss_and_grad` over chunks of ``chunk_size`` classes: ``(per-example losses
        (n,), grads, predicted classes (n,))``, the arg-max of each row standing in for the
        logits, which are never formed. The same numbers within float32 rounding.
        """
        h, cache = self.features_cached(params, X)
        W, b = (params[name] for name in self.output_names)
        lse, predicted = vocab.linear_logsumexp(h, W, b, chunk_size=chunk_size)
        losses = lse - vocab.target_logits(h, W, b, y)
        dh, dW, db = vocab.linear_cross_entropy_backward(
            h, W, b, y, lse, chunk_size=chunk_size, weight=weight, input_grad=self.has_hidden_layers
        )
        grads = self._grads_below(params, cache, dh, dW, db)
        return (losses if weight is None else losses * weight), grads, predicted

    def loss_and_grad_sampled(
        self,
        params: Params,
        X: Any,
        y: Any,
        sampled: Any,
        log_q: Any,
        *,
        chunk_size: int | None = None,
        weight: Any = None,
    ) -> tuple[Any, Params, Any]:
        """Gradients of the sampled softmax over the classes ``sampled`` (``(S,)``, drawn with
        replacement from ``q``; ``log_q`` is ``(num_outputs,)``), see
        :func:`vocab.sampled_softmax_with_grad`. The losses and predictions returned are the
        exact ones (from a forward pass in chunks, as :meth:`losses_chunked`), so what is
        reported is what is being minimised, not its estimate.
        """
        h, cache = self.features_cached(params, X)
        W, b = (params[name] for name in self.output_names)
        lse, predicted = vocab.linear_logsumexp(h, W, b, chunk_size=chunk_size)
        losses = lse - vocab.target_logits(h, W, b, y)
        sample = vocab.SampledClasses(sampled, log_q)
        _, dh, dW, db = vocab.sampled_softmax_with_grad(h, W, b, y, sample, weight=weight)
        if not self.has_hidden_layers:
            dh = None
        grads = self._grads_below(params, cache, dh, dW, db)
        return (losses if weight is None else losses * weight), grads, predicted

    def losses_chunked(
        self, params: Params, X: Any, y: Any, *, chunk_size: int | None = None
    ) -> tuple[Any, Any]:
        """Per-example cross-entropy ``(n,)`` and predicted classes ``(n,)``, without the
        logits (one forward pass over chunks of ``chunk_size`` classes).
        """
        h, _ = self.features_cached(params, X)
        W, b = (params[name] for name in self.output_names)
        lse, predicted = vocab.linear_logsumexp(h, W, b, chunk_size=chunk_size)
        return lse - vocab.target_logits(h, W, b, y), predicted

    def _grads_below(self, params: Params, cache: Any, dh: Any, dW: Any, db: Any) -> Params:
        """The output layer's gradients and, from ``dh``, those of the layers below it, in
        the order :meth:`backward` gives them.
        """
        W_name, b_name = self.output_names
        grads = {W_name: dW, b_name: db}
        if dh is not None:
            grads.update(self.backward_features(params, cache, dh))
        return grads

    def predict_proba(self, params: Params, X: Any) -> Any:
        """Class probabilities ``(n_samples, num_outputs)``, each row summing to 1."""
        return ops.softmax(self.forward(params, X), axis=1)


@dataclass(frozen=True, eq=False)
class SoftmaxRegression(_Classifier):
    """``softmax(X @ W + b)``: one linear layer from pixels to class scores.

    ``W`` is ``(num_inputs, num_outputs)`` drawn from N(0, sigma^2), ``b`` is zeros, as in the
    book. :meth:`forward` returns logits; :meth:`predict_proba` applies the softmax.
    """

    num_inputs: int = 784
    num_outputs: int = 10
    sigma: float = 0.01  # the book's standard deviation of the initial weights
    input_mean: Any = 0.0  # inputs are standardised as (X - input_mean) / input_scale: one
    input_scale: Any = 1.0  # number each, or one per feature (softreg.standardise)

    def __post_init__(self) -> None:
        self._check()
        check_sigma(self.sigma)

    def init(self, rng: Any, *, xp: Any = None, device: Any = None) -> Params:
        """Draw initial parameters on the host with ``rng`` (a ``numpy.random.Generator``)
        and move them to ``device`` once, so every backend starts from the same weights.
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

    output_names = ("W", "b")  # the output layer's parameters
    has_hidden_layers = False

    def forward_cached(self, params: Params, X: Any) -> tuple[Any, Any]:
        """Logits and what :meth:`backward` needs (the flattened, standardised inputs)."""
        X = self.scale_inputs(X)
        return X @ params["W"] + params["b"], X

    def features_cached(self, params: Params, X: Any) -> tuple[Any, Any]:
        """The output layer's input ``(n, num_inputs)`` (the standardised data) and a cache."""
        X = self.scale_inputs(X)
        return X, X

    def backward_features(self, params: Params, cache: Any, dh: Any) -> Params:
        """No layers below the output layer: nothing to add."""
        return {}

    def backward(self, params: Params, cache: Any, dlogits: Any) -> Params:
        """Gradients of the loss, given ``dlogits = d loss / d logits (n_samples, num_outputs)``
        and the ``cache`` of :meth:`forward_cached`.
        """
        xp = backend.get_namespace(cache, dlogits)
        # (dlogits.T @ X).T, not X.T @ dlogits: BLAS is a third faster this way round for
        # these shapes (10 x 256 @ 256 x 784), and the transpose is a free view.
        return {"W": (dlogits.T @ cache).T, "b": xp.sum(dlogits, axis=0)}

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """The shape every entry of ``params`` must have (checked when loading a model)."""
        return {"W": (self.num_inputs, self.num_outputs), "b": (self.num_outputs,)}


@dataclass(frozen=True, eq=False)
class MLP(_Classifier):
    """A multilayer perceptron: ``Linear -> ReLU`` for each hidden size, then a final
    ``Linear`` to class scores with no activation (the lecture's 784-512-256-128-64-10).

    Parameters are ``W1, b1, ..., WL, bL`` with ``Wi`` of shape ``(fan_in, fan_out)``,
    initialised like PyTorch's ``nn.Linear``: weights and biases uniform in
    ``[-1/sqrt(fan_in), 1/sqrt(fan_in)]``.
    """

    num_inputs: int = 784
    hidden: tuple[int, ...] = (512, 256, 128, 64)
    num_outputs: int = 10
    input_mean: Any = 0.0  # inputs are standardised as (X - input_mean) / input_scale: one
    input_scale: Any = 1.0  # number each, or one per feature (softreg.standardise)

    def __post_init__(self) -> None:
        if isinstance(self.hidden, (str, bytes)) or not hasattr(self.hidden, "__iter__"):
            raise ConfigError(f"hidden must be a sequence of layer sizes, got {self.hidden!r}")
        # A list from JSON, say; NumPy integers become ints (the sizes go into JSON headers).
        object.__setattr__(
            self, "hidden", tuple(_size("hidden layer size", size) for size in self.hidden)
        )
        self._check()

    @property
    def layer_shapes(self) -> list[tuple[int, int]]:
        """``(fan_in, fan_out)`` of each linear layer, first to last."""
        return list(itertools.pairwise((self.num_inputs, *self.hidden, self.num_outputs)))

    def init(self, rng: Any, *, xp: Any = None, device: Any = None) -> Params:
        """PyTorch's default ``nn.Linear`` initialisation, drawn on the host with ``rng`` and
        moved to ``device`` once.
        """
        params = {}
        for i, (fan_in, fan_out) in enumerate(self.layer_shapes, start=1):
            bound = 1.0 / math.sqrt(fan_in)
            W = rng.uniform(-bound, bound, size=(fan_in, fan_out)).astype("float32")
            b = rng.uniform(-bound, bound, size=(fan_out,)).astype("float32")
            xp = xp if xp is not None else backend.get_namespace(W)
            params[f"W{i}"] = backend.asarray(W, xp, device=device)
            params[f"b{i}"] = backend.asarray(b, xp, device=device)
        return params

    @property
    def output_names(self) -> tuple[str, str]:
        """The output layer's parameters, ``("WL", "bL")``."""
        layers = len(self.layer_shapes)
        return f"W{layers}", f"b{layers}"

    @property
    def has_hidden_layers(self) -> bool:
        return len(self.hidden) > 0

    def forward_cached(self, params: Params, X: Any) -> tuple[Any, list[Any]]:
        """Logits and the input of every layer (the cache :meth:`backward` needs):
        ``[X (n, num_inputs), h1 (n, hidden[0]), ...]``, each ``h`` after its ReLU.
        """
        h, inputs = self.features_cached(params, X)
        W, b = (params[name] for name in self.output_names)
        return h @ W + b, inputs

    def features_cached(self, params: Params, X: Any) -> tuple[Any, list[Any]]:
        """The output layer's input (the last hidden layer after its ReLU, or the data with
        no hidden layer) and the input of every layer, as :meth:`forward_cached`.
        """
        xp = backend.get_namespace(X)
        h = self.scale_inputs(X)
        inputs = [h]
        for i in range(1, len(self.layer_shapes)):
            h = xp.maximum(h @ params[f"W{i}"] + params[f"b{i}"], 0.0)  # Linear, ReLU
            inputs.append(h)
        return h, inputs

    def backward(self, params: Params, cache: list[Any], dlogits: Any) -> Params:
        """Gradients of the loss from ``dlogits (n, num_outputs)`` and the layer inputs of
        :meth:`forward_cached`, from the last layer back to the first.
        """
        xp = backend.get_namespace(dlogits)
        layers = len(cache)
        h = cache[-1]  # the output layer's input
        grads = {f"W{layers}": h.T @ dlogits, f"b{layers}": xp.sum(dlogits, axis=0)}
        if layers > 1:
            grads.update(self.backward_features(params, cache, dlogits @ params[f"W{layers}"].T))
        return grads

    def backward_features(self, params: Params, cache: list[Any], dh: Any) -> Params:
        """Gradients of the layers below the output layer, given ``dh``, the loss's gradient
        with respect to the output layer's input (``(n, hidden[-1])``), last layer first.
        """
        xp = backend.get_namespace(dh)
        grads = {}
        # A product with the 0/1 mask: ten times faster than where() in NumPy.
        delta = dh * xp.astype(cache[-1] > 0, dh.dtype)  # d loss / d (output of the layer)
        for i in range(len(cache) - 1, 0, -1):
            h = cache[i - 1]  # the input of layer i
            grads[f"W{i}"] = h.T @ delta
            grads[f"b{i}"] = xp.sum(delta, axis=0)
            if i > 1:  # through layer i's weights, then the ReLU that produced h
                delta = (delta @ params[f"W{i}"].T) * xp.astype(h > 0, h.dtype)
        return grads

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """The shape every entry of ``params`` must have (checked when loading a model)."""
        shapes = {}
        for i, (fan_in, fan_out) in enumerate(self.layer_shapes, start=1):
            shapes[f"W{i}"] = (fan_in, fan_out)
            shapes[f"b{i}"] = (fan_out,)
        return shapes


def check_sigma(sigma: Any) -> None:
    """Refuse a standard deviation of the initial weights that is not a finite number >= 0."""
    if not (
        isinstance(sigma, (int, float))
        and not isinstance(sigma, bool)
        and math.isfinite(sigma)
        and sigma >= 0
    ):
        raise ConfigError(f"sigma must be a finite number >= 0, got {sigma!r}")


def _size(name: str, value: Any) -> int:
    """``value`` as an int >= 1 (NumPy integers included), or a ConfigError."""
    try:
        size = operator.index(value) if not isinstance(value, bool) else None
    except TypeError:
        size = None
    if size is None or size < 1:
        raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
    return size


MODELS = {"softmax-regression": SoftmaxRegression, "mlp": MLP}
