#!/usr/bin/env python
"""Gather what ``bench/gpu.sh`` measured into one report, ``bench/results/gpu.json``, and print
it as a table.

Its inputs are the pieces gpu.sh writes in its work directory: the JSON reports of
``bench_recipe.py`` and ``bench_mlp.py`` run with ``--device cuda``, the tests' JUnit XML
(``pytest -k "cuda or gpu" --junitxml``), the GPU's description (``nvidia-smi``'s query) and the
seconds each phase took. A piece that is missing (a phase that failed or was left out) is
reported as such::

    python bench/gpu_report.py --work DIR --json bench/results/gpu.json
"""

from __future__ import annotations

import argparse
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from _harness import machine_info, report_header, write_report

# training-time ratios worth reading on a GPU: (numerator, denominator)
RATIOS = (
    ("book-pytorch", "softreg-torch"),
    ("book-pytorch", "softreg-jax"),
    ("softreg-jax", "jax-scan"),
    ("softreg-torch", "softreg-jax"),
)


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON at ``path``, or None when there is none."""
    return json.loads(path.read_text()) if path.is_file() else None


def test_counts(junit: Path) -> dict[str, Any] | None:
    """Tests, failures, errors and skips from a JUnit XML file (None: no file), with the ids
    of the tests that failed."""
    if not junit.is_file():
        return None
    root = ET.parse(junit).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    counts = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors")}
    counts["skipped"] = sum(int(s.get("skipped", 0)) for s in suites)
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    counts["failed_ids"] = [
        f"{case.get('classname')}::{case.get('name')}"
        for case in root.iter("testcase")
        if case.find("failure") is not None or case.find("error") is not None
    ]
    return counts


def rows_of(report: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Each row's status, median training and compile seconds, test accuracy, peak RSS."""
    if report is None:
        return {}
    out = {}
    for name, row in report["rows"].items():
        if row.get("status") != "ok":
            out[name] = {"status": row.get("status"), "reason": row.get("reason")}
            continue
        out[name] = {
            "status": "ok",
            "seconds_train_median": row["seconds_train_median"],
            "seconds_compile_median": row.get("seconds_compile_median", 0.0),
            "test_acc": row.get("test_acc"),
            "peak_rss_mb": row.get("peak_rss_mb"),
            "device": row["runs"][-1].get("device") if row.get("runs") else None,
        }
    return out


def ratios(rows: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    """The training-time ratios of :data:`RATIOS` whose rows both ran."""
    out = {}
    for num, den in RATIOS:
        a, b = rows.get(num, {}), rows.get(den, {})
        if a.get("status") == "ok" and b.get("status") == "ok":
            out[f"{num}/{den}"] = a["seconds_train_median"] / b["seconds_train_median"]
    return out


def build(work: Path, device: str, tests_k: str | None = None) -> dict[str, Any]:
    """The report from the pieces in ``work``."""
    recipe, mlp = read_json(work / "recipe.json"), read_json(work / "mlp.json")
    recipe_rows = rows_of(recipe)
    gpu = (work / "gpu.txt").read_text().strip() if (work / "gpu.txt").is_file() else None
    phases = read_json(work / "phases.json") or {}
    return {
        **report_header("gpu", {"device": device, "phases": list(phases)}),
        "gpu": gpu,
        "machine": machine_info(),
        "versions": read_json(work / "versions.json"),
        "phase_seconds": phases,
        "recipe": {
            "config": recipe["config"] if recipe else None,
            "rows": recipe_rows,
            "ratios": ratios(recipe_rows),
        },
        "mlp": {"config": mlp["config"] if mlp else None, "rows": rows_of(mlp)},
        "tests": test_counts(work / "tests.xml"),
        "tests_selection": tests_k,
    }


def format_report(report: dict[str, Any]) -> str:
    """The report as a few lines of text."""
    lines = [f"GPU: {report['gpu'] or 'unknown'}; device {report['config']['device']}"]
    for name in ("recipe", "mlp"):
        part = report[name]
        lines += ["", f"{name}: {'not run' if part['config'] is None else ''}".rstrip()]
        if part["config"] is None:
            continue
        lines.append(f"  {'row':<16}{'train s':>9}{'compile s':>11}{'test acc':>10}  device")
        for row_name, row in part["rows"].items():
            if row["status"] != "ok":
                lines.append(f"  {row_name:<16}{row['status']} ({row.get('reason')})")
                continue
            acc = "-" if row["test_acc"] is None else f"{row['test_acc']:.4f}"
            lines.append(
                f"  {row_name:<16}{row['seconds_train_median']:>9.3f}"
                f"{row['seconds_compile_median']:>11.3f}{acc:>10}  {row['device']}"
            )
        for ratio_name, value in part.get("ratios", {}).items():
            lines.append(f"  ratio {ratio_name}: {value:.2f}")
    tests = report["tests"]
    lines.append("")
    if tests is None:
        lines.append("tests: not run")
    else:
        lines.append(
            f"tests (-k {report['tests_selection']!r}): {tests['passed']} passed, "
            f"{tests['failures']} failed, {tests['errors']} errors, {tests['skipped']} skipped"
        )
        lines += [f"  FAILED {test_id}" for test_id in tests["failed_ids"]]
    phases = report["phase_seconds"]
    if phases:
        lines.append(
            "phases: "
            + ", ".join(f"{k} {v:.0f} s" for k, v in phases.items())
            + f"; total {sum(phases.values()):.0f} s"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="gpu.sh's work directory")
    parser.add_argument("--json", type=Path, required=True, help="where the report goes")
    parser.add_argument("--device", default="cuda", help="the device the rows ran on")
    parser.add_argument("--tests-k", default=None, help="the tests' -k selection")
    args = parser.parse_args(argv)
    report = build(args.work, args.device, args.tests_k)
    write_report(args.json, report)
    print(format_report(report))
    print(f"results: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
