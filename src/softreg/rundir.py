"""Run directories: checked before anything is written, and one writer at a time.

A run directory holds the files of one run (``softreg train``) or one sweep (``softreg
sweep``). :meth:`RunDirectory.check` refuses a directory that cannot be used without touching
anything. :meth:`RunDirectory.acquire`, called once every other check has passed, creates it
and takes an exclusive operating-system lock (``flock``) on ``.softreg.lock`` inside it, held
until :meth:`RunDirectory.close`; :meth:`RunDirectory.clear` removes an earlier run's files
when the new one starts writing. A second process that wants to write the same directory, a
second ``--overwrite`` or a ``--resume`` while the run goes on, is refused with one line that
names the holder. The kernel drops the lock when its process ends, however it ends, so a
killed run never leaves a directory locked.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
import stat
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from softreg.errors import RunDirError
from softreg.fileio import make_directories, remove_empty_directories

__all__ = ["LOCK_FILE", "RunDirectory"]

LOCK_FILE = ".softreg.lock"


class RunDirectory:
    """The directory ``path`` of a run whose files match the glob patterns ``artifacts``.

    Parameters
    ----------
    path : str or Path
        The directory. The empty string is refused: it would put the run's files in the
        current directory unnoticed (pass ``"."`` to mean that).
    artifacts : sequence of str
        Glob patterns of the files a run writes there (e.g. ``"config.json"``,
        ``"sweep-*.csv"``). An earlier run's files are never overwritten unless
        ``overwrite``; other files in the directory are never touched.
    overwrite : bool
        Replace an earlier run: its files are removed when the directory is opened.
    what : str
        What messages call the directory.

    Raises
    ------
    RunDirError
        From every method, with one line saying what is wrong.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        artifacts: Sequence[str],
        *,
        overwrite: bool = False,
        what: str = "run directory",
    ):
        self.what = what  # what messages call it
        if not os.fspath(path).strip():
            raise RunDirError(
                f"the {what} is an empty string; give a directory (. for the current one)"
            )
        self.path = Path(path)
        self.artifacts = tuple(artifacts)
        self.overwrite = overwrite
        self._lock_fd: int | None = None
        self._created: list[Path] = []

    # --- before anything is written ---------------------------------------------------------

    def check(self) -> None:
        """Refuse a directory that cannot be used, without touching anything.

        Raises
        ------
        RunDirError
            A file is in its place, its parent is not a writable directory, or it holds an
            earlier run's files (unless ``overwrite``).
        """
        path = self.path
        try:
            if path.exists() and not path.is_dir():
                raise RunDirError(f"{path}: exists and is not a directory")
            if not self.overwrite and self.existing():
                raise RunDirError(
                    f"{path}: already holds a run; choose another --out or pass --overwrite"
                )
            parent = next((p for p in (path, *path.parents) if p.exists()), Path("."))
            if not parent.is_dir():
                raise RunDirError(f"{path}: cannot be created, {parent} is not a directory")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise RunDirError(f"{path}: not writable ({parent} does not allow writing)")
        except OSError as exc:  # a directory that cannot even be looked at
            raise RunDirError(f"{path}: cannot be used ({exc.strerror or exc})") from None

    def existing(self) -> list[Path]:
        """Return an earlier run's files in the directory.

        Returns
        -------
        list of Path
            The files (or links) matching ``artifacts``, sorted; empty when the directory
            does not exist.
        """
        if not self.path.is_dir():
            return []
        return sorted(
            {
                p
                for pattern in self.artifacts
                for p in self.path.glob(pattern)
                if p.is_file() or p.is_symlink()
            }
        )

    # --- writing ------------------------------------------------------------------------------

    def open(self) -> None:
        """Make the directory ready for a new run's files: :meth:`acquire`, then :meth:`clear`.

        Raises
        ------
        RunDirError
            As :meth:`acquire` and :meth:`clear`.
        """
        self.acquire()
        self.clear()

    def acquire(self) -> None:
        """Create the directory and take its lock, once every other check has passed.

        An earlier run's files there (which may have appeared since :meth:`check`) are
        refused unless ``overwrite``. Until :meth:`close`, no other process writes here.

        Raises
        ------
        RunDirError
            As :meth:`check` and :meth:`lock`, or the directory cannot be created.
        """
        self.check()
        try:
            self._created = make_directories(self.path)
        except OSError as exc:
            raise RunDirError(
                f"{self.path}: cannot create the {self.what} ({exc.strerror or exc})"
            ) from None
        try:
            self.lock()
            if self.existing() and not self.overwrite:
                raise RunDirError(
                    f"{self.path}: already holds a run; choose another --out or pass --overwrite"
                )
        except BaseException:
            self.close(failed=True)
            raise

    def clear(self) -> None:
        """Remove an earlier run's files, and the temporary files a killed writer left.

        The lock must be held.

        Raises
        ------
        RunDirError
            A file cannot be removed.
        """
        try:
            for earlier in self.existing():
                earlier.unlink(missing_ok=True)
            self.remove_temporary_files()
        except OSError as exc:
            raise RunDirError(
                f"{self.path}: cannot remove an earlier run's files ({exc.strerror or exc})"
            ) from None

    def lock(self) -> None:
        """Take the directory's lock (it must exist); taking it twice is a no-op.

        Raises
        ------
        RunDirError
            Another process holds the lock (naming it), or the lock file cannot be opened
            or written.
        """
        if self._lock_fd is not None:
            return
        path = self.path / LOCK_FILE
        while True:
            fd = self._open_lock_file(path)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                holder = _read_holder(fd)
                os.close(fd)
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise RunDirError(
                        f"{self.path}: cannot lock the {self.what} ({exc.strerror or exc})"
                    ) from None
                raise RunDirError(
                    f"{self.path}: another softreg process is writing this run "
                    f"directory ({holder}); wait for it to finish or choose "
                    f"another --out"
                ) from None
            # The holder before us may have removed the file after we opened it: our lock is
            # then on a file nobody else will see. Start again on the file that is there.
            if _same_file(fd, path):
                break
            os.close(fd)
        try:
            os.ftruncate(fd, 0)
            os.write(fd, _holder_line().encode())
        except OSError as exc:
            os.close(fd)  # releases the lock too
            raise RunDirError(
                f"{self.path}: cannot write {LOCK_FILE} ({exc.strerror or exc})"
            ) from None
        self._lock_fd = fd

    def _open_lock_file(self, path: Path) -> int:
        """Return a descriptor of the lock file, created if missing; never through a link."""
        try:
            # O_NOFOLLOW: a link planted in its place must not make softreg write (or later
            # remove) a file outside the directory.
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            why = "it is a symbolic link" if exc.errno == errno.ELOOP else exc.strerror or exc
            raise RunDirError(
                f"{self.path}: cannot lock the {self.what}: {LOCK_FILE} cannot be opened ({why})"
            ) from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise RunDirError(
                f"{self.path}: cannot lock the {self.what}: {LOCK_FILE} is not a regular file"
            )
        return fd

    def close(self, *, failed: bool = False) -> None:
        """Release the lock, removing the lock file.

        Parameters
        ----------
        failed : bool
            The run failed: directories :meth:`acquire` created are removed again when
            nothing was written into them.
        """
        if self._lock_fd is not None:
            if _same_file(self._lock_fd, self.path / LOCK_FILE):  # ours, still: remove it
                with contextlib.suppress(OSError):
                    (self.path / LOCK_FILE).unlink()  # while still locked: see lock()
            os.close(self._lock_fd)
            self._lock_fd = None
        if failed:
            remove_empty_directories(self._created)
        self._created = []

    def remove_temporary_files(self) -> None:
        """Remove the temporary files softreg's killed writers left.

        A killed writer leaves the temporary file it was writing (never a half-written file
        under a real name): ``.<artifact>.<random>.tmp``.
        """
        for pattern in self.artifacts:
            for leftover in self.path.glob(f".{pattern}.*.tmp"):
                leftover.unlink(missing_ok=True)

    def __enter__(self) -> RunDirectory:
        """Return the directory, to be closed when the ``with`` block ends."""
        return self

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        """Close it, as failed when the block raised."""
        self.close(failed=kind is not None)


def _same_file(fd: int, path: Path) -> bool:
    """Return whether ``path`` (not followed if a link) is the file open as ``fd``."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    mine = os.fstat(fd)
    return (mine.st_dev, mine.st_ino) == (st.st_dev, st.st_ino)


def _holder_line() -> str:
    """Return what the lock file says of its holder: process, host, start, command line."""
    command = " ".join(getattr(sys, "orig_argv", sys.argv))  # the command line as typed
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    return f"pid {os.getpid()} on {socket.gethostname()}, since {started}: {command}"[:500]


def _read_holder(fd: int) -> str:
    """Return the holder's line from a lock file, printable."""
    try:
        text = os.pread(fd, 500, 0).decode("utf-8", "replace")
    except OSError:
        text = ""
    text = "".join(c if c.isprintable() else "?" for c in text.strip())
    return text or "a process that has not yet said who it is"
