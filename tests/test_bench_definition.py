"""Smoke test for bench/bench_definition.py: it runs end to end on a tiny size set and writes
well-formed JSON. Nothing here asserts anything about speed."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "bench" / "bench_definition.py"
METHODS = ("index", "unchecked", "definition", "definition-prebuilt")
RATIOS = (
    "ratio_definition_over_index",
    "ratio_definition_over_unchecked",
    "ratio_prebuilt_over_index",
)


@pytest.mark.slow
def test_bench_definition_quick(tmp_path):
    out = tmp_path / "nested" / "definition.json"  # the directory does not exist yet
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--json", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, f"exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    report = json.loads(out.read_text())
    results = report["results"]
    assert {r["backend"] for r in results} >= {"numpy"}
    assert {(r["n"], r["k"]) for r in results if r["backend"] == "numpy"} == {
        (64, 10),
        (256, 10),
        (64, 100),
        (256, 100),
    }
    for r in results:
        for method in METHODS:
            assert math.isfinite(r["seconds"][method]) and r["seconds"][method] > 0, (r, method)
        for key in RATIOS:
            assert math.isfinite(r[key]) and r[key] > 0, (r, key)
        assert (
            r["ratio_definition_over_index"] == r["seconds"]["definition"] / r["seconds"]["index"]
        )
    # The printed table and the explanation.
    assert "def/index" in proc.stdout and "Why:" in proc.stdout
    assert str(out) in proc.stdout
