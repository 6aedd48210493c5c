"""How a run is carried out, apart from what it trains: :class:`RunOptions`.

:func:`softreg.runs.train_run` and :func:`softreg.runs.resume_run` take the same options:
where the data is, what is shown and drawn, how often the training state is saved, and which
rank of a data-parallel run this process is. What is trained lives in
:class:`~softreg.config.TrainConfig` and is written to the run's ``config.json``; these
options are not.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from softreg.checks import check_int
from softreg.errors import ConfigError

if TYPE_CHECKING:
    from softreg.callbacks import Callback
    from softreg.protocols import Communicator

MAX_SHOW = 100  # images in a prediction grid: a 10 x 10 grid is as much as anyone reads


@dataclass(frozen=True)
class RunOptions:
    """Options of a run that do not change what it trains.

    Every field is checked when the options are made, before any file is read or written.

    Attributes
    ----------
    data_dir : str, Path or None
        Where the dataset files are; None looks in ``$SOFTREG_DATA`` and the usual caches,
        then downloads (see :func:`softreg.load_dataset`).
    progress : bool
        Show a bar over each epoch's steps, the running loss and one line per epoch on
        ``stream`` (and download progress on stderr).
    plots : bool
        Draw ``curves.png``/``.svg`` and the prediction grids; needs matplotlib.
    n_show : int
        Images in each prediction grid, 0 to :data:`MAX_SHOW`.
    stream : text stream or None
        Where the progress lines go; None is ``sys.stdout``.
    callbacks : tuple of Callback
        More hooks for ``fit``, called after the run's own (files, progress, figures).
    checkpoint_every : int or None
        Save the training state to ``checkpoint.safetensors`` at the start, every this many
        steps and at the end, so that :func:`~softreg.runs.resume_run` can continue the run
        after the process is killed at any point. 0 saves none. None is 0 for a new run and
        the run's own setting for a resumed one.
    communicator : Communicator or None
        This process's place in a data-parallel run (:mod:`softreg.distributed`): every rank
        trains, only rank 0 writes the run directory and shows progress. None: a single
        process.

    Raises
    ------
    ConfigError
        ``n_show`` or ``checkpoint_every`` is out of range or not an integer.
    """

    data_dir: str | Path | None = None
    progress: bool = True
    plots: bool = True
    n_show: int = 16
    stream: TextIO | None = None
    callbacks: tuple[Callback, ...] = ()
    checkpoint_every: int | None = None  # None: 0 for a new run, the run's own when resumed
    communicator: Communicator | None = None  # this rank of a data-parallel run

    def __post_init__(self) -> None:
        """Check the fields; store ``callbacks`` as a tuple."""
        if self.checkpoint_every is not None:
            every = check_int("checkpoint_every", self.checkpoint_every, minimum=0)
            object.__setattr__(self, "checkpoint_every", every)
        n_show = self.n_show
        if isinstance(n_show, bool) or not isinstance(n_show, int) or not 0 <= n_show <= MAX_SHOW:
            raise ConfigError(f"the prediction grids show 0 to {MAX_SHOW} images, got {n_show!r}")
        object.__setattr__(self, "callbacks", tuple(self.callbacks))

    @property
    def writes(self) -> bool:
        """Whether this process writes the run directory (rank 0, or the only process)."""
        return self.communicator is None or self.communicator.rank == 0
