"""Byte-count progress bars for downloads: tqdm when installed, else a plain percentage."""

from __future__ import annotations

import sys
from typing import Any, TextIO

__all__ = ["progress_bar"]


def progress_bar(total: int | None, desc: str, *, enabled: bool = True) -> Any:
    """A context manager with ``update(nbytes)`` that reports progress on stderr.

    ``total`` is the expected number of bytes, or None when unknown. tqdm is imported
    lazily because it is an optional dependency; without it a percentage line is printed.
    """
    if not enabled:
        return _SilentBar()
    try:
        from tqdm import tqdm
    except ImportError:
        return _PercentBar(total, desc, sys.stderr)
    return tqdm(
        total=total,
        desc=desc,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        file=sys.stderr,
        dynamic_ncols=True,
    )


class _SilentBar:
    def update(self, n: int) -> None:
        pass

    def __enter__(self) -> _SilentBar:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class _PercentBar:
    """Rewrites one stderr line when the whole percentage (or MiB count, if the total is
    unknown) changes, so a slow download prints at most about a hundred updates.
    """

    def __init__(self, total: int | None, desc: str, stream: TextIO) -> None:
        self.total = total if total else None
        self.desc = desc
        self.stream = stream
        self.done = 0
        self.shown: int | None = None

    def update(self, n: int) -> None:
        self.done += n
        if self.total:
            step = min(100, self.done * 100 // self.total)
            text = f"{self.desc}: {step:3d}%"
        else:
            step = self.done >> 20
            text = f"{self.desc}: {step} MiB"
        if step != self.shown:
            self.shown = step
            self.stream.write(f"\r{text}")
            self.stream.flush()

    def __enter__(self) -> _PercentBar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.shown is not None:
            self.stream.write("\n")
            self.stream.flush()
