"""Run directories: checked before anything is written, and one writer at a time.

A run directory holds the files of one run (``softreg train``) or one sweep (``softreg
sweep``). :meth:`RunDirectory.check` refuses a directory that cannot be used without touching
anything; :meth:`RunDirectory.open`, called once every other check has passed, creates it and
takes an exclusive operating-system lock (``flock``) on ``.softreg.lock`` inside it, held until
:meth:`RunDirectory.close`. A second process that wants to write the same directory, a second
``--overwrite`` or a ``--resume`` while the run goes on, is refused with one line that names
the holder. The kernel drops the lock when its process ends, however it ends, so a killed run
never leaves a directory locked.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from softreg.errors import RunDirError

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

    Raises
    ------
    RunDirError
        From every method, with one line saying what is wrong.
    """

    def __init__(self, path: str | os.PathLike[str], artifacts: Sequence[str], *,
                 overwrite: bool = False):
        if not os.fspath(path).strip():
            raise RunDirError("the run directory is an empty string; give a directory "
                              "(. for the current one)")
        self.path = Path(path)
        self.artifacts = tuple(artifacts)
        self.overwrite = overwrite
        self._lock_fd: int | None = None
        self._created: list[Path] = []

    # --- before anything is written ---------------------------------------------------------

    def check(self) -> None:
        """Refuse a directory that cannot be used, without touching anything: a file in its
        place, a parent that is not a writable directory, or an earlier run's files (unless
        ``overwrite``)."""
        path = self.path
        if path.exists() and not path.is_dir():
            raise RunDirError(f"{path}: exists and is not a directory")
        if not self.overwrite and self.existing():
            raise RunDirError(f"{path}: already holds a run; choose another --out or pass "
                              f"--overwrite")
        parent = next((p for p in (path, *path.parents) if p.exists()), Path("."))
        if not parent.is_dir():
            raise RunDirError(f"{path}: cannot be created, {parent} is not a directory")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise RunDirError(f"{path}: not writable ({parent} does not allow writing)")

    def existing(self) -> list[Path]:
        """An earlier run's files in the directory."""
        if not self.path.is_dir():
            return []
        return sorted({p for pattern in self.artifacts for p in self.path.glob(pattern)
                       if p.is_file() or p.is_symlink()})

    # --- writing ------------------------------------------------------------------------------

    def open(self) -> None:
        """Create the directory, take its lock and, with ``overwrite``, remove an earlier
        run's files (and temporary files a killed writer left). Call it once every other
        check has passed; after it, files may be written until :meth:`close`."""
        self.check()
        try:
            self._make_directories()
        except OSError as exc:
            raise RunDirError(f"{self.path}: cannot create the run directory "
                              f"({exc.strerror or exc})") from None
        self.lock()
        try:
            # Checked again under the lock: another process may have written a run since.
            earlier = self.existing()
            if earlier and not self.overwrite:
                raise RunDirError(f"{self.path}: already holds a run; choose another --out or "
                                  f"pass --overwrite")
            for leftover in earlier:
                leftover.unlink(missing_ok=True)
            self.remove_temporary_files()
        except BaseException:
            self.close(failed=True)
            raise

    def lock(self) -> None:
        """Take the directory's lock (it must exist), or refuse naming the process that holds
        it. Taking it twice through the same object is a no-op."""
        if self._lock_fd is not None:
            return
        path = self.path / LOCK_FILE
        while True:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as exc:
                raise RunDirError(f"{self.path}: cannot lock the run directory "
                                  f"({exc.strerror or exc})") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                holder = _read_holder(fd)
                os.close(fd)
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise RunDirError(f"{self.path}: cannot lock the run directory "
                                      f"({exc.strerror or exc})") from None
                raise RunDirError(f"{self.path}: another softreg process is writing this run "
                                  f"directory ({holder}); wait for it to finish or choose "
                                  f"another --out") from None
            # The holder before us may have removed the file after we opened it: our lock is
            # then on a file nobody else will see. Start again on the file that is there.
            if _same_file(fd, path):
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, _holder_line().encode())
        self._lock_fd = fd

    def close(self, *, failed: bool = False) -> None:
        """Release the lock (removing the lock file). With ``failed``, directories
        :meth:`open` created are removed again when nothing was written into them."""
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                (self.path / LOCK_FILE).unlink()  # while still locked: see lock()
            os.close(self._lock_fd)
            self._lock_fd = None
        if failed:
            for directory in reversed(self._created):
                with contextlib.suppress(OSError):
                    directory.rmdir()  # only if empty
        self._created = []

    def remove_temporary_files(self) -> None:
        """A killed writer leaves the temporary file it was writing (never a half-written
        file under a real name): ``.<artifact>.<random>.tmp``. Remove softreg's own."""
        for pattern in self.artifacts:
            for leftover in self.path.glob(f".{pattern}.*.tmp"):
                leftover.unlink(missing_ok=True)

    def __enter__(self) -> RunDirectory:
        return self

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        self.close(failed=kind is not None)

    def _make_directories(self) -> None:
        missing = [p for p in (self.path, *self.path.parents) if not p.exists()]
        for directory in reversed(missing):
            try:
                directory.mkdir()
            except FileExistsError:  # another process made it meanwhile: not ours to remove
                continue
            self._created.append(directory)


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (mine.st_dev, mine.st_ino) == (st.st_dev, st.st_ino)


def _holder_line() -> str:
    command = " ".join(["softreg", *sys.argv[1:]]) if sys.argv else "softreg"
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    return f"pid {os.getpid()} on {socket.gethostname()}, since {started}: {command}"[:500]


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 500, 0).decode("utf-8", "replace")
    except OSError:
        text = ""
    text = "".join(c if c.isprintable() else "?" for c in text.strip())
    return text or "a process that has not yet said who it is"
