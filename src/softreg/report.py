"""What ``softreg evaluate`` reports about a saved model, beyond its accuracy.

The chapter asks whether the most likely label is always the right answer (a medical
diagnosis, say). The report answers with :mod:`softreg.metrics`:

- top-k accuracy and the confusion matrix;
- calibration (expected calibration error, a reliability diagram) before and after
  temperature scaling, with the temperature fitted on a held-out part of the *training* set
  (never the test set);
- abstaining below a confidence threshold (``reject_below``), with the accuracy-coverage curve;
- the expected-cost decision rule for a cost matrix, next to the arg-max rule.

:func:`write_report` writes ``evaluation.json``, ``coverage.csv`` and the three figures.
"""

from __future__ import annotations

import csv
import io
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from softreg import metrics, ops
from softreg.data.split import validation_split
from softreg.errors import SoftregError, describe
from softreg.fileio import atomic_write_bytes, regular_file_opener, write_json
from softreg.limits import format_bytes
from softreg.npyfile import load_npy
from softreg.predict import finite_logits
from softreg.rundir import RunDirectory

CALIBRATION_FRACTION = 0.1  # of the training set, held out to fit the temperature
CALIBRATION_SEED = 0


def model_report(
    model: Any,
    params: dict[str, Any],
    data: Any,
    *,
    reject_below: float | None = None,
    cost: np.ndarray | None = None,
) -> dict:
    """The report of ``model`` on ``data``'s test set (a JSON-ready dict; see module doc)."""
    logits = finite_logits(model, params, data.X_test)
    _, _, X_cal, y_cal = validation_split(
        data.X_train, data.y_train, fraction=CALIBRATION_FRACTION, seed=CALIBRATION_SEED
    )
    temperature = metrics.fit_temperature(finite_logits(model, params, X_cal), y_cal)
    report = metrics.evaluation_report(
        logits, data.y_test, temperature=temperature, class_names=data.class_names
    )
    report["calibration"]["fitted_on"] = (
        f"{len(y_cal)} held-out training examples (seed {CALIBRATION_SEED})"
    )
    probs = ops.softmax(logits / temperature, axis=1)
    if reject_below is not None:
        decisions = metrics.selective_decision(probs, reject_below)
        covered = decisions >= 0
        report["abstain"] = {
            "threshold": reject_below,
            "coverage": float(covered.mean()),
            "accuracy": (
                float((decisions[covered] == data.y_test[covered]).mean())
                if covered.any()
                else None
            ),
        }
    if cost is not None:
        chosen = metrics.expected_cost_decisions(probs, cost)
        argmax = probs.argmax(axis=1)
        report["cost"] = {
            "matrix": cost.tolist(),
            "mean_cost": float(cost[data.y_test, chosen].mean()),
            "mean_cost_argmax": float(cost[data.y_test, argmax].mean()),
            "accuracy": float((chosen == data.y_test).mean()),
            "accuracy_argmax": float((argmax == data.y_test).mean()),
        }
    return report


def read_cost_matrix(path: str | Path, num_classes: int) -> np.ndarray:
    """A cost matrix from a ``.npy`` or CSV file.

    Parameters
    ----------
    path : str or Path
        A ``.npy`` file of a real-number array, or a text file of comma-separated numbers,
        one row a line (``#`` starts a comment).
    num_classes : int
        k, the number of classes.

    Returns
    -------
    ndarray of float64, shape (k, k)
        Entry ``[i, j]`` is the cost of predicting ``j`` when the truth is ``i``.

    Raises
    ------
    SoftregError
        One line starting with ``path``: the file cannot be read, is not a k x k matrix of
        finite numbers, or is larger than such a matrix can be.
    """
    path = Path(path)
    k = num_classes
    if path.suffix.lower() == ".npy":
        # the header's shape is checked before the data is read
        matrix = load_npy(path, "cost matrix", shape=(k, k)).astype(np.float64)
    else:
        matrix = _read_cost_csv(path, k)
    if matrix.shape != (k, k):
        raise SoftregError(f"{path}: the cost matrix must be {k}x{k}, got shape {matrix.shape}")
    if not np.all(np.isfinite(matrix)):
        raise SoftregError(f"{path}: the cost matrix holds an inf or nan")
    return matrix


COST_CSV_BYTES_PER_ENTRY = 64  # a float64 written with all its digits takes 24, plus ", "
COST_CSV_SLACK = 4096  # comments, blank lines, a byte-order mark


def _read_cost_csv(path: Path, k: int) -> np.ndarray:
    """The numbers of a CSV file as a 2-D float64 array, of whatever shape the file has."""
    limit = k * k * COST_CSV_BYTES_PER_ENTRY + COST_CSV_SLACK
    too_large = f"{path}: too large for a {k}x{k} cost matrix (more than {format_bytes(limit)})"
    try:
        with open(path, "rb", opener=regular_file_opener) as f:
            if os.fstat(f.fileno()).st_size > limit:
                raise SoftregError(too_large)
            data = f.read(limit + 1)  # bounded too where the size is unknown (a pipe)
    except OSError as exc:
        raise SoftregError(f"{path}: cannot read a cost matrix ({exc.strerror or exc})") from None
    if len(data) > limit:
        raise SoftregError(too_large)
    try:
        lines = data.decode("utf-8-sig").splitlines()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "input contained no data": refused below
            matrix = np.loadtxt(lines, delimiter=",", ndmin=2, dtype=np.float64)
    except (ValueError, TypeError, OverflowError) as exc:
        # UnicodeDecodeError is a ValueError; loadtxt's own errors say row and column
        raise SoftregError(f"{path}: cannot read a cost matrix ({describe(exc)})") from None
    if matrix.size == 0:
        raise SoftregError(f"{path}: cannot read a cost matrix (the file holds no numbers)")
    return matrix


def format_report(report: dict) -> list[str]:
    """The report as lines a person reads (the accuracy line is printed before these)."""
    topk = ", ".join(f"top-{k} {v:.4f}" for k, v in report["top_k"].items())
    cal = report["calibration"]
    lines = [
        f"top-k accuracy: {topk}",
        f"calibration: ECE {report['ece']:.4f} ({cal['n_bins']} bins); temperature "
        f"{cal['temperature']:.3f} fitted on {cal['fitted_on']}: ECE {cal['ece']:.4f}, "
        f"NLL {report['nll']:.4f} -> {cal['nll']:.4f}",
    ]
    if "abstain" in report:
        a = report["abstain"]
        accuracy = "n/a" if a["accuracy"] is None else f"{a['accuracy']:.4f}"
        lines.append(
            f"abstain below {a['threshold']:g}: coverage {a['coverage']:.4f}, "
            f"accuracy on the rest {accuracy}"
        )
    if "cost" in report:
        c = report["cost"]
        lines.append(
            f"expected-cost rule: mean cost {c['mean_cost']:.4f} (arg-max: "
            f"{c['mean_cost_argmax']:.4f}), accuracy {c['accuracy']:.4f} (arg-max: "
            f"{c['accuracy_argmax']:.4f})"
        )
    return lines


REPORT_FILES = (
    "evaluation.json",
    "coverage.csv",
    "confusion.png",
    "reliability.png",
    "coverage.png",
)


def report_directory(out_dir: str | Path) -> RunDirectory:
    """Where a report goes: it replaces an earlier report's files there, one writer at a
    time (see :mod:`softreg.rundir`); :meth:`RunDirectory.check` it before the work.
    """
    return RunDirectory(out_dir, REPORT_FILES, overwrite=True, what="output directory")


def write_report(report: dict, out_dir: str | Path, *, plots: bool = True) -> list[Path]:
    """``evaluation.json``, ``coverage.csv`` and, with ``plots``, ``confusion.png``,
    ``reliability.png`` and ``coverage.png`` in ``out_dir`` (each written atomically, an
    earlier report's files replaced).
    """
    directory = report_directory(out_dir)
    with directory:
        directory.open()
        return _write_report(report, directory.path, plots)


def _write_report(report: dict, out_dir: Path, plots: bool) -> list[Path]:
    written = [out_dir / "evaluation.json", out_dir / "coverage.csv"]
    write_json(written[0], report)
    buf = io.StringIO()
    writer = csv.DictWriter(
        buf, fieldnames=["threshold", "coverage", "accuracy"], lineterminator="\n"
    )
    writer.writeheader()
    writer.writerows(report["accuracy_coverage"])
    atomic_write_bytes(written[1], buf.getvalue().encode())
    if plots:
        from softreg import plotting

        cal = report["calibration"]
        figures = {
            "confusion": plotting.plot_confusion_matrix(
                np.asarray(report["confusion_matrix"]), report["class_names"]
            ),
            "reliability": plotting.plot_reliability(cal["before"], cal["after"]),
            "coverage": plotting.plot_accuracy_coverage(report["accuracy_coverage"]),
        }
        for name, fig in figures.items():
            written += plotting.save_figure(fig, out_dir / name)
    return written
