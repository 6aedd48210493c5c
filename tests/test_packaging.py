"""What `pip install softreg` promises: one version, a LICENSE, type information, and a
`softreg` command whose main job runs on the declared dependencies alone, while `import
softreg` loads NumPy and nothing else."""

import ast
import functools
import importlib.util
import json
import os
import re
import struct
import subprocess
import sys
import textwrap
import zlib
from importlib import metadata, resources
from pathlib import Path

import pytest

import softreg

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "softreg"
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))

# Third-party modules that softreg imports only for a feature outside the command's main job,
# each with the extra that installs it (None: never installed by softreg; only asked whether a
# notebook is running).
OUTSIDE_MAIN_JOB = {
    "torch": "torch",
    "array_api_compat": "torch",
    "jax": "jax",
    "tensorflow": "tensorflow",
    "sklearn": "sklearn",
    "array_api_strict": "test",
    "numba": "fast",
    "IPython": None,
}


def canonical(name: str) -> str:
    """A distribution's name as packaging compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    return canonical(re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement.strip()).group())


def declared(extra: str | None = None) -> set[str]:
    """The distributions the project declares: its dependencies, or one extra's."""
    project = PROJECT["project"]
    reqs = project["dependencies"] if extra is None else project["optional-dependencies"][extra]
    return {requirement_name(r) for r in reqs}


def closure(names: set[str]) -> set[str]:
    """``names`` and, through the installed metadata, everything they require (no extras)."""
    from packaging.requirements import Requirement  # a dependency of matplotlib

    seen, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for text in metadata.requires(name) or ():
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(canonical(req.name))
    return seen


@functools.cache
def installed_modules() -> dict[str, list[str]]:
    """Top-level module -> the installed distributions that provide it."""
    return metadata.packages_distributions()


def distributions_of(module: str) -> set[str]:
    """The installed distributions that provide top-level ``module`` (its name if none)."""
    found = installed_modules().get(module, [])
    return {canonical(d) for d in found} or {canonical(module)}


def dynamic_import(node: ast.AST) -> str | None:
    """The module named by ``require("PIL.Image", ...)`` or ``importlib.import_module("x")``."""
    if not (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)):
        return None
    func = node.func
    name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
    return node.args[0].value if name in ("require", "import_module") else None


def imported_by_source() -> set[str]:
    """The third-party top-level modules that softreg's source imports anywhere, by an import
    statement or by name (``softreg.errors.require``, ``importlib.import_module``)."""
    names = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names.add(node.module.split(".")[0])
            elif (name := dynamic_import(node)) is not None:
                names.add(name.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"__future__", "softreg"}


def loaded_modules(code: str, cwd: Path) -> set[str]:
    """The third-party top-level modules loaded by ``code`` in a fresh interpreter, beyond
    those any interpreter of this environment starts with (.pth hooks)."""
    report = "\nimport json, sys\nprint(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"

    def run(source: str) -> set[str]:
        proc = subprocess.run(
            [sys.executable, "-c", source],
            capture_output=True,
            text=True,
            cwd=cwd,
            timeout=300,
            env={**_env(), "MPLBACKEND": "agg"},
        )
        assert proc.returncode == 0, proc.stderr
        return set(json.loads(proc.stdout.strip().splitlines()[-1]))

    return run(textwrap.dedent(code) + report) - run(report) - set(sys.stdlib_module_names)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    src = str(Path(softreg.__file__).resolve().parents[1])
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return env


# --- metadata ---------------------------------------------------------------------------------


def test_version_has_one_source():
    project = PROJECT["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert PROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "softreg.__version__"}
    # A plain string assignment: setuptools reads it without importing softreg (or NumPy).
    tree = ast.parse((PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    values = [
        node.value
        for node in tree.body
        if isinstance(node, ast.Assign) and [t.id for t in node.targets] == ["__version__"]
    ]
    assert len(values) == 1 and isinstance(values[0], ast.Constant)
    assert values[0].value == softreg.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+((a|b|rc)\d+)?(\.dev\d+)?", softreg.__version__)


def test_license_file_ships_and_matches_the_metadata():
    project = PROJECT["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License") and "Copyright (c) 2026 the softreg developers" in text
    assert "Permission is hereby granted, free of charge" in text


def test_package_is_typed():
    assert (PACKAGE / "py.typed").is_file()
    assert resources.files("softreg").joinpath("py.typed").is_file()
    assert "py.typed" in PROJECT["tool"]["setuptools"]["package-data"]["softreg"]
    assert "Typing :: Typed" in PROJECT["project"]["classifiers"]


def test_metadata_is_complete():
    project = PROJECT["project"]
    assert project["authors"] and project["keywords"]
    assert set(project["urls"]) >= {"Homepage", "Documentation", "Source", "Issues"}
    assert all(url.startswith("https://") for url in project["urls"].values())
    versions = [c.rsplit(" ", 1)[1] for c in project["classifiers"] if re.search(r":: 3\.\d+$", c)]
    minimum = re.fullmatch(r">=(3\.\d+)", project["requires-python"]).group(1)
    assert min(versions, key=lambda v: int(v.split(".")[1])) == minimum
    # `pip install 'softreg[cli]'` (older instructions, scripts) goes on working.
    assert "cli" in project["optional-dependencies"]


# --- dependencies -------------------------------------------------------------------------------


def test_every_import_is_declared():
    """Each third-party module softreg imports is a dependency, or belongs to a feature outside
    the command's main job and its extra declares it."""
    dependencies = declared()
    for module in sorted(imported_by_source()):
        names = distributions_of(module) | {canonical(module)}
        if module in OUTSIDE_MAIN_JOB:
            extra = OUTSIDE_MAIN_JOB[module]
            assert extra is None or names & declared(extra), f"{module}: not in [{extra}]"
            assert not names & dependencies, f"{module} is a dependency: importing it is optional"
        else:
            assert names & dependencies, f"softreg imports {module}: add it to dependencies"


@pytest.mark.slow
def test_the_commands_main_job_runs_on_the_dependencies(tmp_path):
    """train (with figures), evaluate, predict (test images and a picture file) and sweep load
    only what the dependencies install; what softreg itself imports is a direct dependency."""
    write_png(tmp_path / "picture.png")
    loaded = loaded_modules(
        """
        import contextlib, io
        import numpy as np
        import softreg
        from softreg.checkpoint import save_model
        from softreg.cli import main

        def cli(*argv):
            with contextlib.redirect_stdout(io.StringIO()):
                assert main(list(argv)) == 0, argv

        cli("train", "--dataset", "synthetic", "--epochs", "2", "--out", "run")
        cli("evaluate", "run/model.safetensors", "--out", "evaluation")
        cli("predict", "run/model.safetensors", "--index", "0", "1", "--top", "2")
        cli("sweep", "--dataset", "synthetic", "--lr", "0.1,0.3", "--epochs", "1",
            "--workers", "1", "--out", "sweep")
        model = softreg.SoftmaxRegression(784, 10)
        save_model("image.safetensors", model, model.init(np.random.default_rng(0)),
                   class_names=tuple("abcdefghij"))
        np.save("picture.npy", np.zeros((28, 28), dtype=np.uint8))
        cli("predict", "image.safetensors", "picture.png", "picture.npy")
        """,
        cwd=tmp_path,
    )
    assert (tmp_path / "run" / "curves.png").is_file()
    assert {"numpy", "matplotlib", "safetensors", "threadpoolctl", "PIL"} <= loaded
    # kernel="auto" trains on the fused step where numba is installed (the fast extra): what
    # numba loads to compile (its optional imports of what is installed included) is numba's.
    by_numba = set()
    if importlib.util.find_spec("numba") is not None:
        by_numba = loaded_modules("import numba; numba.njit(lambda x: x + 1)(1)", cwd=tmp_path)
    installed = {m for m in loaded if m in installed_modules()} - {"softreg"} - by_numba
    allowed = closure(declared())
    for module in sorted(installed):
        assert distributions_of(module) & allowed, f"the CLI loaded {module}: not a dependency"
    for module in sorted(installed & imported_by_source()):
        assert distributions_of(module) & declared(), f"softreg imports {module}: declare it"


def write_png(path: Path) -> None:
    """Write a 28x28 black greyscale PNG with the standard library (not with Pillow)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 28, 28, 8, 0, 0, 0, 0)  # 8-bit grey, no interlace
    pixels = zlib.compress(b"".join(b"\x00" + bytes(28) for _ in range(28)))
    png = chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + png)


def test_import_softreg_loads_only_numpy(tmp_path):
    installed = set(installed_modules())
    loaded = loaded_modules("import softreg", cwd=tmp_path) & installed
    assert loaded - {"softreg"} == {"numpy"}
