"""The container of model files and checkpoints: safetensors, with one header, checksummed.

A safetensors file (no pickle, nothing executed on load) whose one metadata entry,
``"softreg"``, holds the header (:mod:`softreg.checkpoint_header`).
Reading declares before it reads: the safetensors header is parsed first (the file is
memory-mapped), softreg's header is checked for kind and format, and every tensor's dtype
and shape is checked against what the header implies, and its size against the memory
available, before any tensor is read. The header's ``sha256`` covers the rest of the header
(its canonical JSON) and every tensor (name, dtype, shape, bytes), so a file changed after
it was written is refused. Writing is atomic (a temporary file, then a rename); one metadata
entry, canonical JSON and safetensors' fixed order of tensors make a file's bytes a function
of its content.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from softreg.checkpoint_header import FORMAT
from softreg.checkpoint_tensors import check_tensors
from softreg.errors import ModelFileError, describe, require
from softreg.fileio import atomic_write_bytes, canonical_json, parse_json
from softreg.limits import check_fits_in_memory

__all__ = [
    "HEADER_KEY",
    "SafetensorsFile",
    "check_digest",
    "digest",
    "write_file",
]

HEADER_KEY = "softreg"  # the one safetensors metadata entry


def digest(header: dict[str, Any], tensors: dict[str, np.ndarray]) -> str:
    """Return the checksum a file's header records.

    Parameters
    ----------
    header : dict
        The header; its own ``sha256``, if any, is left out.
    tensors : dict of str to ndarray
        The file's tensors.

    Returns
    -------
    str
        SHA-256, in hexadecimal, of the header's canonical JSON and of every tensor's name,
        dtype, shape and bytes, in name order.
    """
    h = hashlib.sha256(canonical_json({k: v for k, v in header.items() if k != "sha256"}).encode())
    for name in sorted(tensors):
        t = np.ascontiguousarray(tensors[name])
        h.update(f"\n{name}:{t.dtype.str}:{t.shape}\n".encode())
        h.update(t.reshape(-1).view(np.uint8))  # the bytes, without a copy
    return h.hexdigest()


def check_digest(path: Path, header: dict[str, Any], tensors: dict[str, np.ndarray]) -> None:
    """Refuse a file whose header or tensors do not match its checksum.

    Parameters
    ----------
    path : Path
        The file, for messages.
    header : dict
        The header as read, with the ``sha256`` it records (see :func:`digest`).
    tensors : dict of str to ndarray
        The file's tensors as read.

    Raises
    ------
    ModelFileError
        The file was changed since it was written.
    """
    if digest(header, tensors) != header.get("sha256"):
        raise ModelFileError(
            f"{path}: the header or the tensors do not match the file's "
            f"checksum (changed since it was written?)"
        )


def write_file(path: str | Path, tensors: dict[str, np.ndarray], header: dict[str, Any]) -> Path:
    """Write ``tensors`` and ``header``, with its checksum, to ``path`` atomically.

    Parameters
    ----------
    path : str or Path
        The file to write.
    tensors : dict of str to ndarray
        Host arrays, C-contiguous.
    header : dict
        The header, without ``sha256`` (added here).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    MissingDependencyError
        The ``safetensors`` package is not installed.
    """
    save = require("safetensors.numpy", "saving models").save
    header = {**header, "sha256": digest(header, tensors)}
    path = Path(path)
    atomic_write_bytes(path, save(tensors, metadata={HEADER_KEY: canonical_json(header)}))
    return path


class SafetensorsFile:
    """An open safetensors file whose header and tensors are read only after checks.

    Used as a context manager: entering reads and checks the safetensors header only, the
    file being memory-mapped; :meth:`header` and :meth:`tensors` then read softreg's header
    and the tensors.

    Parameters
    ----------
    path : Path
        The file.
    what : str
        What messages call it: ``"model file"`` or ``"checkpoint"``.

    Attributes
    ----------
    metadata : dict of str to str
        The safetensors metadata (after entering).
    declared : dict
        Each tensor's declaration ``(dtype, shape)`` (after entering).

    Raises
    ------
    MissingDependencyError
        The ``safetensors`` package is not installed.
    ModelFileError
        On entering: the file is missing or not a readable safetensors file.
    """

    def __init__(self, path: Path, what: str):
        self.path, self.what = path, what
        require("safetensors.numpy", f"reading a {what}")

    def __enter__(self) -> SafetensorsFile:
        """Open the file and read its safetensors header (no tensor yet)."""
        from safetensors import safe_open

        if not self.path.is_file():
            raise ModelFileError(f"{self.path}: no such {self.what}")
        try:  # reads and checks the safetensors header only (the file is memory-mapped)
            self._file = safe_open(str(self.path), framework="numpy")
            self._handle = self._file.__enter__()
            self.metadata = dict(self._handle.metadata() or {})
            names = self._handle.keys()
            self.declared = {
                name: (
                    self._handle.get_slice(name).get_dtype(),
                    tuple(self._handle.get_slice(name).get_shape()),
                )
                for name in names
            }
        except Exception as exc:  # safetensors has an error type for every kind of damage
            self.__exit__()
            raise ModelFileError(
                f"{self.path}: not a readable safetensors {self.what} ({describe(exc)})"
            ) from None
        return self

    def __exit__(self, *exc_info: Any) -> None:
        """Close the file."""
        if hasattr(self, "_file"):
            self._file.__exit__(None, None, None)

    def header(self, kind: str) -> dict[str, Any]:
        """Return softreg's header, parsed: a dict of the right kind and format.

        Parameters
        ----------
        kind : {"model", "checkpoint"}
            The header's ``kind`` the caller reads.

        Returns
        -------
        dict
            The header, with a ``sha256`` string; its other fields are not yet checked.

        Raises
        ------
        ModelFileError
            No softreg header, metadata beside it, not JSON, another kind or format, or no
            checksum.
        """
        self._check_metadata()
        header = parse_json(self.metadata[HEADER_KEY], f"{self.path}: the header", ModelFileError)
        if not isinstance(header, dict):
            raise ModelFileError(f"{self.path}: the header is not a JSON object")
        if header.get("kind") != kind:
            raise ModelFileError(
                f"{self.path}: not a softreg {self.what} (it is a {header.get('kind')!r:.40} file)"
            )
        if header.get("format") != FORMAT:
            raise ModelFileError(
                f"{self.path}: format {header.get('format')!r:.40}, but this "
                f"softreg reads format {FORMAT}"
            )
        if not isinstance(header.get("sha256"), str):
            raise ModelFileError(f"{self.path}: the header has no checksum")
        return header

    def _check_metadata(self) -> None:
        """Refuse metadata without softreg's header, or with other entries beside it."""
        if HEADER_KEY not in self.metadata:
            if {"softreg_format", "softreg_checkpoint"} & set(self.metadata):
                raise ModelFileError(
                    f"{self.path}: written by an earlier softreg (format 1, "
                    f"whose header no checksum covers); train it again"
                )
            raise ModelFileError(f"{self.path}: not a softreg {self.what} (no softreg header)")
        others = sorted(set(self.metadata) - {HEADER_KEY})
        if others:  # no checksum covers them: refused rather than ignored
            raise ModelFileError(
                f"{self.path}: metadata entries beside softreg's header "
                f"({', '.join(repr(k)[:40] for k in others[:4])})"
            )

    def tensors(self, expected: dict[str, Any]) -> dict[str, np.ndarray]:
        """Return every tensor, read after checking the declared ones.

        Parameters
        ----------
        expected : dict
            Name to ``(dtypes, allowed shapes)``, as
            :func:`softreg.checkpoint_tensors.check_tensors` takes them.

        Returns
        -------
        dict of str to ndarray
            The tensors, by name.

        Raises
        ------
        ModelFileError
            The declared tensors are not the expected ones (names, dtypes, shapes), would not
            fit in memory, or cannot be read.
        """
        nbytes = check_tensors(self.path, self.declared, expected)
        check_fits_in_memory(nbytes, f"{self.path}: its tensors take", ModelFileError)
        try:
            return {name: self._handle.get_tensor(name) for name in self.declared}
        except Exception as exc:
            raise ModelFileError(
                f"{self.path}: cannot read its tensors ({describe(exc)})"
            ) from None
