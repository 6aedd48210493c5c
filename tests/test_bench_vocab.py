"""Smoke test for bench/bench_vocab.py: it runs end to end at tiny sizes, writes well-formed
JSON, and refuses a row that would not fit, saying what it would need. Nothing here asserts
anything about speed."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "bench" / "bench_vocab.py"


def run(*args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, f"exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.mark.slow
def test_bench_vocab_tiny(tmp_path):
    out = tmp_path / "nested" / "vocab.json"
    proc = run(
        "--n",
        "64",
        "--d",
        "8",
        "--vocab",
        "2048,512",
        "--repeat",
        "2",
        "--chunk-size",
        "100",
        "--json",
        str(out),
    )
    report = json.loads(out.read_text())
    assert report["config"]["vocab"] == [512, 2048] and report["config"]["chunk_size"] == 100
    has_torch = importlib.util.find_spec("torch") is not None
    for per_v in report["results"].values():
        losses = []
        for row, r in per_v.items():
            if row in ("chunked-torch", "torch-ce") and not has_torch:
                assert r == {"status": "skipped", "reason": "torch not installed"}
                continue
            assert r["status"] == "ok", r
            assert len(r["seconds_all"]) == 2 and r["seconds_median"] > 0
            assert math.isfinite(r["peak_extra_mb"])
            losses.append(r["loss"])
            if row.endswith("numpy"):
                assert r["tracemalloc_peak_mb"] > 0
        assert max(losses) - min(losses) < 1e-4 * max(losses)  # every row computes the same loss
    assert len(report["goals"]) == 2
    assert all(g["met"] is None for g in report["goals"])  # V=131072 was not run
    assert "plain-numpy" in proc.stdout and "goal:" in proc.stdout
    assert not list(out.parent.glob("*.tmp"))


def test_bench_vocab_says_what_would_not_fit(tmp_path):
    """Under a tiny memory limit the plain rows are refused with their estimated need; the
    second V's estimate is scaled from the first's measured peak."""
    out = tmp_path / "vocab.json"
    proc = run(
        "--n",
        "512",
        "--d",
        "8",
        "--vocab",
        "1024,16384",
        "--rows",
        "plain-numpy",
        "--repeat",
        "1",
        "--max-gb",
        "0.02",
        "--json",
        str(out),
    )
    results = json.loads(out.read_text())["results"]
    assert results["1024"]["plain-numpy"]["status"] == "ok"  # needs ~2 MB
    refused = results["16384"]["plain-numpy"]  # would need ~34 MB
    assert refused["status"] == "too-big" and refused["basis"] == "scaled from V=1024"
    assert refused["need_gb"] > 0.02 and refused["limit_gb"] == 0.02
    assert "not run: would need" in proc.stdout
