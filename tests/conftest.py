"""Shared fixtures. Tests never touch the network: real datasets come from ../shared/data
(or $SOFTREG_DATA); tests that need them skip without them, except under CI, where they fail."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    env = os.environ.get("SOFTREG_DATA")
    candidate = Path(env) if env else REPO.parent / "shared" / "data"
    return candidate if (candidate / "fashion-mnist").is_dir() else None


def require_shared_data() -> Path:
    found = shared_data_dir()
    if found is None:
        message = "Fashion-MNIST not found: set SOFTREG_DATA or put shared/data beside the repo"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No user data or cache leaks in (the cache is tmp_path/xdg-cache, the system location
    tmp_path/system), and nothing can reach the network."""
    import socket

    import softreg.data.datasets as datasets_module

    monkeypatch.delenv("SOFTREG_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setattr(datasets_module, "SYSTEM_DATA_DIR", tmp_path / "system")

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("a test tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)


@pytest.fixture(scope="session")
def data_root() -> Path:
    return require_shared_data()


@pytest.fixture(scope="session")
def fashion(data_root):
    from softreg.data import load_dataset

    return load_dataset("fashion-mnist", data_dir=data_root, download=False, progress=False)


@pytest.fixture
def blobs():
    """Three well-separated Gaussian classes in 5-D: small data that trains in milliseconds."""
    rng = np.random.default_rng(42)
    centers = rng.normal(0, 3, size=(3, 5))
    y = rng.integers(0, 3, size=600)
    X = (centers[y] + rng.normal(0, 1, size=(600, 5))).astype(np.float32)
    return X[:500], y[:500], X[500:], y[500:]


# Every array namespace the op/loss/model tests run on: NumPy, the standard's strict
# reference (so nothing NumPy-only sneaks in), and the optional backends when installed.
# CI installs them all, and there a missing one fails instead of skipping.
NAMESPACES = {
    "numpy": "numpy",
    "array-api-strict": "array_api_strict",
    "torch": "array_api_compat.torch",
    "jax": "jax.numpy",
    "tensorflow": "softreg._tensorflow_xp",
}


def import_namespace(name: str):
    import importlib

    try:
        return importlib.import_module(NAMESPACES[name])
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail(f"backend {name} is not installed (CI installs every backend)")
        pytest.skip(f"backend {name} is not installed")


@pytest.fixture(params=list(NAMESPACES))
def backend_name(request) -> str:
    """The name of each backend in turn (after checking it is installed)."""
    import_namespace(request.param)
    return request.param


@pytest.fixture
def xp(backend_name):
    """Each installed array namespace in turn."""
    return import_namespace(backend_name)


# --- softreg files edited the way a hostile writer would: content changed, checksum valid ---


def read_softreg_file(path):
    """``(header, tensors)`` of a softreg model file or checkpoint, read without checks."""
    import json

    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        header = json.loads(f.metadata()["softreg"])
        tensors = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118
    return header, tensors


def write_softreg_file(path, header, tensors, *, checksum: bool = True) -> None:
    """Write ``header`` and ``tensors`` as a softreg file, with the checksum recomputed over
    them (``checksum=False`` keeps the header's own, as a careless editor would)."""
    from safetensors.numpy import save_file

    from softreg.checkpoint import _digest
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
