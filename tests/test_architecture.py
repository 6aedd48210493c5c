"""The package's shape, checked so that it stays true: small functions and modules, and
imports that go one way (the core never imports the layers built on it)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "softreg"
MODULES = sorted(PACKAGE.rglob("*.py"))
MAX_FUNCTION_LINES = 60  # of code: the docstring is documentation, not length
MAX_MODULE_LINES = 400

# The training core: what ``fit`` and the models need. It never imports the layers built on
# it (run directories, sweeps, reports, the CLI, plotting, data-parallel training).
CORE = ("_libraries", "array_extras", "backend", "build", "callbacks", "checks", "compiled",
        "config", "divergence", "evaluation", "fused", "history", "models", "ops", "optim",
        "prepare", "protocols", "sampling", "standardise", "step", "train",
        "validation")  # fmt: skip
LAYERS = ("cli", "distributed", "plotting", "progress", "report", "runs", "sweep")


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)


def softreg_imports(path: Path) -> list[tuple[str, list[str]]]:
    """``(module, names)`` of every ``import softreg...`` / ``from softreg... import``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("softreg"):
            names = [a.name for a in node.names]
            if node.module == "softreg":  # from softreg import backend, ops
                found += [(f"softreg.{name}", []) for name in names]
            else:
                found.append((node.module, names))
        elif isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names if a.name.startswith("softreg")]
    return found


def code_lines(node: ast.AST) -> int:
    """Lines of a function without its docstring."""
    lines = node.end_lineno - node.lineno + 1
    body = node.body
    first = body[0] if body else None
    if isinstance(first, ast.Expr) and isinstance(getattr(first.value, "value", None), str):
        lines -= first.end_lineno - first.lineno + 1
    return lines


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_modules_and_functions_are_small(path):
    text = path.read_text()
    assert len(text.splitlines()) <= MAX_MODULE_LINES, f"{path.name}: split it along a seam"
    long = [
        f"{node.name} ({code_lines(node)} lines)"
        for node in ast.walk(ast.parse(text))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and code_lines(node) > MAX_FUNCTION_LINES
    ]
    assert not long, f"{path.name}: functions over {MAX_FUNCTION_LINES} lines: {long}"


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_no_private_names_from_other_modules(path):
    this = module_name(path)
    private = [
        f"{module}.{name}"
        for module, names in softreg_imports(path)
        for name in names
        if name.startswith("_") and module != this and not name.startswith("__")
    ]
    assert not private, f"{this} imports private names: {private}"


@pytest.mark.parametrize("name", CORE)
def test_the_core_does_not_import_the_layers_built_on_it(name):
    path = PACKAGE / f"{name}.py"
    paths = [path] if path.exists() else sorted((PACKAGE / name).rglob("*.py"))
    imported = {module for p in paths for module, _ in softreg_imports(p)}
    layers = sorted(m for m in imported if m.split(".")[1] in LAYERS)
    assert not layers, f"softreg.{name} imports {layers}"


def test_report_and_sweep_do_not_import_each_other_or_runs():
    for name, forbidden in {"report": ("runs", "sweep"), "sweep": ("runs", "report")}.items():
        path = PACKAGE / f"{name}.py"
        paths = [path] if path.exists() else sorted((PACKAGE / name).rglob("*.py"))
        imported = {m.split(".")[1] for p in paths for m, _ in softreg_imports(p) if "." in m}
        assert not imported & set(forbidden), f"softreg.{name} imports {imported & set(forbidden)}"


def public_functions():
    """Every public function and method of softreg's public modules: ``(name, object)``."""
    import importlib
    import inspect
    import pkgutil
    from typing import Protocol

    import softreg

    for info in pkgutil.walk_packages(softreg.__path__, "softreg."):
        parts = info.name.split(".")[1:]
        if any(part.startswith("_") for part in parts):
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != info.name:
                continue
            if inspect.isfunction(obj):
                yield f"{info.name}.{name}", obj
            elif inspect.isclass(obj) and Protocol not in obj.__mro__[1:]:  # contracts aside
                for method, fn in vars(obj).items():
                    inherited = any(method in vars(base) for base in obj.__mro__[1:])
                    if not method.startswith("_") and inspect.isfunction(fn) and not inherited:
                        yield f"{info.name}.{name}.{method}", fn


def test_public_functions_document_their_parameters():
    """numpydoc: a public function that takes parameters says what they are (the API
    reference renders these sections). Overrides inherit their base method's documentation."""
    import inspect

    undocumented = [
        name
        for name, fn in public_functions()
        if set(inspect.signature(fn).parameters) - {"self", "cls"}
        and "Parameters\n" not in (inspect.getdoc(fn) or "")
    ]
    assert not undocumented, f"no Parameters section: {undocumented}"


def test_the_public_surface_resolves_with_real_signatures():
    import inspect

    import softreg

    for name in softreg.__all__:
        obj = getattr(softreg, name)
        if callable(obj):
            assert inspect.getdoc(obj), name
        if inspect.isfunction(obj):  # train_run and resume_run included, imported lazily
            kinds = {p.kind for p in inspect.signature(obj).parameters.values()}
            assert inspect.Parameter.VAR_POSITIONAL not in kinds, f"{name} hides its signature"
