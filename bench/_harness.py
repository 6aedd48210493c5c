"""What the benchmark scripts share: workers in fresh processes, timing rounds, reports.

Every benchmark measures each row in a process of its own (the script itself, run with
``--worker ROW``, printing one JSON object as its last line of output), so that import costs
and peak memory are one row's alone. The driver runs the rows round-robin, ``--repeat`` times,
so that a change in the machine's load hits every row alike, and writes one JSON report.

Peak memory comes from ``softreg.run_metrics`` (``peak_rss_mb``, ``maxrss_mb``): softreg writes the
same number into a run's ``metrics.json``, and the benchmarks report it as softreg does.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Hashable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from softreg.fileio import write_json
from softreg.run_metrics import maxrss_mb, peak_rss_mb

__all__ = [
    "add_data_dir_option",
    "add_json_option",
    "add_limit_option",
    "comma_separated",
    "data_dir",
    "failed_row",
    "goal",
    "machine_info",
    "missing_libraries",
    "peak_rss_mb",
    "positive_int",
    "print_goals",
    "proc_value",
    "report_header",
    "run_process",
    "run_rounds",
    "run_worker",
    "utc_timestamp",
    "warn_if_busy",
    "write_report",
]

# What a worker's JSON result gains from the driver's view of its process.
PROCESS_MEASURES = ("wall_seconds", "process_peak_rss_mb")


# --------------------------------------------------------------------------------------------
# Command lines.


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def comma_separated(kind: Callable[[str], Any], choices: Sequence[Any] | None = None):
    """An argparse type: a comma-separated list of ``kind`` values (from ``choices`` when
    given), duplicates dropped, order kept."""

    def parse(text: str) -> list[Any]:
        values = [kind(v.strip()) for v in text.split(",") if v.strip()]
        if not values or (choices and any(v not in choices for v in values)):
            raise argparse.ArgumentTypeError(
                f"expected a comma-separated subset of "
                f"{','.join(map(str, choices or ()))}, got {text!r}"
            )
        return list(dict.fromkeys(values))

    return parse


def add_limit_option(parser: argparse.ArgumentParser) -> None:
    """``--limit N``: only the first N training and test examples (smoke tests)."""
    parser.add_argument(
        "--limit",
        type=positive_int,
        default=None,
        metavar="N",
        help="use only the first N training and test examples (smoke tests)",
    )


def add_data_dir_option(parser: argparse.ArgumentParser) -> None:
    """``--data-dir DIR``: where the dataset is (see :func:`data_dir`)."""
    parser.add_argument(
        "--data-dir",
        default=None,
        metavar="DIR",
        help="dataset directory (default: $SOFTREG_DATA, then softreg's search)",
    )


def add_json_option(parser: argparse.ArgumentParser, default: Path) -> None:
    """``--json PATH``: where the report goes (``default``: bench/results/NAME.json)."""
    parser.add_argument(
        "--json",
        type=Path,
        default=default,
        metavar="PATH",
        help=f"where to write the results (default: bench/results/{default.name})",
    )


def data_dir(given: str | None) -> str | None:
    """The dataset directory: ``given`` (``--data-dir``), else ``$SOFTREG_DATA``, else None
    (softreg's own search)."""
    if given is not None:
        return given
    return os.environ.get("SOFTREG_DATA") or None


# --------------------------------------------------------------------------------------------
# Workers: one process per measurement.


def run_process(cmd: list[str], env: dict[str, str] | None = None) -> dict:
    """Run ``cmd``; return its stdout, stderr, exit code, wall seconds and peak RSS (from wait4,
    so it is the child's own ru_maxrss, whichever program it is)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        return {
            "rc": proc.returncode,
            "stdout": out.read().decode(errors="replace"),
            "stderr": err.read().decode(errors="replace"),
            "wall_seconds": wall,
            "process_peak_rss_mb": maxrss_mb(usage.ru_maxrss),
        }


def run_worker(
    script: str | Path,
    row: str,
    options: dict[str, Any],
    *,
    launch: Sequence[str] = (),
    env: dict[str, str] | None = None,
    measures: Sequence[str] = PROCESS_MEASURES,
) -> dict:
    """Run ``script --worker row`` with ``options`` (flag -> value; None values left out) in a
    fresh process, started by ``launch`` (default: this Python) with ``env``.

    Returns the worker's JSON result with ``ok=True`` and the ``measures`` of its process
    (``wall_seconds``, ``process_peak_rss_mb``), or ``{"ok": False, "rc", "stderr_tail"}``.
    """
    cmd = [*(launch or [sys.executable]), str(Path(script).resolve()), "--worker", row]
    for flag, value in options.items():
        if value is not None:
            cmd += [flag, str(value)]
    proc = run_process(cmd, env=env)
    if proc["rc"] != 0:
        return {"ok": False, "rc": proc["rc"], "stderr_tail": proc["stderr"][-2000:]}
    result = json.loads(proc["stdout"].strip().splitlines()[-1])
    result.update(ok=True, **{key: proc[key] for key in measures})
    return result


def failed_row(res: dict) -> dict:
    """The report's row for a worker that failed (``run_worker``'s ``ok=False`` result)."""
    return {
        "status": "failed",
        "reason": f"exit status {res['rc']}",
        "stderr_tail": res["stderr_tail"],
    }


def run_rounds(
    keys: Iterable[Hashable],
    repeat: int,
    run_one: Callable[[Any], dict],
    progress: Callable[[Any, dict], str],
    *,
    once: Iterable[Hashable] = (),
    label: Callable[[Any], str] = str,
    record_load: bool = False,
) -> tuple[dict[Any, list[dict]], dict[Any, dict]]:
    """Run every key ``repeat`` times, round-robin, so that drift in the machine's load hits
    every row alike; keys in ``once`` run in the first round only, and a key that fails once
    is not run again.

    ``run_one(key)`` returns a result with ``ok`` (as :func:`run_worker` does); each success
    is reported on stderr as ``[round/repeat] progress(key, result)``, each failure as
    ``bench: label(key) failed`` with its stderr. With ``record_load``, each success gets the
    one-minute load average after it as ``loadavg_1min_after``. Returns ``(runs, failed)``:
    the successful results per key, and the :func:`failed_row` of each key that failed, in
    the order they failed.
    """
    keys, once = list(keys), set(once)
    runs: dict[Any, list[dict]] = {key: [] for key in keys}
    failed: dict[Any, dict] = {}
    for rep in range(repeat):
        for key in keys:
            if key in failed or (rep and key in once):
                continue
            res = run_one(key)
            if not res["ok"]:
                failed[key] = failed_row(res)
                print(f"bench: {label(key)} failed:\n{res['stderr_tail']}", file=sys.stderr)
                continue
            if record_load:
                res["loadavg_1min_after"] = os.getloadavg()[0]
            runs[key].append(res)
            print(f"[{rep + 1}/{repeat}] {progress(key, res)}", file=sys.stderr, flush=True)
    return runs, failed


def missing_libraries(rows: Iterable[str], needs: dict[str, str]) -> dict[str, dict]:
    """The skipped row of each of ``rows`` whose library (``needs[row]``) is not installed."""
    return {
        row: {"status": "skipped", "reason": f"{needs[row]} not installed"}
        for row in rows
        if row in needs and importlib.util.find_spec(needs[row]) is None
    }


def warn_if_busy() -> None:
    """Say on stderr when the machine is busy (load average over half its CPUs)."""
    load = os.getloadavg()
    if load[0] > 0.5 * (os.cpu_count() or 1):
        print(
            f"bench: warning: the machine is busy (load average {load[0]:.2f}); "
            "timings will be noisy",
            file=sys.stderr,
        )


# --------------------------------------------------------------------------------------------
# Reports.


def utc_timestamp() -> str:
    """Now, in UTC, to the second (ISO 8601)."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def report_header(benchmark: str, config: dict) -> dict:
    """The first keys of every report: the benchmark's name, when, the command, the config."""
    return {
        "benchmark": benchmark,
        "created": utc_timestamp(),
        "command": [Path(sys.executable).name, *sys.argv],
        "config": config,
    }


def write_report(path: Path, report: dict) -> None:
    """Write ``report`` as indented JSON at ``path`` (atomically), creating its directory."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_json(path, report)


def goal(text: str, value: float | None, met: Callable[[float], bool]) -> dict:
    """A goal of the report: its text, the measured value, and whether ``met(value)`` (None
    when the value was not measured)."""
    return {"goal": text, "value": value, "met": None if value is None else met(value)}


def print_goals(goals: Iterable[dict]) -> None:
    """Print one line per goal: met, NOT met or not measured, with the value."""
    for g in goals:
        verdict = {True: "met", False: "NOT met", None: "not measured"}[g["met"]]
        value = "" if g["value"] is None else f" ({g['value']:.3f})"
        print(f"goal: {g['goal']}: {verdict}{value}")


def machine_info() -> dict:
    """The machine the numbers come from: platform, CPU, Python, NumPy and its BLAS, the
    thread settings and thread pools."""
    info = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": proc_value("/proc/cpuinfo", "model name") or platform.processor() or None,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "thread_env": {
            k: os.environ[k]
            for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
            if k in os.environ
        },
    }
    if hasattr(os, "sched_getaffinity"):
        info["cpus_usable"] = len(os.sched_getaffinity(0))
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        info["numpy_blas"] = {
            k: blas.get(k) for k in ("name", "version", "openblas configuration") if k in blas
        }
    except Exception:  # the layout of show_config is not a stable API
        pass
    if importlib.util.find_spec("threadpoolctl") is not None:
        import threadpoolctl

        info["threadpools"] = threadpoolctl.threadpool_info()
    return info


def proc_value(path: str, key: str) -> str | None:
    """The value of the first ``key: value`` line of a ``/proc`` file (None: no such line,
    or no such file)."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None
