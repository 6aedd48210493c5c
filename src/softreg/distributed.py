"""Data-parallel training on ``torch.distributed``: one process per rank, launched by torchrun.

Every rank holds the whole dataset and the same parameters. At each step rank ``r`` of ``W``
computes the loss and gradient on its shard ``batch[r::W]`` of the global minibatch; one
all-reduce adds up the ranks' gradient sums, losses, correct counts and rows; every rank then
applies the same update. So ``W`` ranks at global batch ``B`` follow the trajectory of one
process at batch ``B``, up to float32 rounding (the all-reduce adds in another order).
A run is launched by torchrun, one process per rank::

    torchrun --nproc-per-node 2 -m softreg train --backend torch --distributed

Each process reads its place in the job from torchrun's environment (:func:`launch_from_env`)
and joins the others (:func:`init`), which gives it a :class:`Communicator` to hand to
:func:`~softreg.train.fit`. torch is imported lazily: ``import softreg`` never needs it.
"""

from __future__ import annotations

import datetime
import math
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from softreg.errors import ConfigError, DistributedError, require

DEFAULT_TIMEOUT = 300.0
"""Seconds a rank waits for the others in one collective before it gives up.

A rank that dies is noticed at once (its sockets close); this bounds the wait for one that
hangs. Rank 0 writes files at epoch ends while the others wait, so it must not be too short.
"""

LAUNCH_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
"""The environment variables torchrun sets for each process, all of which are needed."""

LAUNCH_HINT = "torchrun --nproc-per-node N -m softreg train --backend torch --distributed ..."
"""How to launch a data-parallel run, for error messages."""


@dataclass(frozen=True)
class Launch:
    """Where this process stands in the job, as torchrun's environment says.

    Attributes
    ----------
    rank : int
        This process's rank, ``0 <= rank < world_size``; rank 0 writes the run directory.
    world_size : int
        Number of processes in the job.
    local_rank : int
        The rank on this node: the number of the GPU it uses.
    master : str
        ``MASTER_ADDR:MASTER_PORT``, where the ranks meet.
    """

    rank: int  # 0 .. world_size - 1; rank 0 writes the run directory
    world_size: int
    local_rank: int  # the rank on this node: the GPU it uses
    master: str  # MASTER_ADDR:MASTER_PORT, where the ranks meet


def launch_from_env(environ: Mapping[str, str] | None = None) -> Launch:
    """Read the variables torchrun sets for each process, or say how to launch.

    Parameters
    ----------
    environ : mapping of str to str, optional
        The environment to read; ``os.environ`` by default.

    Returns
    -------
    Launch
        This process's rank, the number of ranks, its local rank and where the ranks meet.

    Raises
    ------
    ConfigError
        A variable of :data:`LAUNCH_VARIABLES` is missing (the message says how to launch),
        a rank is not an integer, or ``RANK`` is outside ``[0, WORLD_SIZE)``.
    """
    environ = os.environ if environ is None else environ
    missing = [name for name in LAUNCH_VARIABLES if name not in environ]
    if missing:
        raise ConfigError(
            f"--distributed needs the environment torchrun sets "
            f"({', '.join(missing)} missing): launch with {LAUNCH_HINT}"
        )
    try:
        rank, world, local = (int(environ[k]) for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    except ValueError:
        raise ConfigError(
            f"RANK, WORLD_SIZE and LOCAL_RANK must be integers, got "
            f"{environ['RANK']!r}, {environ['WORLD_SIZE']!r}, "
            f"{environ['LOCAL_RANK']!r}"
        ) from None
    if not 0 <= rank < world:
        raise ConfigError(f"RANK must be in [0, WORLD_SIZE={world}), got {rank}")
    return Launch(rank, world, local, f"{environ['MASTER_ADDR']}:{environ['MASTER_PORT']}")


def check_config(config: Any) -> None:
    """Refuse a TrainConfig that data-parallel training cannot run.

    Parameters
    ----------
    config : TrainConfig
        The configuration of the run.

    Raises
    ------
    ConfigError
        ``config.backend`` is not ``"torch"``: training goes through ``torch.distributed``.
    """
    if config.backend != "torch":
        raise ConfigError(
            f"--distributed trains through torch.distributed: it needs "
            f"--backend torch, got {config.backend}"
        )


def init(
    device: str = "cpu",
    *,
    timeout: float = DEFAULT_TIMEOUT,
    environ: Mapping[str, str] | None = None,
) -> Communicator:
    """Join the process group of the job torchrun launched; every rank must call it.

    Parameters
    ----------
    device : str
        The run's ``TrainConfig.device``: ``"cpu"`` (the ranks talk through gloo), or
        ``"cuda"`` / ``"gpu"`` (NCCL; each rank on the GPU numbered by its ``LOCAL_RANK``).
    timeout : float
        Seconds a rank waits for the others in one collective.
    environ : mapping of str to str, optional
        The environment torchrun set; ``os.environ`` by default.

    Returns
    -------
    Communicator
        This rank's part, for :func:`~softreg.train.fit`; its ``close`` leaves the group.

    Raises
    ------
    ConfigError
        Not launched by torchrun (see :func:`launch_from_env`), a timeout that is not a
        positive number, no ``torch.distributed``, or no GPU PyTorch can see.
    MissingDependencyError
        PyTorch is not installed.
    DistributedError
        The ranks could not meet at ``MASTER_ADDR:MASTER_PORT``.
    """
    launch = launch_from_env(environ)
    if not (math.isfinite(timeout) and timeout > 0):
        raise ConfigError(f"the timeout must be a positive number of seconds, got {timeout!r}")
    torch = require("torch", "--distributed", extra="torch")
    import torch.distributed as dist

    if not dist.is_available():
        raise ConfigError(f"this PyTorch build ({torch.__version__}) has no torch.distributed")
    gpu = device != "cpu"
    if gpu:
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {device}: PyTorch sees no CUDA GPU on this machine")
        torch.cuda.set_device(launch.local_rank)  # before anything is put on the GPU
    try:
        dist.init_process_group(
            "nccl" if gpu else "gloo",
            rank=launch.rank,
            world_size=launch.world_size,
            timeout=datetime.timedelta(seconds=timeout),
        )
    except RuntimeError as exc:  # the store's DistNetworkError / DistStoreError among them
        raise DistributedError(
            f"rank {launch.rank} of {launch.world_size}: could not join "
            f"the others at {launch.master} ({_reason(exc)})"
        ) from None
    where = torch.device("cuda", launch.local_rank) if gpu else torch.device("cpu")
    return Communicator(launch.rank, launch.world_size, device=where, timeout=timeout)


class Communicator:
    """A rank's part in the process group of a data-parallel run.

    It satisfies the :class:`softreg.protocols.Communicator` protocol (``rank``,
    ``world_size``, :meth:`all_reduce_sum`, :meth:`agree`) that :func:`~softreg.train.fit`
    takes, over ``torch.distributed``; :func:`init` makes one. Every method is a collective:
    all ranks must call the same ones in the same order. A dead or silent peer becomes a
    :class:`~softreg.errors.DistributedError`.

    Parameters
    ----------
    rank : int
        This process's rank, ``0 <= rank < world_size``.
    world_size : int
        Number of processes in the run.
    device : torch.device
        Where :meth:`agree` puts its tensor (NCCL needs it on the GPU).
    timeout : float
        The timeout the process group was made with, in seconds (error messages say it).

    Attributes
    ----------
    rank : int
        This process's rank.
    world_size : int
        Number of processes in the run.
    device : torch.device
        This rank's device.
    timeout : float
        The collectives' timeout in seconds.
    """

    def __init__(self, rank: int, world_size: int, *, device: Any, timeout: float):
        self.rank, self.world_size = rank, world_size
        self.device = device  # where agree() puts its tensor (NCCL needs it on the GPU)
        self.timeout = timeout

    def all_reduce_sum(self, tree: dict[str, Any]) -> dict[str, Any]:
        """Return ``tree`` summed over the ranks, as new tensors.

        Tensors of one dtype travel in one flat buffer: one collective per dtype.

        Parameters
        ----------
        tree : dict
            A dict (of dicts) of torch tensors on this rank's device, with the same
            structure, shapes and dtypes on every rank.

        Returns
        -------
        dict
            The same structure, each tensor the sum of that tensor over the ranks.

        Raises
        ------
        DistributedError
            Another rank died or did not answer within the timeout.
        """
        import torch
        import torch.distributed as dist

        leaves = _leaves(tree)
        summed: list[Any] = [None] * len(leaves)
        for dtype in dict.fromkeys(leaf.dtype for leaf in leaves):
            group = [i for i, leaf in enumerate(leaves) if leaf.dtype == dtype]
            buffer = torch.cat([leaves[i].reshape(-1) for i in group])
            self._collective(dist.all_reduce, buffer, op=dist.ReduceOp.SUM)
            parts = buffer.split([leaves[i].numel() for i in group])
            for i, part in zip(group, parts, strict=True):
                summed[i] = part.reshape(leaves[i].shape)
        return _rebuild(tree, iter(summed))

    def agree(self, values: dict[str, float]) -> None:
        """Raise a DistributedError on every rank unless all ranks hold the same ``values``.

        What the ranks must share before training, as numbers: the same data, data order,
        position and parameters, say.

        Parameters
        ----------
        values : dict of str to float
            Named numbers, the same names in the same order on every rank; the error
            names those that differ.

        Raises
        ------
        DistributedError
            The values differ between ranks, or another rank died or did not answer within
            the timeout.
        """
        import torch
        import torch.distributed as dist

        mine = torch.tensor(list(values.values()), dtype=torch.float64, device=self.device)
        bounds = torch.cat([mine, -mine])  # one MAX gives the largest and the smallest
        self._collective(dist.all_reduce, bounds, op=dist.ReduceOp.MAX)
        high, low = bounds[: len(values)].tolist(), (-bounds[len(values) :]).tolist()
        differ = [name for name, hi, lo in zip(values, high, low, strict=True) if hi != lo]
        if differ:
            raise DistributedError(
                f"the {self.world_size} ranks do not start from the same {', '.join(differ)} "
                f"(rank {self.rank} has {', '.join(f'{values[n]:g}' for n in differ)}): every "
                f"node needs the same data and the same softreg, NumPy and PyTorch versions"
            )

    def barrier(self) -> None:
        """Wait until every rank has called it.

        Raises
        ------
        DistributedError
            Another rank died or did not answer within the timeout.
        """
        import torch.distributed as dist

        self._collective(dist.barrier)

    def close(self) -> None:
        """Leave the process group, after the last collective; nothing when not in one."""
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()

    def _collective(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        try:
            call(*args, **kwargs)
        except RuntimeError as exc:  # gloo and NCCL report a dead or silent peer this way
            raise DistributedError(
                f"rank {self.rank} of {self.world_size} lost contact with the other ranks "
                f"({_reason(exc)}): another rank died, or did not answer within "
                f"{self.timeout:g} s; see its output. A run with --checkpoint-every "
                f"continues with --resume DIR"
            ) from None


def _leaves(tree: Any) -> list[Any]:
    """Return the leaves of a dict (of dicts), in order."""
    if isinstance(tree, dict):
        return [leaf for value in tree.values() for leaf in _leaves(value)]
    return [tree]


def _rebuild(tree: Any, leaves: Iterator[Any]) -> Any:
    """Return ``tree``'s structure with its leaves taken in order from ``leaves``."""
    if isinstance(tree, dict):
        return {name: _rebuild(value, leaves) for name, value in tree.items()}
    return next(leaves)


def _reason(exc: BaseException) -> str:
    """Return the gist of a gloo/NCCL error: its first sentence, without the source location."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    first = re.sub(r"^\[[^\]]*\]\s*", "", first)
    return first.split(". ")[0].rstrip(".")
