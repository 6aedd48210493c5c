"""The benchmarks page, written from the JSON reports the benchmark scripts write.

Every ``bench/results/*.json`` report of ``bench/bench_recipe.py`` becomes a section of
``docs/benchmarks.rst``: the command that wrote it, when and on what machine, a table (row,
train s, x vs the book, test acc, peak RSS) and a bar chart of the training times
(``docs/_bench/<name>.png``). No number on the page is typed by hand.

As a Sphinx extension (``extensions = [..., "bench_tables"]`` with ``docs/_ext`` on
``sys.path``) it writes the page when the build starts; as a script it writes it once::

    python docs/_ext/bench_tables.py [--results bench/results] [--out docs]
"""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PAGE = "benchmarks.rst"
IMAGES = "_bench"
BOOK = "book-pytorch"
WHAT = {
    "floor-numpy": "lower bound: the gathers and matmuls alone (learns nothing)",
    "plain-numpy": "a hand-written NumPy loop",
    "softreg-fit": "softreg.fit on NumPy (the array kernel)",
    "softreg-fused": "softreg.fit on NumPy, the fused numba kernel",
    "softreg-torch": "softreg.fit, backend torch",
    "softreg-jax": "softreg.fit, backend jax",
    "jax-scan": "a plain JAX program: one jitted lax.scan per epoch",
    "softreg-tf": "softreg.fit, backend tensorflow (CPU)",
    "softreg-cli": "the whole softreg train command",
    "book-pytorch": "the book's d2l 3.6 PyTorch program",
    "torch-concise": "the book's d2l 3.7 concise PyTorch",
    "torch-inmemory": "a careful in-memory PyTorch loop",
    "sklearn-logreg": "scikit-learn LogisticRegression()",
    "sklearn-logreg-best": "LogisticRegression(max_iter=2000)",
    "sklearn-sgd": "scikit-learn SGDClassifier(log_loss)",
    "softreg-best-linear": "softreg's best-linear recipe",
}

INTRO = """\
Benchmarks
==========

The numbers below are read from the JSON reports that the benchmark scripts in ``bench/``
write (``bench/results/*.json``); the page is regenerated from them on every documentation
build, so it cannot drift from a run. To refresh a table, run the command shown above it and
rebuild the documentation. ``bench/README.md`` describes every row and how it is measured.

Each row trains the book's softmax-regression recipe (batch 256, lr 0.1, the same initial
weights and example order) in a fresh Python process. *train s* is the training loop with the
per-epoch test evaluation (median over the runs), *x vs book* is the book's training time over
the row's, *peak RSS* the process's peak resident memory. Times depend on the machine and on
what else runs on it: the one-minute load average after each run is shown with every table.
"""


def fmt(value: Any, spec: str) -> str:
    """``value`` formatted with ``spec``, or ``-`` when there is none."""
    return "-" if value is None else format(value, spec)


def load_reports(results: Path) -> list[tuple[Path, dict[str, Any]]]:
    """The recipe reports under ``results``, sorted by file name."""
    reports = []
    for path in sorted(results.glob("*.json")):
        report = json.loads(path.read_text())
        if report.get("benchmark") == "recipe":
            reports.append((path, report))
    return reports


def table_rows(report: dict[str, Any]) -> list[list[str]]:
    """One line of cells per measured row of ``report``."""
    rows = report["rows"]
    book = rows.get(BOOK, {}).get("seconds_train_median")
    lines = []
    for name, row in rows.items():
        if row.get("status") != "ok":
            status = row.get("status", "failed")
            lines.append([f"``{name}``", WHAT.get(name, ""), status, "", "", "", ""])
            continue
        seconds = row["seconds_train_median"]
        speedup = book / seconds if book and seconds else None
        lines.append(
            [
                f"``{name}``",
                WHAT.get(name, ""),
                fmt(seconds, ".3f"),
                fmt(row.get("seconds_train_min"), ".3f"),
                fmt(speedup, ".1f"),
                fmt(row.get("test_acc"), ".4f"),
                fmt(row.get("peak_rss_mb"), ".0f"),
            ]
        )
    return lines


def list_table(header: list[str], lines: list[list[str]]) -> str:
    """An rST list-table."""
    out = [".. list-table::", "   :header-rows: 1", ""]
    for cells in [header, *lines]:
        out.append(f"   * - {cells[0]}")
        out.extend(f"     - {cell}" for cell in cells[1:])
    return "\n".join(out) + "\n"


def loads(report: dict[str, Any]) -> list[float]:
    """The one-minute load averages recorded after the runs."""
    return [
        run["loadavg_1min_after"]
        for row in report["rows"].values()
        for run in row.get("runs", [])
        if "loadavg_1min_after" in run
    ]


def draw_chart(report: dict[str, Any], path: Path) -> None:
    """A horizontal bar chart of each row's median training time, a tick at its fastest run."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    rows = [(n, r) for n, r in report["rows"].items() if r.get("status") == "ok"]
    names = [n for n, _ in rows]
    seconds = [r["seconds_train_median"] for _, r in rows]
    fig = Figure(figsize=(7, 0.45 * len(rows) + 1.2), layout="constrained")
    ax = fig.add_subplot()
    colors = ["C1" if n == BOOK else "C0" if n.startswith("softreg") else "C7" for n in names]
    ax.barh(names, seconds, color=colors, label="median")
    fastest = [r.get("seconds_train_min") for _, r in rows]
    ax.plot(fastest, range(len(rows)), "k|", markersize=18, mew=2, label="fastest run")
    fig.legend(loc="outside lower center", ncols=2, fontsize="small")
    ax.invert_yaxis()
    ax.set_xscale("log")
    for y, s in enumerate(seconds):
        ax.annotate(f" {s:.2f} s", (s, y), va="center", fontsize="small")
    config = report["config"]
    ax.set_xlabel("training time, s (median; log scale)")
    ax.set_title(f"{config['dataset']}, {config['epochs']} epochs, batch {config['batch_size']}")
    ax.margins(x=0.25)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def section(path: Path, report: dict[str, Any], image: str) -> str:
    """The page's section for one report."""
    config, machine = report["config"], report["machine"]
    limit = f", first {config['limit']} examples" if config.get("limit") else ""
    title = f"{config['dataset']}{limit}: ``{path.name}``"
    command = shlex.join(["python", *report["command"][1:]])
    load = loads(report)
    load_text = f"{min(load):.1f} to {max(load):.1f}" if load else "not recorded"
    blas = machine.get("numpy_blas", {})
    lines = [
        title,
        "-" * len(title),
        "",
        "Regenerate with::",
        "",
        f"    SOFTREG_DATA=/path/to/data {command}",
        "",
        f"Run {report['created'][:10]}: {machine['cpu_count']} CPUs "
        f"({machine.get('cpu_model', '?')}), "
        f"Python {machine['python']}, NumPy {machine['numpy']}"
        + (f" with {blas['name']} {blas.get('version', '')}".rstrip() if blas else "")
        + f", softreg {report.get('softreg', '?')}; device {config.get('device', 'cpu')}; "
        f"{config['epochs']} epochs, "
        f"{config['repeat']} run(s) per row (the slow rows once); load average after the runs: "
        f"{load_text}.",
        "",
        list_table(
            ["row", "what runs", "train s", "min s", "x vs book", "test acc", "peak RSS MB"],
            table_rows(report),
        ),
        f".. image:: {image}",
        f"   :alt: training time of each row, {config['dataset']}",
        "",
    ]
    goals = [g for g in report.get("goals", []) if g.get("met") is not None]
    if goals:
        lines += ["The script's own checks on this run:", ""]
        lines += [
            f"- {g['goal']}: {'met' if g['met'] else 'not met'} ({g['value']:.3f})" for g in goals
        ]
        lines.append("")
    if report.get("book_over_floor"):
        lines += [
            f"The book's program over the floor (gathers and matmuls alone): "
            f"{report['book_over_floor']:.1f}x, the largest speed-up any NumPy loop of the "
            "recipe could show in this run.",
            "",
        ]
    return "\n".join(lines)


def write_page(results: Path, out: Path) -> Path:
    """Write ``out/benchmarks.rst`` and its charts from the reports under ``results``."""
    parts = [INTRO]
    reports = load_reports(results)
    if not reports:
        parts.append("No benchmark report found under ``bench/results/``.\n")
    for path, report in reports:
        image = f"{IMAGES}/{path.stem}.png"
        draw_chart(report, out / image)
        parts.append(section(path, report, image))
    page = out / PAGE
    page.write_text("\n".join(parts))
    return page


def _on_builder_inited(app: Any) -> None:
    write_page(REPO / "bench" / "results", Path(app.srcdir))


def setup(app: Any) -> dict[str, Any]:
    """Sphinx entry point: write the page when the build starts."""
    app.connect("builder-inited", _on_builder_inited)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


def main(argv: list[str] | None = None) -> int:
    """Write the page once, from the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--out", type=Path, default=REPO / "docs")
    args = parser.parse_args(argv)
    print(write_page(args.results, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
