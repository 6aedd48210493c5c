"""Models as frozen specifications plus an explicit parameter dict.

A model object holds only its configuration; parameters live in a plain ``dict`` of arrays
(a pytree for JAX, a state dict for checkpoints) that every method takes and the optimiser
returns anew. Each backward pass sits right under its forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from softreg import backend, ops

Params = dict[str, Any]


@dataclass(frozen=True)
class SoftmaxRegression:
    """``softmax(X @ W + b)``: one linear layer from pixels to class scores.

    ``W`` is ``(num_inputs, num_outputs)`` drawn from N(0, sigma^2), ``b`` is zeros, as in the
    book. :meth:`forward` returns logits; :meth:`predict_proba` applies the softmax.
    """

    num_inputs: int = 784
    num_outputs: int = 10
    sigma: float = 0.01  # the book's standard deviation of the initial weights

    def init(self, rng: Any, *, xp: Any = None, device: Any = None) -> Params:
        """Draw initial parameters on the host with ``rng`` (a ``numpy.random.Generator``)
        and move them to ``device`` once, so every backend starts from the same weights."""
        W = rng.normal(0.0, self.sigma, size=(self.num_inputs, self.num_outputs))
        xp = xp if xp is not None else backend.get_namespace(W)
        return {
            "W": backend.asarray(W.astype("float32"), xp, device=device),
            "b": xp.zeros((self.num_outputs,), dtype=xp.float32, device=device),
        }

    def forward(self, params: Params, X: Any) -> Any:
        """Logits ``(n_samples, num_outputs)`` of inputs ``(n_samples, ...)`` (flattened)."""
        xp = backend.get_namespace(X, params["W"])
        X = xp.reshape(X, (X.shape[0], self.num_inputs))
        return X @ params["W"] + params["b"]

    def backward(self, params: Params, X: Any, dlogits: Any) -> Params:
        """Gradients of the loss, given ``dlogits = d loss / d logits (n_samples, num_outputs)``."""
        xp = backend.get_namespace(X, dlogits)
        X = xp.reshape(X, (X.shape[0], self.num_inputs))
        return {"W": X.T @ dlogits, "b": xp.sum(dlogits, axis=0)}

    def loss_and_grad(self, params: Params, X: Any, y: Any) -> tuple[Any, Params, Any]:
        """One forward and one backward pass: ``(per-example losses (n,), grads, logits)``.

        The gradients are those of the mean loss over the batch.
        """
        logits = self.forward(params, X)
        losses, dlogits = ops.cross_entropy_with_grad(logits, y)
        return losses, self.backward(params, X, dlogits), logits

    def predict_proba(self, params: Params, X: Any) -> Any:
        """Class probabilities ``(n_samples, num_outputs)``, each row summing to 1."""
        return ops.softmax(self.forward(params, X), axis=1)

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """The shape every entry of ``params`` must have (checked when loading a model)."""
        return {"W": (self.num_inputs, self.num_outputs), "b": (self.num_outputs,)}


MODELS = {"softmax-regression": SoftmaxRegression}
