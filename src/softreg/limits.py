"""Bounds on what outside input may make softreg allocate.

Files declare their sizes (an IDX header, a ``.npy`` header, a safetensors header, a PNG's
dimensions); a damaged or hostile file can declare far more than it holds or than the machine
has. Readers check a declaration here *before* allocating for it, so such a file is refused
with one line that says how much it asked for, never with a ``MemoryError`` or the operating
system's out-of-memory killer.
"""

from __future__ import annotations

import os

from softreg.errors import SoftregError

__all__ = ["available_memory", "check_fits_in_memory", "format_bytes"]


def available_memory() -> int | None:
    """Return the bytes of memory this process could still allocate.

    Linux's ``MemAvailable`` (free memory plus what the kernel can reclaim from caches), or
    the physical memory size where that is not known; and, in a container or batch job whose
    control group has a memory limit, no more than that limit leaves.

    Returns
    -------
    int or None
        Bytes, or None where that is unknown.
    """
    return _least(_machine_memory(), _cgroup_memory())


def _least(*values: int | None) -> int | None:
    """Return the least of the known values, or None."""
    known = [v for v in values if v is not None]
    return min(known) if known else None


def _machine_memory() -> int | None:
    """Return Linux's MemAvailable, else the physical memory size, else None."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # the value is in kB
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not a POSIX system
        return None


# Control group v2 and v1: the limit and the usage of this process's group.
_CGROUP_FILES = (
    ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
    ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
)


def _cgroup_memory() -> int | None:
    """Return what this process's control group may still allocate, or None."""
    for limit_file, usage_file in _CGROUP_FILES:
        try:
            with open(limit_file) as f:
                limit = f.read().strip()
            with open(usage_file) as f:
                usage = int(f.read().strip())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 2**60:  # "max", or v1's "no limit" (about 2**63)
            return max(int(limit) - usage, 0)
    return None


def check_fits_in_memory(nbytes: int, what: str, error: type[SoftregError] = SoftregError) -> None:
    """Raise ``error`` when ``nbytes`` cannot be allocated here.

    Parameters
    ----------
    nbytes : int
        The bytes a declaration asks for.
    what : str
        Starts the message and names the declaration, e.g. ``"data.idx: the header declares
        10000000x28x28 uint8 values,"``; the rest says how much that is and how much memory
        there is.
    error : type of SoftregError
        The exception raised.

    Raises
    ------
    SoftregError
        (``error``) ``nbytes`` is more than :func:`available_memory`.
    """
    available = available_memory()
    if available is not None and nbytes > available:
        raise error(
            f"{what} {format_bytes(nbytes)}, more than the {format_bytes(available)} "
            f"of memory available"
        )


def format_bytes(nbytes: float) -> str:
    """Return a number of bytes for people: ``1536`` -> ``"1.5 kB"``.

    Decimal units, as ``df -H`` and the disk makers count.

    Parameters
    ----------
    nbytes : float
        The number of bytes.

    Returns
    -------
    str
        Whole bytes below 1000, else one decimal and kB, MB, GB, TB or PB.
    """
    for unit in ("bytes", "kB", "MB", "GB", "TB", "PB"):
        if abs(nbytes) < 1000 or unit == "PB":
            return f"{nbytes:.0f} {unit}" if unit == "bytes" else f"{nbytes:.1f} {unit}"
        nbytes /= 1000
    raise AssertionError("unreachable")
