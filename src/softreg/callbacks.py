"""The hooks ``fit`` calls while it trains.

Progress bars, live plots and run-directory files are callbacks that read what ``fit``
reports; ``fit`` itself never prints or writes.
"""

from __future__ import annotations

from softreg.config import TrainConfig
from softreg.history import EpochRecord, History, StepRecord, TrainState


class Callback:
    """Hooks ``fit`` calls as it trains; override what you need, the others do nothing.

    ``fit`` calls the hooks of each callback in the order the callbacks were given. Time
    spent in them is not training time: it is left out of every ``seconds`` that ``fit``
    reports. The records, history and states passed in are ``fit``'s own: read them, do not
    change them.

    See Also
    --------
    softreg.train.fit : Train a model, calling these hooks.
    """

    def on_train_begin(self, config: TrainConfig, steps_per_epoch: int, state: TrainState) -> None:
        """Act before training: called once, before the first step.

        Parameters
        ----------
        config : TrainConfig
            The run's configuration.
        steps_per_epoch : int
            Optimiser steps in each epoch.
        state : TrainState
            The state training starts from: a fresh one, or the one a run continues from
            (whose ``epoch`` and ``batch`` say how many steps are left).
        """

    #: Steps between two calls of :meth:`on_progress`, at most (0: no calls). Read once,
    #: after :meth:`on_train_begin`, which may set it from the number of steps.
    progress_every: int = 0

    def on_step_end(self, step: int, epoch: int) -> None:
        """Act after a step: called after every optimiser step.

        A callback that overrides this hook makes training come back to Python after every
        step; to follow progress, :meth:`on_progress` costs less.

        Parameters
        ----------
        step : int
            Optimiser steps done in the whole run, this one included.
        epoch : int
            The epoch the step belongs to, 0-based.
        """

    def on_progress(self, step: int, epoch: int) -> None:
        """Follow the steps: called after a run of at most ``progress_every`` steps.

        Cheaper than :meth:`on_step_end`: training runs the steps in between without
        coming back to Python (a compiled loop on JAX and TensorFlow).

        Parameters
        ----------
        step : int
            Optimiser steps done in the whole run so far.
        epoch : int
            The epoch of the last of them, 0-based.
        """

    def on_log(self, record: StepRecord, history: History) -> None:
        """Receive the running loss: called every ``config.log_every`` batches, after the step.

        Parameters
        ----------
        record : StepRecord
            The report, already appended to ``history.steps``.
        history : History
            The run's history so far.
        """

    def on_epoch_end(self, record: EpochRecord, history: History, state: TrainState) -> None:
        """Receive an epoch's record: called at the end of every epoch.

        Called after the epoch's evaluation on the test data (when there is test data) and
        its check for overflowed weights.

        Parameters
        ----------
        record : EpochRecord
            The epoch's record, already appended to ``history.records``.
        history : History
            The run's history so far.
        state : TrainState
            A copy of the state at the end of the epoch; training can continue from it.
        """

    def on_checkpoint(self, state: TrainState, history: History) -> None:
        """Receive a checkpoint: called every ``checkpoint_every`` steps of the run.

        Only when :func:`~softreg.train.fit` is given ``checkpoint_every > 0``; called after
        ``on_step_end`` and ``on_log`` of the same step.

        Parameters
        ----------
        state : TrainState
            A copy of the state, which may be in the middle of an epoch; training can
            continue from it.
        history : History
            The run's history so far.
        """

    def on_train_end(self, history: History, state: TrainState) -> None:
        """Act after training: called once, after the last epoch's ``on_epoch_end``.

        Not called when training stops with an error (a divergence, say).

        Parameters
        ----------
        history : History
            The run's complete history.
        state : TrainState
            The final state, the one :class:`~softreg.history.FitResult` holds.
        """


def wants_every_step(callback: Callback) -> bool:
    """Return whether ``callback`` has its own ``on_step_end`` (on its class or itself).

    Training then comes back to Python after every step to call it.

    Parameters
    ----------
    callback : Callback
        A callback given to ``fit``.

    Returns
    -------
    bool
        True unless ``on_step_end`` is :class:`Callback`'s, which does nothing.
    """
    own = type(callback).on_step_end is not Callback.on_step_end
    return own or "on_step_end" in vars(callback)
