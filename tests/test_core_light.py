"""The core needs NumPy only: with every extra made unimportable, softreg still imports and
trains, and features that need an extra say which one to install."""

import subprocess
import sys
import textwrap

EXTRAS = ("matplotlib", "tqdm", "safetensors", "PIL", "array_api_compat", "IPython")
BLOCK = textwrap.dedent("""
    import importlib.abc, sys

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] in EXTRAS:
                raise ImportError(f"blocked for the test: {name}")

    sys.meta_path.insert(0, Block())
""")


def run_python(code: str, blocked: tuple[str, ...] = EXTRAS) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter in which the ``blocked`` packages cannot be imported."""
    prelude = f"EXTRAS = {blocked!r}\n" + BLOCK
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_core_imports_and_trains_without_extras():
    proc = run_python("""
        import numpy as np
        import softreg
        rng = np.random.default_rng(0)
        X = rng.normal(size=(200, 4)).astype(np.float32)
        y = (X[:, 0] > 0).astype(np.int64)
        result = softreg.fit(softreg.SoftmaxRegression(4, 2), (X, y), (X, y),
                             softreg.TrainConfig(epochs=3, batch_size=32))
        assert result.history.final.test_acc > 0.8
        print("trained")
    """)
    assert proc.returncode == 0, proc.stderr
    assert "trained" in proc.stdout


def test_missing_extra_names_what_to_install(tmp_path):
    proc = run_python(f"""
        import numpy as np
        import softreg
        from softreg.checkpoint import save_model
        model = softreg.SoftmaxRegression(4, 2)
        try:
            save_model({str(tmp_path / "m.safetensors")!r}, model,
                       model.init(np.random.default_rng(0)), class_names=("a", "b"))
        except softreg.MissingDependencyError as exc:
            print(exc)
    """)
    assert proc.returncode == 0, proc.stderr
    assert "pip install 'softreg[cli]'" in proc.stdout
    assert not (tmp_path / "m.safetensors").exists()


def test_train_without_matplotlib_refuses_before_writing(tmp_path, data_root):
    out = tmp_path / "run"
    proc = run_python(
        f"""
        import sys
        from softreg.cli import main
        sys.exit(main(["train", "--data-dir", {str(data_root)!r}, "--out", {str(out)!r}]))
    """,
        blocked=("matplotlib",),
    )
    assert proc.returncode == 2
    assert "pip install 'softreg[cli]'" in proc.stderr and "--no-plots" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_backend_without_its_library_names_the_extra(tmp_path, data_root):
    out = tmp_path / "run"
    proc = run_python(
        f"""
        import sys
        from softreg.cli import main
        sys.exit(main(["train", "--backend", "torch", "--data-dir", {str(data_root)!r},
                       "--out", {str(out)!r}]))
    """,
        blocked=("torch",),
    )
    assert proc.returncode == 2
    assert (
        "the torch backend needs the 'torch' package: pip install 'softreg[torch]'" in proc.stderr
    )
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not out.exists()
