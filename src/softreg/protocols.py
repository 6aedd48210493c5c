"""The contracts between softreg's parts, as :class:`typing.Protocol` classes.

``fit`` trains any object with the methods of :class:`Model` (softreg's
:class:`~softreg.models.SoftmaxRegression` and :class:`~softreg.models.MLP` are two), and a
data-parallel run hands it any object with the methods of :class:`Communicator`
(:func:`softreg.distributed.init` makes one over ``torch.distributed``). Nothing here imports
an array library: arrays are typed ``Any``, since they may be NumPy, PyTorch, JAX or
TensorFlow arrays.
"""

from __future__ import annotations

from typing import Any, Protocol

Params = dict[str, Any]
"""A model's parameters by name (``"W"``, ``"b"``, ...): arrays of one array namespace."""


class Model(Protocol):
    """What the training loop, the step and the evaluation need of a model.

    A model holds only its configuration and its input standardisation; the parameters are
    a separate :data:`Params` dict that every method takes, so that a compiled step can treat
    them as data.

    Attributes
    ----------
    num_inputs : int
        Features per example, after flattening.
    num_outputs : int
        Number of classes.
    """

    num_inputs: int
    num_outputs: int

    def init(self, rng: Any, *, xp: Any = None, device: Any = None) -> Params:
        """Return initial parameters drawn from the NumPy generator ``rng``."""

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Return the shape of every parameter, by name."""

    def forward(self, params: Params, X: Any) -> Any:
        """Return the logits ``(n_samples, n_classes)`` of inputs ``(n_samples, ...)``."""

    def loss_and_grad(
        self, params: Params, X: Any, y: Any, *, weight: Any = None, softmax: str = "stable"
    ) -> tuple[Any, Params, Any]:
        """Return per-example losses ``(n_samples,)``, the gradients and the logits."""

    def loss_and_grad_chunked(
        self, params: Params, X: Any, y: Any, *, chunk_size: int, weight: Any = None
    ) -> tuple[Any, Params, Any]:
        """Return per-example losses, gradients and predicted classes ``(n_samples,)``."""

    def loss_and_grad_sampled(
        self,
        params: Params,
        X: Any,
        y: Any,
        classes: Any,
        log_q: Any,
        *,
        chunk_size: int | None = None,
        weight: Any = None,
    ) -> tuple[Any, Params, Any]:
        """Return the sampled softmax's losses, gradients and predicted classes."""

    def losses_chunked(
        self, params: Params, X: Any, y: Any, *, chunk_size: int | None = None
    ) -> tuple[Any, Any]:
        """Return per-example losses and predicted classes, over chunks of classes."""

    def scale_inputs(self, X: Any) -> Any:
        """Return ``X`` flattened to ``(n_samples, num_inputs)`` and standardised."""

    def without_input_scaling(self) -> Model:
        """Return the same model for inputs already standardised."""


class Communicator(Protocol):
    """A process's part in a data-parallel run: its rank, and the collectives.

    Every method is a collective: all ranks call the same ones in the same order.

    Attributes
    ----------
    rank : int
        This process's rank, ``0 <= rank < world_size``.
    world_size : int
        Number of processes in the run.
    """

    rank: int
    world_size: int

    def all_reduce_sum(self, tree: dict[str, Any]) -> dict[str, Any]:
        """Return ``tree`` (a dict of dicts of arrays) summed over the ranks."""

    def agree(self, values: dict[str, float]) -> None:
        """Raise unless every rank holds the same ``values``."""

    def barrier(self) -> None:
        """Wait until every rank has called this (a run directory's writer waits on it)."""
