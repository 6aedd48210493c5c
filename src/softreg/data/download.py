"""Download a dataset's four files from its mirrors, verifying each official MD5.

A file appears under its final name only once it is complete and verified: bytes stream
to ``<file>.part`` next to it, which is fsynced and renamed over the final name only after
its MD5 matches. An interrupted transfer (dropped connection, Ctrl-C, killed process) keeps
the part, and the next attempt resumes it with an HTTP Range request; a part whose bytes
fail the checksum is deleted, since they may belong to another version of the file.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any
from urllib.error import HTTPError
from urllib.request import Request, urlopen

from softreg.data.catalog import (
    ENV_VAR,
    DataError,
    DatasetSpec,
    dataset_spec,
    default_cache_dir,
    expand_user,
)
from softreg.fileio import fsync_directory, make_directories, remove_empty_directories
from softreg.progress import progress_bar

__all__ = ["download_dataset", "file_md5"]

TIMEOUT_S = 30.0
CHUNK_BYTES = 1 << 20
USER_AGENT = "softreg-dataset-downloader"
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-\d+/(?:\d+|\*)")


def download_dataset(
    name: str,
    dest: str | os.PathLike[str] | None = None,
    *,
    mirrors: Sequence[str] | None = None,
    progress: bool = True,
) -> Path:
    """Download the four files of a dataset, verified, and return where they are.

    Each file is tried on every mirror in turn and kept only if its MD5 matches the
    official one. Files already in ``dest`` with the right MD5 are not downloaded again. A
    ``<file>.part`` left by an interrupted download is resumed with an HTTP Range request
    where the server supports it. If the call fails, the directories it created and left
    empty are removed.

    Parameters
    ----------
    name : str
        A known dataset, e.g. ``"fashion-mnist"`` (see :data:`~softreg.data.DATASETS`).
    dest : str or os.PathLike, optional
        The directory to download into (``~`` is expanded); by default
        ``default_cache_dir() / name``, where :func:`~softreg.data.load_dataset` looks.
    mirrors : sequence of str, optional
        Base URLs to use instead of the dataset's own (``file://`` works too).
    progress : bool, default True
        Show a progress bar per file on stderr (tqdm when installed).

    Returns
    -------
    pathlib.Path
        ``dest``, holding the four official ``.gz`` files.

    Raises
    ------
    DataError
        ``name`` is unknown, or a file could not be had with the right checksum from any
        mirror (the message names the URLs tried and the last error).
    ValueError
        ``mirrors`` is empty.
    """
    spec = dataset_spec(name)
    if dest is None:
        dest = default_cache_dir() / spec.name
    else:
        dest = expand_user(dest, f"download destination {os.fspath(dest)}")
    bases = tuple(spec.mirrors if mirrors is None else mirrors)
    if not bases:
        raise ValueError("download_dataset: no mirrors to download from")
    created = make_directories(dest)
    try:
        for role, file_name in spec.files.items():
            target = dest / file_name
            if target.is_file() and file_md5(target) == spec.md5[role]:
                continue
            _fetch(spec, file_name, spec.md5[role], target, bases, progress)
    except BaseException:
        remove_empty_directories(created)  # nothing fetched: no empty directories left
        raise
    return dest


def file_md5(path: Path) -> str:
    """Return the MD5 of a file's bytes, read in chunks.

    Parameters
    ----------
    path : pathlib.Path
        The file.

    Returns
    -------
    str
        The digest as 32 lowercase hex digits.

    Raises
    ------
    OSError
        The file cannot be read.
    """
    return _md5_of(path).hexdigest()


def _md5_of(path: Path) -> Any:
    """Return a hashlib MD5 object fed with the bytes of ``path``."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest


def _fetch(
    spec: DatasetSpec,
    file_name: str,
    md5: str,
    target: Path,
    bases: tuple[str, ...],
    progress: bool,
) -> None:
    """Download ``file_name`` into ``target`` from the first mirror that serves it verified."""
    urls = [base if base.endswith("/") else base + "/" for base in bases]
    urls = [base + file_name for base in urls]
    last_error = ""
    for url in urls:
        try:
            _download_verified(url, target, md5, progress)
            return
        # URLError/HTTPError/timeouts are OSErrors; IncompleteRead is an HTTPException;
        # urlopen raises ValueError for a malformed URL; DataError is a checksum mismatch.
        except (OSError, http.client.HTTPException, ValueError, DataError) as exc:
            last_error = f"{url}: {exc}"
    hint = f"set {ENV_VAR} to a directory holding the four files (or a {spec.name}/ folder of them)"
    if spec.debian_package:
        hint += f", or on Debian/Ubuntu `apt-get install {spec.debian_package}`"
    raise DataError(
        f"could not download {file_name} of {spec.name} from any mirror "
        f"(tried {', '.join(urls)}); last error: {last_error}; {hint}"
    )


def _download_verified(url: str, target: Path, md5: str, progress: bool) -> None:
    """Bring ``target``'s part file up to date from ``url``, verify it, and publish it.

    A resumed part that fails the MD5 may hold bytes of another version of the file, so it
    is dropped and the download restarts from zero once; bytes that fail a fresh download
    are dropped too, so that the next mirror starts clean.
    """
    part = target.with_name(target.name + ".part")
    resumed, got = _transfer(url, part, target.name, progress)
    if got != md5 and resumed:
        part.unlink()
        resumed, got = _transfer(url, part, target.name, progress)
    if got != md5:
        part.unlink(missing_ok=True)
        raise DataError(f"MD5 mismatch: expected {md5}, got {got}")
    os.replace(part, target)
    fsync_directory(target.parent)


def _transfer(url: str, part: Path, desc: str, progress: bool) -> tuple[bool, str]:
    """Stream ``url`` into ``part``, appending if the server sends just the missing bytes.

    Return whether it resumed and the MD5 of the whole part. A broken or short transfer
    raises and keeps the bytes received (even on KeyboardInterrupt: they are what a resume
    needs, and the MD5 still guards them), but never an empty part.
    """
    held = part.stat().st_size if part.is_file() else 0
    response, start = _open_from(url, held)
    with response:
        digest = _md5_of(part) if start else hashlib.md5(usedforsecurity=False)
        length = _content_length(response)
        total = None if length is None else start + length
        try:
            with (
                open(part, "ab" if start else "wb") as out,
                progress_bar(total, desc, enabled=progress) as bar,
            ):
                if start:
                    bar.update(start)
                size = start + _copy(response, out, digest, bar)
                if total is not None and size != total:
                    raise OSError(f"short read: got {size} of {total} bytes")
                os.fsync(out.fileno())
        except BaseException:
            _drop_if_empty(part)
            raise
    return start > 0, digest.hexdigest()


def _open_from(url: str, offset: int) -> tuple[Any, int]:
    """Open ``url`` for its bytes from ``offset`` on (all of them when ``offset`` is 0).

    Return the response and where its body starts in the file: ``offset`` for a 206 with a
    matching Content-Range, else 0, as the whole file follows (a server that ignores Range
    answers 200; file:// responses have no status). A 416, or a 206 for other bytes, means
    the part is no usable prefix, so the file is asked for again from the start.
    """
    if offset:
        try:
            response = urlopen(_request(url, offset), timeout=TIMEOUT_S)
        except HTTPError as exc:
            if exc.code != 416:
                raise
            exc.close()
        else:
            if getattr(response, "status", None) != 206:
                return response, 0
            if _range_start(response) == offset:
                return response, offset
            response.close()
    return urlopen(_request(url, 0), timeout=TIMEOUT_S), 0


def _request(url: str, offset: int) -> Request:
    """Build a GET request for ``url``, from byte ``offset`` on."""
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    return Request(url, headers=headers)


def _copy(response: Any, out: IO[bytes], digest: Any, bar: Any) -> int:
    """Copy the response body to ``out``; return the number of bytes copied."""
    # read1 hands bytes over as they arrive, so an interrupted transfer keeps them all.
    read = getattr(response, "read1", response.read)
    copied = 0
    while chunk := read(CHUNK_BYTES):
        out.write(chunk)
        out.flush()  # so even a killed process leaves every byte it received in the part
        digest.update(chunk)
        copied += len(chunk)
        bar.update(len(chunk))
    return copied


def _drop_if_empty(part: Path) -> None:
    """Delete ``part`` if it holds no bytes (an empty part is no use to a resume)."""
    with contextlib.suppress(FileNotFoundError):
        if part.stat().st_size == 0:
            part.unlink()


def _range_start(response: Any) -> int | None:
    """Return the first byte of a 206 response's Content-Range, or None if unparsable."""
    match = _CONTENT_RANGE.fullmatch((response.headers.get("Content-Range") or "").strip())
    return int(match.group(1)) if match else None


def _content_length(response: object) -> int | None:
    """Return the response's Content-Length, or None if absent or not a number."""
    headers = getattr(response, "headers", None)
    value = headers.get("Content-Length") if headers is not None else None
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
