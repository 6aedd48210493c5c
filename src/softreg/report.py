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

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from softreg import metrics, ops
from softreg.data.split import validation_split
from softreg.errors import SoftregError, describe
from softreg.fileio import regular_file_opener, write_csv, write_json
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
    """Return the report of ``model`` on ``data``'s test set.

    The temperature is fitted on a held-out part of ``data``'s training set
    (:data:`CALIBRATION_FRACTION`, seed :data:`CALIBRATION_SEED`), never on the test set.

    Parameters
    ----------
    model : SoftmaxRegression or MLP
        The model.
    params : dict of str to array
        Its parameters.
    data : Dataset or TabularDataset
        The data: ``X_train`` ``(n_samples, n_features)`` and ``y_train`` ``(n_samples,)``
        for the calibration split, ``X_test`` and ``y_test`` for the report, and
        ``class_names``.
    reject_below : float or None
        Abstain when the top (temperature-scaled) probability is below this; reported as
        coverage and accuracy on the rest.
    cost : ndarray of shape (n_classes, n_classes) or None
        ``cost[i, j]`` is the cost of predicting ``j`` when the truth is ``i``: the
        expected-cost decisions are compared with the arg-max rule.

    Returns
    -------
    dict
        JSON-ready: :func:`softreg.metrics.evaluation_report`'s accuracy, top-k, confusion
        matrix, calibration before and after temperature scaling and accuracy-coverage
        curve, plus ``abstain`` and ``cost`` when asked for.

    Raises
    ------
    SoftregError
        The model's scores are not finite.
    """
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
        report["abstain"] = _abstain(probs, data.y_test, reject_below)
    if cost is not None:
        report["cost"] = _cost_decisions(probs, data.y_test, cost)
    return report


def _abstain(probs: np.ndarray, y: np.ndarray, threshold: float) -> dict[str, Any]:
    """Return coverage and accuracy when abstaining below ``threshold``."""
    decisions = metrics.selective_decision(probs, threshold)
    covered = decisions >= 0
    return {
        "threshold": threshold,
        "coverage": float(covered.mean()),
        "accuracy": (float((decisions[covered] == y[covered]).mean()) if covered.any() else None),
    }


def _cost_decisions(probs: np.ndarray, y: np.ndarray, cost: np.ndarray) -> dict[str, Any]:
    """Return the expected-cost rule's mean cost and accuracy, next to the arg-max rule's."""
    chosen = metrics.expected_cost_decisions(probs, cost)
    argmax = probs.argmax(axis=1)
    return {
        "matrix": cost.tolist(),
        "mean_cost": float(cost[y, chosen].mean()),
        "mean_cost_argmax": float(cost[y, argmax].mean()),
        "accuracy": float((chosen == y).mean()),
        "accuracy_argmax": float((argmax == y).mean()),
    }


def read_cost_matrix(path: str | Path, num_classes: int) -> np.ndarray:
    """Read a cost matrix from a ``.npy`` or CSV file.

    Parameters
    ----------
    path : str or Path
        A ``.npy`` file of a real-number array, or a text file of comma-separated numbers,
        one row a line (``#`` starts a comment).
    num_classes : int
        k, the number of classes.

    Returns
    -------
    ndarray of float64 of shape (k, k)
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
    """Read the numbers of a CSV file as a 2-D float64 array, of whatever shape it has."""
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
    """Return the report as lines a person reads.

    Parameters
    ----------
    report : dict
        What :func:`model_report` returned.

    Returns
    -------
    list of str
        Top-k accuracy, calibration, and the abstaining and cost lines when the report has
        them. The accuracy line, printed before these, is the caller's.
    """
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
    """Return the directory a report goes to.

    A report replaces an earlier report's files there, one writer at a time (see
    :mod:`softreg.rundir`); :meth:`~softreg.rundir.RunDirectory.check` it before the work.

    Parameters
    ----------
    out_dir : str or Path
        The directory.

    Returns
    -------
    RunDirectory
        Not yet checked, locked or created.
    """
    return RunDirectory(out_dir, REPORT_FILES, overwrite=True, what="output directory")


def write_report(report: dict, out_dir: str | Path, *, plots: bool = True) -> list[Path]:
    """Write the report's files to ``out_dir``.

    ``evaluation.json``, ``coverage.csv`` and, with ``plots``, ``confusion.png``,
    ``reliability.png`` and ``coverage.png``: each written atomically, an earlier report's
    files replaced.

    Parameters
    ----------
    report : dict
        What :func:`model_report` returned.
    out_dir : str or Path
        The directory; created if need be.
    plots : bool
        Draw the three figures (needs matplotlib).

    Returns
    -------
    list of Path
        The files written, ``evaluation.json`` first.

    Raises
    ------
    RunDirError
        ``out_dir`` cannot be used, or another process is writing there.
    """
    directory = report_directory(out_dir)
    with directory:
        directory.open()
        return _write_report(report, directory.path, plots)


def _write_report(report: dict, out_dir: Path, plots: bool) -> list[Path]:
    """Write the report's files to the locked directory ``out_dir``."""
    written = [out_dir / "evaluation.json", out_dir / "coverage.csv"]
    write_json(written[0], report)
    write_csv(written[1], report["accuracy_coverage"])  # threshold, coverage, accuracy
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
