"""The ``softreg`` command: parse flags into a config, call the library, print.

Errors a user can fix (bad flags, missing data, damaged files) print one line on stderr and
exit with status 2; no traceback. So does anything unexpected (a defect), with a hint to
rerun with ``--debug`` (or ``SOFTREG_DEBUG=1``), which shows the traceback.

The parser is in :mod:`softreg.cli.parser` (the configuration flags in
:mod:`softreg.cli.flags`); the commands that train in :mod:`softreg.cli.training`, those that
read a saved model or a dataset in :mod:`softreg.cli.inspection`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator

from softreg.cli.inspection import cmd_data, cmd_evaluate, cmd_predict, cmd_stability
from softreg.cli.parser import DEBUG_VAR, build_parser
from softreg.cli.training import cmd_sweep, cmd_train
from softreg.errors import SoftregError, printable

__all__ = ["COMMANDS", "build_parser", "main"]

# Each subcommand's function: it takes the parsed flags and returns the exit status.
COMMANDS = {
    "train": cmd_train,
    "sweep": cmd_sweep,
    "evaluate": cmd_evaluate,
    "predict": cmd_predict,
    "data": cmd_data,
    "stability": cmd_stability,
}


def main(argv: list[str] | None = None) -> int:
    """Run the ``softreg`` command.

    Parameters
    ----------
    argv : list of str or None
        The arguments after ``softreg``; None reads ``sys.argv``.

    Returns
    -------
    int
        The exit status: 0 on success; 2 for an error, said in one line on stderr;
        ``128 + signal`` when interrupted (Ctrl-C) or terminated (SIGTERM), after cleaning
        up. A usage error exits with 2 from the parser.
    """
    args = build_parser().parse_args(argv)
    debug = args.debug or os.environ.get(DEBUG_VAR, "") not in ("", "0")
    with _sigterm_as_exception():
        try:
            return COMMANDS[args.command](args)
        except BrokenPipeError:  # the reader went away (softreg stability | head): not an error
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        except KeyboardInterrupt:
            print(f"softreg {args.command}: interrupted", file=sys.stderr)
            return 128 + signal.SIGINT
        except _Terminated:
            print(f"softreg {args.command}: terminated", file=sys.stderr)
            return 128 + signal.SIGTERM
        except Exception as exc:
            if debug and not isinstance(exc, SoftregError):
                raise
            return _error(args.command, _failure_message(exc))


def _failure_message(exc: Exception) -> str:
    """Say what went wrong, in one line: the user's error, the system's, or a defect."""
    if isinstance(exc, SoftregError):
        return str(exc)
    if isinstance(exc, OSError):  # e.g. a full disk or a permission problem while writing
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror or exc}"
    if isinstance(exc, MemoryError):
        return "out of memory; try a smaller --batch-size, --eval-batch-size or model"
    return (  # a defect: still one line, and the way to see more
        f"unexpected {type(exc).__name__}: {exc} (this is a "
        f"defect in softreg; rerun with --debug or "
        f"{DEBUG_VAR}=1 for the traceback, and please report "
        f"it)"
    )


class _Terminated(BaseException):
    """SIGTERM, raised where the process is, so that cleanup runs as it does for Ctrl-C.

    Temporary files are removed and the run directory's lock released.
    """


@contextlib.contextmanager
def _sigterm_as_exception() -> Iterator[None]:
    """Turn SIGTERM into :class:`_Terminated` while the command runs (main thread only)."""
    if threading.current_thread() is not threading.main_thread():  # signals: main thread only
        yield
        return

    def terminate(signum: int, frame: object) -> None:
        raise _Terminated

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _error(command: str, message: str) -> int:
    """Print ``message`` as one line on stderr and return 2.

    Control characters are escaped, so that text from a hostile file cannot move the cursor
    or clear the screen.
    """
    print(f"softreg {command}: error: {printable(message)}", file=sys.stderr)
    return 2
