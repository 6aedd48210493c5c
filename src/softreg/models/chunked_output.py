"""A model's output layer over chunks of classes, for many classes (a vocabulary).

With many classes the ``(n_samples, num_outputs)`` logits and their gradient are the largest
arrays by far; the methods here never form them (see :mod:`softreg.vocab`). They work on the
output layer's input ``h`` (from the model's ``features_cached``) and its weight and bias
(``output_names``), and hand the gradient with respect to ``h`` to the model's
``backward_features`` for the layers below.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from softreg import backend, vocab
from softreg.protocols import Params


class ChunkedOutput:
    """Losses and gradients without the logits: exact over chunks of classes, or sampled.

    A base of :class:`~softreg.models.classifier.Classifier`, built on its
    ``features_cached``, ``backward_features``, ``output_names`` and ``has_hidden_layers``.
    """

    def loss_and_grad_chunked(
        self,
        params: Params,
        X: Any,
        y: Any,
        *,
        chunk_size: int | None,
        weight: Any = None,
        xp: ModuleType | None = None,
    ) -> tuple[Any, Params, Any]:
        """Return :meth:`loss_and_grad`'s results computed over chunks of classes.

        The arg-max of each row stands in for the logits, which are never formed. The same
        numbers within float32 rounding.

        Parameters
        ----------
        params : Params
            The model's parameters.
        X : array, shape (n_samples, ...)
            Inputs.
        y : array of int, shape (n_samples,)
            Class indices.
        chunk_size : int or None
            Classes per chunk (None: automatic, see :func:`vocab.linear_logsumexp`).
        weight : array, shape (n_samples,), optional
            Scales each example's loss.
        xp : module, optional
            The array namespace of the arrays (found from ``X`` when None).

        Returns
        -------
        losses : array, shape (n_samples,)
            Cross-entropy per example, times ``weight`` when given.
        grads : Params
            Gradients of the mean of ``losses``.
        predicted : array of int, shape (n_samples,)
            The class of the highest score of each row.
        """
        xp = backend.get_namespace(X, xp=xp)
        h, cache, W, b, lse, predicted, losses = self._output_in_chunks(
            params, X, y, chunk_size, xp
        )
        dh, dW, db = vocab.linear_cross_entropy_backward(
            h,
            W,
            b,
            y,
            lse,
            chunk_size=chunk_size,
            weight=weight,
            input_grad=self.has_hidden_layers,
        )
        grads = self._grads_below(params, cache, dh, dW, db, xp)
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
        xp: ModuleType | None = None,
    ) -> tuple[Any, Params, Any]:
        """Return exact losses and predictions, and the gradients of the sampled softmax.

        The gradients are those of :func:`vocab.sampled_softmax_with_grad` over the classes
        ``sampled``. The losses and predictions are the exact ones (from a forward pass in
        chunks, as :meth:`losses_chunked`), so what is reported is what is being minimised,
        not its estimate.

        Parameters
        ----------
        params : Params
            The model's parameters.
        X : array, shape (n_samples, ...)
            Inputs.
        y : array of int, shape (n_samples,)
            Class indices.
        sampled : array of int, shape (n_sampled,)
            Classes drawn with replacement from the proposal ``q``.
        log_q : array, shape (num_outputs,)
            ``log q``.
        chunk_size : int or None, default None
            Classes per chunk of the exact forward pass (None: automatic).
        weight : array, shape (n_samples,), optional
            Scales each example's loss.
        xp : module, optional
            The array namespace of the arrays (found from ``X`` when None).

        Returns
        -------
        losses : array, shape (n_samples,)
            Exact cross-entropy per example, times ``weight`` when given.
        grads : Params
            The sampled softmax's gradients of the mean loss.
        predicted : array of int, shape (n_samples,)
            The class of the highest score of each row.
        """
        xp = backend.get_namespace(X, xp=xp)
        h, cache, W, b, lse, predicted, losses = self._output_in_chunks(
            params, X, y, chunk_size, xp
        )
        sample = vocab.SampledClasses(sampled, log_q)
        _, dh, dW, db = vocab.sampled_softmax_with_grad(h, W, b, y, sample, weight=weight, xp=xp)
        if not self.has_hidden_layers:
            dh = None
        grads = self._grads_below(params, cache, dh, dW, db, xp)
        return (losses if weight is None else losses * weight), grads, predicted

    def losses_chunked(
        self,
        params: Params,
        X: Any,
        y: Any,
        *,
        chunk_size: int | None = None,
        xp: ModuleType | None = None,
    ) -> tuple[Any, Any]:
        """Return per-example losses and predictions without forming the logits.

        One forward pass over chunks of ``chunk_size`` classes.

        Parameters
        ----------
        params : Params
            The model's parameters.
        X : array, shape (n_samples, ...)
            Inputs.
        y : array of int, shape (n_samples,)
            Class indices.
        chunk_size : int or None, default None
            Classes per chunk (None: automatic).
        xp : module, optional
            The array namespace of the arrays (found from ``X`` when None).

        Returns
        -------
        losses : array, shape (n_samples,)
            Cross-entropy per example.
        predicted : array of int, shape (n_samples,)
            The class of the highest score of each row.
        """
        xp = backend.get_namespace(X, xp=xp)
        *_, predicted, losses = self._output_in_chunks(params, X, y, chunk_size, xp)
        return losses, predicted

    def _output_in_chunks(
        self, params: Params, X: Any, y: Any, chunk_size: int | None, xp: ModuleType
    ) -> tuple[Any, ...]:
        """Run the forward pass with the output layer over chunks of classes.

        Returns ``(h, cache, W, b, lse, predicted, losses)``: the output layer's input and
        the cache below it, its weights, each row's log-sum-exp and arg-max, and the
        per-example cross-entropy (unweighted).
        """
        h, cache = self.features_cached(params, X, xp=xp)
        W, b = (params[name] for name in self.output_names)
        lse, predicted = vocab.linear_logsumexp(h, W, b, chunk_size=chunk_size, xp=xp)
        losses = lse - vocab.target_logits(h, W, b, y, xp=xp)
        return h, cache, W, b, lse, predicted, losses

    def _grads_below(
        self, params: Params, cache: Any, dh: Any, dW: Any, db: Any, xp: ModuleType
    ) -> Params:
        """Collect the output layer's gradients and, from ``dh``, those of the layers below.

        ``dh`` None: no layer below. The order is the one :meth:`backward` gives.
        """
        W_name, b_name = self.output_names
        grads = {W_name: dW, b_name: db}
        if dh is not None:
            grads.update(self.backward_features(params, cache, dh, xp=xp))
        return grads
