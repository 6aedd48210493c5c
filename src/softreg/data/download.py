"""Download a dataset's four files from its mirrors, verifying each official MD5.

A file appears under its final name only once it is complete and verified: bytes stream
to ``<file>.part`` next to it, which is renamed on success and deleted on any failure.
"""

from __future__ import annotations

import hashlib
import http.client
import os
from collections.abc import Sequence
from pathlib import Path
from urllib.request import Request, urlopen

from softreg.data.catalog import (
    ENV_VAR,
    DataError,
    DatasetSpec,
    dataset_spec,
    default_cache_dir,
)
from softreg.data.progress import progress_bar

__all__ = ["download_dataset", "file_md5"]

TIMEOUT_S = 30.0
CHUNK_BYTES = 1 << 20
USER_AGENT = "softreg-dataset-downloader"


def download_dataset(
    name: str,
    dest: str | os.PathLike[str] | None = None,
    *,
    mirrors: Sequence[str] | None = None,
    progress: bool = True,
) -> Path:
    """Download the four files of dataset ``name`` into ``dest`` and return ``dest``.

    ``dest`` defaults to ``default_cache_dir() / name``. Each file is tried on every
    mirror in turn (``mirrors`` overrides the spec's base URLs; ``file://`` works too)
    and kept only if its MD5 matches the official one. Files already in ``dest`` with the
    right MD5 are not downloaded again.

    Raises:
        DataError: a file could not be had with the right checksum from any mirror.
    """
    spec = dataset_spec(name)
    dest = default_cache_dir() / spec.name if dest is None else Path(dest).expanduser()
    bases = tuple(spec.mirrors if mirrors is None else mirrors)
    if not bases:
        raise ValueError("download_dataset: no mirrors to download from")
    dest.mkdir(parents=True, exist_ok=True)
    for role, file_name in spec.files.items():
        target = dest / file_name
        if target.is_file() and file_md5(target) == spec.md5[role]:
            continue
        _fetch(spec, file_name, spec.md5[role], target, bases, progress)
    return dest


def file_md5(path: Path) -> str:
    """Hex MD5 of a file's bytes, read in chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _fetch(
    spec: DatasetSpec,
    file_name: str,
    md5: str,
    target: Path,
    bases: tuple[str, ...],
    progress: bool,
) -> None:
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
    part = target.with_name(target.name + ".part")
    try:
        request = Request(url, headers={"User-Agent": USER_AGENT})
        with urlopen(request, timeout=TIMEOUT_S) as response, open(part, "wb") as out:
            total = _content_length(response)
            digest = hashlib.md5(usedforsecurity=False)
            received = 0
            with progress_bar(total, target.name, enabled=progress) as bar:
                while chunk := response.read(CHUNK_BYTES):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            if total is not None and received != total:
                raise OSError(f"short read: got {received} of {total} bytes")
            if digest.hexdigest() != md5:
                raise DataError(f"MD5 mismatch: expected {md5}, got {digest.hexdigest()}")
            out.flush()
            os.fsync(out.fileno())
        os.replace(part, target)
    except BaseException:
        # Also on KeyboardInterrupt: never leave a partial file behind.
        part.unlink(missing_ok=True)
        raise


def _content_length(response: object) -> int | None:
    headers = getattr(response, "headers", None)
    value = headers.get("Content-Length") if headers is not None else None
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
