"""``softreg evaluate``, ``predict``, ``data`` and ``stability``: the commands that read.

They look at a saved model, a dataset or softmax's numerics, and never load the training
code: what they need is imported when the command runs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from softreg.errors import SoftregError, printable, require


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Run ``softreg evaluate``: the report on a saved model's test-set predictions.

    Every check runs before the work: the output directory, the model file, the options.

    Parameters
    ----------
    args : argparse.Namespace
        The model file, and ``--dataset``, ``--data-dir``, ``--json``, ``--reject-below``,
        ``--cost-matrix``, ``--out`` and ``--no-plots``.

    Returns
    -------
    int
        0, once the report is written and its summary printed (one JSON line with
        ``--json``).

    Raises
    ------
    SoftregError
        The model file, the dataset, the cost matrix, ``--reject-below`` or the output
        directory is refused.
    """
    from softreg.checkpoint import load_model
    from softreg.report import model_report, read_cost_matrix, report_directory, write_report

    out = args.out or args.model.parent / "evaluation"
    report_directory(out).check()  # before the work, as everything below
    loaded = load_model(args.model)
    if args.reject_below is not None and not 0 <= args.reject_below <= 1:
        raise SoftregError(
            f"--reject-below must be a probability in [0, 1], got {args.reject_below}"
        )
    if not args.no_plots:
        require("matplotlib.figure", "drawing the figures (or pass --no-plots)")
    data = _dataset_for(loaded, args)
    cost = (
        read_cost_matrix(args.cost_matrix, data.num_classes)
        if args.cost_matrix is not None
        else None
    )
    report = model_report(
        loaded.model, loaded.params, data, reject_below=args.reject_below, cost=cost
    )
    written = write_report(report, out, plots=not args.no_plots)
    _print_evaluation(report, data.name, written, out, as_json=args.json)
    return 0


def _print_evaluation(
    report: dict, dataset: str, written: list[Path], out: Path, *, as_json: bool
) -> None:
    """Print the report's summary: one JSON line, or lines a person reads."""
    from softreg.report import format_report

    if as_json:
        summary = {
            "dataset": dataset,
            "test_acc": report["accuracy"],
            "test_loss": report["nll"],
            "n": report["n"],
            "report": str(written[0]),
        }
        print(json.dumps(summary))
        return
    correct = round(report["accuracy"] * report["n"])
    print(
        f"{dataset} test accuracy {report['accuracy']:.4f} ({correct}/{report['n']}), "
        f"test loss {report['nll']:.4f}"
    )
    print("\n".join(format_report(report)))
    print(printable(f"wrote {out}/ ({', '.join(p.name for p in written)})"))


def cmd_predict(args: argparse.Namespace) -> int:
    """Run ``softreg predict``: the most likely classes of test images or image files.

    Parameters
    ----------
    args : argparse.Namespace
        The model file and the image files, and ``--index``, ``--dataset``, ``--data-dir``,
        ``--top`` and ``--invert``.

    Returns
    -------
    int
        0, once a line per input has named its ``--top`` classes and their probabilities
        (and a test image's true class).

    Raises
    ------
    SoftregError
        Nothing to predict, ``--top`` below 1, an index outside the test set, or a model
        file, dataset or image that is refused.
    """
    import numpy as np

    from softreg.checkpoint import load_model
    from softreg.predict import predict_top_k

    loaded = load_model(args.model)
    if not args.images and not args.index:
        raise SoftregError("nothing to predict: give image files or --index I ...")
    if args.top < 1:
        raise SoftregError(f"--top must be >= 1, got {args.top}")
    names, rows, truths = _test_rows(loaded, args) if args.index else ([], [], [])
    for path, row in _image_rows(loaded, args):
        names.append(str(path))
        rows.append(row)
        truths.append(None)
    X = np.stack(rows)
    _check_features(loaded, X.shape[1], "input")
    width = max(len(n) for n in names)
    predictions = predict_top_k(loaded.model, loaded.params, X, loaded.class_names, k=args.top)
    for name, pred, truth in zip(names, predictions, truths, strict=True):
        ranked = ", ".join(
            f"{label} ({p:.3f})" for label, p in zip(pred.labels, pred.probs, strict=True)
        )
        suffix = f"   true: {truth}" if truth is not None else ""
        print(printable(f"{name:<{width}}  {ranked}{suffix}"))
    return 0


def _test_rows(loaded: Any, args: argparse.Namespace) -> tuple[list, list, list]:
    """Return the names, feature rows and true labels of the test images ``--index`` picks."""
    data = _dataset_for(loaded, args)
    n_test = data.X_test.shape[0]
    names, rows, truths = [], [], []
    for i in args.index:
        if not 0 <= i < n_test:
            raise SoftregError(f"--index {i} outside the test set [0, {n_test})")
        names.append(f"test[{i}]")
        rows.append(data.X_test[i])
        truths.append(data.class_names[data.y_test[i]])
    return names, rows, truths


def _image_rows(loaded: Any, args: argparse.Namespace) -> list[tuple[Path, Any]]:
    """Return each image file with its pixels as a feature row in [0, 1]."""
    import numpy as np

    from softreg.predict import read_image_file

    side = int(round(loaded.model.num_inputs**0.5))
    rows = []
    for path in args.images:
        image = read_image_file(path, size=(side, side), invert=args.invert)
        rows.append((path, image.reshape(-1).astype(np.float32) / np.float32(255)))
    return rows


def cmd_data(args: argparse.Namespace) -> int:
    """Run ``softreg data``: find (or download) a dataset and say where it is.

    Parameters
    ----------
    args : argparse.Namespace
        ``--dataset``, ``--data-dir`` and ``--no-download``.

    Returns
    -------
    int
        0, once a line has said how many images and classes were found, and where.

    Raises
    ------
    SoftregError
        The dataset is not found (and not downloaded) or its files are refused.
    """
    from softreg.data import load_dataset

    data = load_dataset(args.dataset, data_dir=args.data_dir, download=not args.no_download)
    print(
        printable(
            f"{data.name}: {len(data.train_labels)} training and "
            f"{len(data.test_labels)} test images, {data.num_classes} classes, in "
            f"{data.source}"
        )
    )
    return 0


def cmd_stability(args: argparse.Namespace) -> int:
    """Run ``softreg stability``: print the chapter's overflow and underflow exercise.

    Parameters
    ----------
    args : argparse.Namespace
        Unused: the command has no flags of its own.

    Returns
    -------
    int
        0, once the tables for float32 and float64 are printed.
    """
    from softreg.stability import main_text

    print(main_text())
    return 0


def _dataset_for(loaded: Any, args: argparse.Namespace) -> Any:
    """Return the dataset ``--dataset`` names (else the model's), checked against the model."""
    from softreg.data import load_dataset

    name = args.dataset or loaded.metadata.get("dataset", "fashion-mnist")
    data = load_dataset(name, data_dir=args.data_dir)
    _check_features(loaded, data.X_test.shape[1], name)
    loaded.check_classes(name, data.class_names)
    return data


def _check_features(loaded: Any, n_features: int, what: str) -> None:
    """Refuse data whose number of features is not the model's."""
    if n_features != loaded.model.num_inputs:
        raise SoftregError(
            f"the model takes {loaded.model.num_inputs} features, {what} has {n_features}"
        )
