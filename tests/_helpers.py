"""Plain helpers the tests share (the fixtures are in conftest.py).

Real datasets come from ../shared/data (or $SOFTREG_DATA); a test that needs what is not
there skips, except under CI, which installs everything and fails instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from softreg import backend
from softreg.errors import ConfigError, MissingDependencyError

REPO = Path(__file__).resolve().parents[1]


def skip_or_fail(message: str) -> None:
    """Skip the test for want of ``message``'s thing; fail under CI, where nothing is missing."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


# --- data -----------------------------------------------------------------------------------


def shared_data_dir() -> Path | None:
    """The directory that holds Fashion-MNIST: $SOFTREG_DATA, else shared/data beside the
    repository (None: neither has it)."""
    env = os.environ.get("SOFTREG_DATA")
    candidate = Path(env) if env else REPO.parent / "shared" / "data"
    return candidate if (candidate / "fashion-mnist").is_dir() else None


def require_shared_data() -> Path:
    """:func:`shared_data_dir`, or a skip (a failure under CI) when there is none."""
    found = shared_data_dir()
    if found is None:
        skip_or_fail("Fashion-MNIST not found: set SOFTREG_DATA or put shared/data beside the repo")
    return found


# --- backends -------------------------------------------------------------------------------


def resolve_backend(name: str, device: str = "cpu") -> backend.Backend:
    """``softreg.backend.resolve(name, device)``, or a skip when the library is not installed
    (a failure under CI, which installs every backend) or does not see the device."""
    try:
        return backend.resolve(name, device)
    except MissingDependencyError:
        skip_or_fail(f"backend {name} is not installed")
    except ConfigError as exc:  # no such device here
        pytest.skip(str(exc))


def import_namespace(name: str) -> ModuleType:
    """The array namespace of backend ``name`` (see :func:`resolve_backend`)."""
    return resolve_backend(name).xp


# --- the command line -----------------------------------------------------------------------


def run_cli(*args: str, data_root: Path, check: bool = True) -> subprocess.CompletedProcess:
    """``python -m softreg *args`` in a fresh process with $SOFTREG_DATA set to ``data_root``;
    with ``check``, a non-zero exit fails the test with the process's output."""
    env = {**os.environ, "SOFTREG_DATA": str(data_root)}
    proc = subprocess.run(
        [sys.executable, "-m", "softreg", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


# --- softreg files edited the way a hostile writer would: content changed, checksum valid ---


def read_softreg_file(path):
    """``(header, tensors)`` of a softreg model file or checkpoint, read without checks."""
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        header = json.loads(f.metadata()["softreg"])
        tensors = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118
    return header, tensors


def write_softreg_file(path, header, tensors, *, checksum: bool = True) -> None:
    """Write ``header`` and ``tensors`` as a softreg file, with the checksum recomputed over
    them (``checksum=False`` keeps the header's own, as a careless editor would)."""
    from safetensors.numpy import save_file

    from softreg.checkpoint_file import digest as _digest
    from softreg.fileio import canonical_json

    header = dict(header)
    if checksum:
        header["sha256"] = _digest(header, tensors)
    save_file(tensors, str(path), metadata={"softreg": canonical_json(header)})


def edit_softreg_file(path, edit_header=None, edit_tensors=None, *, checksum: bool = True):
    """Apply ``edit_header(header)`` and ``edit_tensors(tensors)`` (in place) to the file."""
    header, tensors = read_softreg_file(path)
    if edit_header is not None:
        edit_header(header)
    if edit_tensors is not None:
        edit_tensors(tensors)
    write_softreg_file(path, header, tensors, checksum=checksum)
