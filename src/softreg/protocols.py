"""The contracts between softreg's parts, as :class:`typing.Protocol` classes.

``fit`` trains any object with the methods of :class:`Model` (softreg's
:class:`~softreg.models.SoftmaxRegression` and :class:`~softreg.models.MLP` are two), and a
data-parallel run hands it any object with the methods of :class:`Communicator`
(:func:`softreg.distributed.init` makes one over ``torch.distributed``). Nothing here imports
an array library: arrays are typed ``Any``, since they may be NumPy, PyTorch, JAX or
TensorFlow arrays.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Protocol

Params = dict[str, Any]
"""A model's parameters by name (``"W"``, ``"b"``, ...): arrays of one array namespace."""


class Model(Protocol):
    """What the training loop, the step, the evaluation and the model files need of a model.

    A model holds only its configuration and its input standardisation; the parameters are
    a separate :data:`Params` dict that every method takes, so that a compiled step can treat
    them as data. Every method that computes takes a keyword ``xp``, the array namespace of
    its arrays (None: found from them), and resolves it once.
    :class:`~softreg.models.SoftmaxRegression` and :class:`~softreg.models.MLP` (through
    :class:`~softreg.models.Classifier`) document each method in full.
    """

    @property
    def num_inputs(self) -> int:
        """Features per example, after flattening."""

    @property
    def num_outputs(self) -> int:
        """Number of classes: logits are ``(n_samples, num_outputs)``."""

    @property
    def input_mean(self) -> Any:
        """The input standardisation's mean, float32, of shape ``()`` or ``(num_inputs,)``."""

    @property
    def input_scale(self) -> Any:
        """The input standardisation's scale, of ``input_mean``'s shape."""

    @property
    def input_scaling(self) -> str:
        """``"none"``, ``"scalar"`` or ``"per-feature"``."""

    def config(self) -> dict[str, Any]:
        """Return the configuration as JSON-ready numbers: ``type(m)(**m.config())``."""

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Return the shape of every parameter, by name."""

    def init(self, rng: Any, *, xp: ModuleType | None = None, device: Any = None) -> Params:
        """Return initial parameters drawn from the NumPy generator ``rng``, moved once."""

    def scale_inputs(self, X: Any, *, xp: ModuleType | None = None) -> Any:
        """Return ``X`` flattened to ``(n_samples, num_inputs)`` and standardised."""

    def without_input_scaling(self) -> Model:
        """Return the same model for inputs already standardised."""

    def forward(self, params: Params, X: Any, *, xp: ModuleType | None = None) -> Any:
        """Return the logits ``(n_samples, num_outputs)`` of inputs ``(n_samples, ...)``."""

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
        """Return per-example losses ``(n_samples,)``, the gradients and the logits."""

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
        """Return per-example losses, gradients and predicted classes ``(n_samples,)``."""

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
        """Return exact losses, the sampled softmax's gradients and predicted classes."""

    def losses_chunked(
        self,
        params: Params,
        X: Any,
        y: Any,
        *,
        chunk_size: int | None = None,
        xp: ModuleType | None = None,
    ) -> tuple[Any, Any]:
        """Return per-example losses and predicted classes, over chunks of classes."""


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
