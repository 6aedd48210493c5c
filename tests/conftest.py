"""Shared fixtures (plain helpers are in _helpers.py). Tests never touch the network: real
datasets come from ../shared/data (or $SOFTREG_DATA); tests that need them skip without them,
except under CI, where they fail.

The backend fixtures (``array_backend``, ``backend_name``, ``backend_device``, ``xp``) run a
test once per backend of ``softreg.backend`` (``BACKENDS`` and ``REFERENCE_BACKENDS``) on the
CPU. Where PyTorch or JAX sees a GPU, tests that take the device (``xp``, ``backend_device``
or ``array_backend``) also run on it: ``torch-cuda`` and ``jax-gpu``. A backend whose library
is not installed is skipped (under CI, which installs them all, it fails).
``@pytest.mark.backends("numpy", ...)`` limits a test to the backends it names.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import inspect
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from _helpers import require_shared_data, resolve_backend

from softreg import backend

# --- the backend axis -----------------------------------------------------------------------

# Fixtures that give a test its device: with one of them, a test also runs on the GPUs.
DEVICE_FIXTURES = ("xp", "backend_device")


@functools.cache
def gpu_cases() -> tuple[tuple[str, str], ...]:
    """``(backend, device)`` for each GPU an installed library sees, in its own words:
    PyTorch's ``torch.cuda.is_available()``, JAX's ``jax.devices("gpu")``."""
    cases = []
    if importlib.util.find_spec("torch") is not None:
        import torch

        if torch.cuda.is_available():
            cases.append(("torch", "cuda"))
    if importlib.util.find_spec("jax") is not None:
        import jax

        with contextlib.suppress(RuntimeError):  # RuntimeError: JAX has no GPU platform here
            if jax.devices("gpu"):
                cases.append(("jax", "gpu"))
    return tuple(cases)


def backend_cases(names: tuple[str, ...], *, gpus: bool) -> list:
    """The ``array_backend`` parameters: each of ``names`` on the CPU, then (with ``gpus``)
    the GPU cases of those names. Ids: the backend's name, ``name-device`` off the CPU."""
    cases = [(name, "cpu") for name in names]
    if gpus:
        cases += [case for case in gpu_cases() if case[0] in names]
    return [
        pytest.param(case, id=case[0] if case[1] == "cpu" else "-".join(case)) for case in cases
    ]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize every test that uses the backend fixtures over :func:`backend_cases`."""
    if "array_backend" not in metafunc.fixturenames or _parametrizes_backend(metafunc):
        return
    marker = metafunc.definition.get_closest_marker("backends")
    names = marker.args if marker else (*backend.BACKENDS, *backend.REFERENCE_BACKENDS)
    own_args = inspect.signature(metafunc.function).parameters
    gpus = "array_backend" in own_args or any(f in metafunc.fixturenames for f in DEVICE_FIXTURES)
    metafunc.parametrize("array_backend", backend_cases(tuple(names), gpus=gpus), indirect=True)


def _parametrizes_backend(metafunc: pytest.Metafunc) -> bool:
    """Whether the test parametrizes a backend fixture itself."""
    own = ("array_backend", "backend_name", "backend_device", "xp")
    for marker in metafunc.definition.iter_markers("parametrize"):
        argnames = marker.kwargs.get("argnames", marker.args[0] if marker.args else ())
        if isinstance(argnames, str):
            argnames = [name.strip() for name in argnames.split(",")]
        if any(name in own for name in argnames):
            return True
    return False


@pytest.fixture
def array_backend(request: pytest.FixtureRequest) -> backend.Backend:
    """Each backend and device in turn, as ``softreg.backend.resolve`` builds it."""
    name, device = request.param
    return resolve_backend(name, device)


@pytest.fixture
def backend_name(array_backend: backend.Backend) -> str:
    """The name of each backend in turn (after checking it is installed)."""
    return array_backend.name


@pytest.fixture
def backend_device(array_backend: backend.Backend) -> str:
    """The device of each case as ``--device`` names it: ``cpu``, ``cuda`` or ``gpu``."""
    return array_backend.device_name.split(":")[0]


@pytest.fixture
def xp(array_backend: backend.Backend) -> Iterator[ModuleType]:
    """Each array namespace in turn; the arrays it creates land on the case's device."""
    with _default_device(array_backend):
        yield array_backend.xp


def _default_device(be: backend.Backend) -> contextlib.AbstractContextManager:
    """Make ``be``'s device its library's default for arrays created without one."""
    if be.name == "torch" and be.device.type != "cpu":
        return be.device  # a torch.device is a context manager that sets the default
    if be.name == "jax":
        import jax

        if be.device != jax.devices()[0]:
            return jax.default_device(be.device)
    return contextlib.nullcontext()


# --- data -----------------------------------------------------------------------------------


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
