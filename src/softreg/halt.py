"""Divergence recorded on the device: a step that keeps the state once a loss is not finite.

Reading each step's loss on the host would make the host wait for the device at every step.
Instead a step selects, on the device, between its new state and the old one, and records
in a :class:`Halt` how many steps it kept and the first loss that was not finite; ``fit``
looks at the record once per segment of steps (:mod:`softreg.segment`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from softreg import backend


class Halt(NamedTuple):
    """Where a run of steps stopped being finite, recorded on the device (``StepRules.freeze``).

    Attributes
    ----------
    steps : 0-d int32 array
        Steps taken (their updates kept) since this record was made.
    loss : 0-d float32 array
        0 while every loss has been finite; then the first batch loss that was not (NaN or
        infinite), after which no step changes the state.
    """

    steps: Any
    loss: Any


def fresh_halt(be: backend.Backend) -> Halt:
    """Return a :class:`Halt` that records no step yet, on ``be``'s device.

    Parameters
    ----------
    be : Backend
        Where the record goes.

    Returns
    -------
    Halt
        ``steps`` 0 (int32) and ``loss`` 0 (float32).
    """
    return Halt(be.zero("int32"), be.zero("float32"))


def freeze_unless_finite(old: Any, new: Any, batch_loss: Any, *, xp: Any) -> Any:
    """Return ``new``, or ``old`` when this batch's loss or an earlier one was not finite.

    Selected on the device (no host read); ``halt`` counts the steps kept and records the
    first loss that was not finite.

    Parameters
    ----------
    old, new : Carry
        The carry before the step and after it (not updated in place).
    batch_loss : 0-d array
        The step's summed loss.
    xp : namespace
        The arrays' namespace.

    Returns
    -------
    Carry
        ``new`` with ``halt`` counting it, or ``old`` with ``halt`` recording the loss.
    """
    healthy = xp.isfinite(old.halt.loss)
    finite = xp.isfinite(batch_loss)
    ok = healthy & finite
    halt = Halt(
        steps=old.halt.steps + xp.astype(ok, old.halt.steps.dtype),
        loss=xp.where(healthy & ~finite, batch_loss, old.halt.loss),
    )
    kept = _select(ok, new[:3], old[:3], xp)
    return type(new)(*kept, halt)


def _select(ok: Any, new: Any, old: Any, xp: Any) -> Any:
    """Return ``new`` where ``ok``, else ``old``, through tuples and dicts of arrays."""
    if isinstance(new, dict):
        return {name: _select(ok, value, old[name], xp) for name, value in new.items()}
    if isinstance(new, tuple):
        return tuple(_select(ok, value, old[i], xp) for i, value in enumerate(new))
    return xp.where(ok, new, old)
