"""Smoke tests for the benchmarks in bench/: they run end to end on a tiny slice of the data and
write well-formed results. Nothing here asserts anything about speed."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"


def run(
    script: str, *args: str, data_root: Path, timeout: float = 300
) -> subprocess.CompletedProcess:
    env = {**os.environ, "SOFTREG_DATA": str(data_root)}
    proc = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"{script} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def check_row(row: dict) -> None:
    assert row["status"] == "ok"
    for key in ("seconds_train_median", "seconds_train_min", "wall_seconds_median", "peak_rss_mb"):
        assert math.isfinite(row[key]) and row[key] > 0, (key, row[key])
    assert 0 < row["test_acc"] <= 1


@pytest.mark.slow
def test_bench_recipe_smoke(tmp_path, data_root):
    out = tmp_path / "results" / "recipe.json"
    proc = run(
        "bench_recipe.py",
        "--epochs",
        "1",
        "--limit",
        "2000",
        "--repeat",
        "1",
        "--rows",
        "plain-numpy,softreg-fit",
        "--json",
        str(out),
        data_root=data_root,
    )
    report = json.loads(out.read_text())
    assert set(report["rows"]) == {"plain-numpy", "softreg-fit"}
    for row in report["rows"].values():
        check_row(row)
        assert len(row["runs"]) == 1
        assert row["runs"][0]["n_train"] == 2000 and row["runs"][0]["n_test"] == 2000
    ratio = report["ratios"]["plain-numpy/softreg-fit"]
    assert math.isfinite(ratio) and ratio > 0
    # Same initial weights, same data order, same arithmetic: the same model.
    assert report["rows"]["plain-numpy"]["test_acc"] == pytest.approx(
        report["rows"]["softreg-fit"]["test_acc"], abs=2e-3
    )
    assert report["machine"]["cpu_count"] == os.cpu_count()
    goals = {g["goal"]: g for g in report["goals"]}
    plain = next(g for name, g in goals.items() if "plain NumPy" in name)
    assert plain["met"] in (True, False) and plain["value"] == pytest.approx(1 / ratio)
    book = next(g for name, g in goals.items() if "book's pipeline" in name)
    assert book["met"] is None  # the book's row did not run
    assert "x softreg" in proc.stdout and "goal:" in proc.stdout
    assert not list(out.parent.glob("*.tmp")), "temporary file left behind"


@pytest.mark.slow
def test_bench_recipe_cli_row_and_skips(tmp_path, data_root):
    """The CLI row trains on a written subset under --limit; book-pytorch runs or is skipped."""
    out = tmp_path / "recipe.json"
    proc = run(
        "bench_recipe.py",
        "--epochs",
        "1",
        "--limit",
        "600",
        "--repeat",
        "1",
        "--rows",
        "softreg-cli,book-pytorch",
        "--json",
        str(out),
        data_root=data_root,
    )
    report = json.loads(out.read_text())
    check_row(report["rows"]["softreg-cli"])
    book = report["rows"]["book-pytorch"]
    if importlib.util.find_spec("torch") is None:
        assert book == {"status": "skipped", "reason": "torch not installed"}
        assert "skipped (torch not installed)" in proc.stdout
    else:
        check_row(book)


@pytest.mark.slow
def test_bench_recipe_floor_and_book_rows(tmp_path, data_root):
    """The floor row (gathers and matmuls alone) learns nothing and reports no accuracy; the
    book's pipeline starts from softreg's weights and follows its data order, so it trains
    the same model: the same test accuracy within float32 rounding."""
    torch = importlib.util.find_spec("torch") is not None
    out = tmp_path / "recipe.json"
    rows = "floor-numpy,softreg-fit" + (",book-pytorch" if torch else "")
    proc = run(
        "bench_recipe.py",
        "--epochs",
        "2",
        "--limit",
        "1200",
        "--repeat",
        "1",
        "--rows",
        rows,
        "--json",
        str(out),
        data_root=data_root,
    )
    report = json.loads(out.read_text())
    floor = report["rows"]["floor-numpy"]
    assert floor["status"] == "ok" and floor["test_acc"] is None
    assert floor["seconds_train_median"] > 0 and floor["test_acc_all_repeats"] == []
    if not torch:
        assert report["book_over_floor"] is None
        return
    book, fit = report["rows"]["book-pytorch"], report["rows"]["softreg-fit"]
    check_row(book)
    assert book["test_acc"] == pytest.approx(fit["test_acc"], abs=1e-3)
    assert report["book_over_floor"] > 0 and "limit: the floor" in proc.stdout


def test_softreg_order_sampler_follows_softregs_epochs(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))  # where bench_recipe finds its _harness
    spec = importlib.util.spec_from_file_location("bench_recipe", BENCH / "bench_recipe.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    from softreg.data.batching import epoch_permutation

    sampler = bench.SoftregOrder(50)
    passes = [list(sampler) for _ in range(3)]
    assert len(sampler) == 50
    for epoch, visited in enumerate(passes):
        assert visited == epoch_permutation(50, seed=bench.RECIPE["seed"], epoch=epoch).tolist()
    assert passes[0] != passes[1]


@pytest.mark.slow
def test_bench_recipe_backend_rows(tmp_path, data_root):
    """One row per backend, side by side in one run: the same model on each."""
    out = tmp_path / "recipe.json"
    run(
        "bench_recipe.py",
        "--epochs",
        "1",
        "--limit",
        "2000",
        "--repeat",
        "1",
        "--rows",
        "softreg-fit,softreg-fused,softreg-torch,softreg-jax,jax-scan,softreg-tf",
        "--json",
        str(out),
        data_root=data_root,
    )
    report = json.loads(out.read_text())
    rows = report["rows"]
    fused = rows["softreg-fused"]
    if not report["config"]["kernel_field"]:
        assert fused["status"] == "skipped" and "no kernel field" in fused["reason"]
    elif importlib.util.find_spec("numba") is None:
        assert fused == {"status": "skipped", "reason": "numba not installed"}
    else:
        check_row(fused)
        assert fused["runs"][0]["kernel"] == "fused"
        assert fused["test_acc"] == pytest.approx(rows["softreg-fit"]["test_acc"], abs=2e-3)
    if importlib.util.find_spec("jax") is not None:
        # uint8 images converted in the step as softreg converts them: the same model
        check_row(rows["jax-scan"])
        assert rows["jax-scan"]["test_acc"] == pytest.approx(
            rows["softreg-fit"]["test_acc"], abs=2e-3
        )
        assert rows["jax-scan"]["seconds_compile_median"] > 0
        assert math.isfinite(report["ratios"]["softreg-jax/jax-scan"])
    for name, module in (
        ("softreg-torch", "torch"),
        ("softreg-jax", "jax"),
        ("softreg-tf", "tensorflow"),
    ):
        if importlib.util.find_spec(module) is None:
            assert rows[name] == {"status": "skipped", "reason": f"{module} not installed"}
            continue
        check_row(rows[name])
        assert rows[name]["test_acc"] == pytest.approx(rows["softreg-fit"]["test_acc"], abs=2e-3)
        assert math.isfinite(report["ratios"][f"{name}/softreg-fit"])
    for name in ("softreg-jax", "softreg-tf"):  # the compiled ones
        if rows[name]["status"] == "ok":
            assert rows[name]["seconds_compile_median"] > 0
    assert rows["softreg-fit"]["seconds_compile_median"] == 0


@pytest.mark.slow
def test_bench_recipe_peer_rows_on_mnist(tmp_path, data_root):
    """The peers (the concise and the in-memory PyTorch loops, scikit-learn's linear models)
    and the best-linear recipe run side by side, here on MNIST."""
    out = tmp_path / "recipe.json"
    rows = "softreg-fit,torch-concise,torch-inmemory,sklearn-logreg,sklearn-sgd,softreg-best-linear"
    proc = run(
        "bench_recipe.py",
        "--dataset",
        "mnist",
        "--epochs",
        "1",
        "--limit",
        "600",
        "--repeat",
        "1",
        "--rows",
        rows,
        "--json",
        str(out),
        data_root=data_root,
    )
    report = json.loads(out.read_text())
    assert report["config"]["dataset"] == "mnist"
    for name in rows.split(","):
        module = "torch" if name.startswith("torch") else "sklearn" if "sklearn" in name else None
        if module and importlib.util.find_spec(module) is None:
            assert report["rows"][name]["status"] == "skipped"
            continue
        check_row(report["rows"][name])
        assert report["rows"][name]["test_acc"] > 0.2  # MNIST: above chance (0.1), even here
    best = report["rows"]["softreg-best-linear"]["runs"][0]
    assert best["test_acc_evaluate"] == best["test_acc"]
    assert "sklearn-logreg" in proc.stdout


def test_bench_recipe_rejects_unknown_row(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            str(BENCH / "bench_recipe.py"),
            "--rows",
            "nope",
            "--json",
            str(tmp_path / "x.json"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "unknown rows" in proc.stderr


def test_profile_epoch_fit_profile(tmp_path, data_root):
    """The default report profiles softreg.fit: its times, then the top functions."""
    out, text = tmp_path / "profile.json", tmp_path / "profile.txt"
    proc = run(
        "profile_epoch.py",
        "--limit",
        "600",
        "--epochs",
        "2",
        "--top",
        "5",
        "--kernel",
        "array",  # the array-API step compiles nothing
        "--json",
        str(out),
        "--out",
        str(text),
        data_root=data_root,
    )
    report = json.loads(out.read_text())
    assert report["backend"] == "numpy" and report["n_train"] == 600
    assert len(report["epoch_seconds"]) == 2 and report["seconds_compile"] == 0
    assert len(report["top_cumulative"]) == 5 and len(report["top_own"]) == 5
    cumulative = [r["cumtime_ms_per_epoch"] for r in report["top_cumulative"]]
    assert cumulative == sorted(cumulative, reverse=True)
    assert any("softreg/train.py" in r["function"] for r in report["top_cumulative"])
    assert text.read_text() == proc.stdout and "top 5 by own time" in proc.stdout


def test_profile_epoch_pieces(tmp_path, data_root):
    out = tmp_path / "profile.json"
    proc = run(
        "profile_epoch.py",
        "--pieces",
        "--limit",
        "1000",
        "--epochs",
        "2",
        "--json",
        str(out),
        data_root=data_root,
    )
    report = json.loads(out.read_text())
    median = report["median_seconds"]
    for piece in ("gather", "forward", "softmax/loss", "backward", "update", "evaluation"):
        assert math.isfinite(median[piece]) and median[piece] >= 0
    assert report["n_train"] == 1000
    assert "backward" in proc.stdout


@pytest.mark.slow
def test_bench_mlp_smoke(tmp_path, data_root):
    """The lecture's program and softreg's MLP side by side, on a tiny slice."""
    out = tmp_path / "mlp.json"
    proc = run(
        "bench_mlp.py",
        "--epochs",
        "1",
        "--limit",
        "640",
        "--rows",
        "lecture-pytorch,softreg-numpy",
        "--json",
        str(out),
        data_root=data_root,
    )
    report = json.loads(out.read_text())
    numpy_row = report["rows"]["softreg-numpy"]
    assert numpy_row["status"] == "ok" and 0 < numpy_row["test_acc"] <= 1
    assert numpy_row["seconds_train_median"] > 0 and numpy_row["peak_rss_mb"] > 0
    lecture = report["rows"]["lecture-pytorch"]
    if importlib.util.find_spec("torch") is None:
        assert lecture["status"] == "skipped"
    else:
        assert lecture["status"] == "ok"
        versus = report["vs_lecture"]["softreg-numpy"]
        assert math.isfinite(versus["speedup"]) and versus["speedup"] > 0
        assert "faster than the lecture" in proc.stdout


def test_best_linear_search_smoke(tmp_path, data_root):
    """The validation grid behind the best-linear recipe runs and picks from its grid."""
    out = tmp_path / "search.json"
    run(
        "best_linear_search.py",
        "--limit",
        "1200",
        "--epochs",
        "1,2",
        "--lr",
        "0.01,0.1",
        "--lr-schedule",
        "cosine",
        "--weight-decay",
        "0.001",
        "--json",
        str(out),
        data_root=data_root,
    )
    report = json.loads(out.read_text())
    assert len(report["results"]) == 4 and report["n_val"] == 200
    assert {(r["lr"], r["epochs"]) for r in report["results"]} == {
        (0.01, 1),
        (0.01, 2),
        (0.1, 1),
        (0.1, 2),
    }
    assert report["pick"] in report["results"]
    assert report["best"] == max(r["val_acc"] for r in report["results"])
    close = [r for r in report["results"] if r["val_acc"] >= report["best"] - 0.002]
    assert report["pick"]["epochs"] == min(r["epochs"] for r in close)  # the cheapest


def test_gpu_sh_without_a_gpu_says_so_in_one_line(tmp_path):
    """With no nvidia-smi on PATH, gpu.sh prints one line and exits 0, installing nothing."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname", "grep", "sed"):  # what the script runs before it looks
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    proc = subprocess.run(
        ["bash", str(BENCH / "gpu.sh"), "--venv", str(tmp_path / "venv")],
        env={"PATH": str(bin_dir)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 1 and "no NVIDIA GPU" in proc.stdout
    assert not (tmp_path / "venv").exists()


def test_gpu_report_gathers_the_pieces(tmp_path, monkeypatch):
    """gpu_report.py reads the benchmarks' JSON and the tests' JUnit XML it finds, and says
    which pieces are missing."""
    monkeypatch.syspath_prepend(str(BENCH))
    import gpu_report

    def row(seconds, acc):
        return {
            "status": "ok",
            "seconds_train_median": seconds,
            "seconds_compile_median": 0.5,
            "test_acc": acc,
            "peak_rss_mb": 100.0,
            "runs": [{"device": "cuda"}],
        }

    recipe = {
        "config": {"epochs": 10},
        "rows": {
            "softreg-jax": row(2.0, 0.83),
            "jax-scan": row(1.0, 0.83),
            "book-pytorch": {"status": "failed", "reason": "exit status 1"},
        },
    }
    (tmp_path / "recipe.json").write_text(json.dumps(recipe))
    (tmp_path / "tests.xml").write_text(
        '<testsuites><testsuite tests="4" failures="1" errors="0" skipped="1">'
        '<testcase classname="tests.test_backend" name="test_a[torch-cuda]"><failure/></testcase>'
        "</testsuite></testsuites>"
    )
    (tmp_path / "phases.json").write_text('{"recipe": 30.5}')
    report = gpu_report.build(tmp_path, "cuda", "cuda or gpu")
    assert report["recipe"]["ratios"] == {"softreg-jax/jax-scan": 2.0}
    assert report["recipe"]["rows"]["book-pytorch"]["status"] == "failed"
    assert report["mlp"] == {"config": None, "rows": {}}
    tests = report["tests"]
    assert (tests["passed"], tests["failures"], tests["skipped"]) == (2, 1, 1)
    assert tests["failed_ids"] == ["tests.test_backend::test_a[torch-cuda]"]
    text = gpu_report.format_report(report)
    assert "mlp: not run" in text and "FAILED tests.test_backend::test_a[torch-cuda]" in text
