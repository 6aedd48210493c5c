"""``softreg evaluate``'s report (top-k, confusion, calibration, abstaining, costs) and
``softreg stability``, end to end through the real command."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from _helpers import run_cli


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, data_root):
    out = tmp_path_factory.mktemp("runs") / "book"
    run_cli(
        "train", "--epochs", "3", "--no-plots", "--quiet", "--out", str(out), data_root=data_root
    )
    return out / "model.safetensors"


@pytest.mark.slow
def test_evaluate_reports_decisions_under_uncertainty(model_file, data_root, tmp_path):
    cost = np.ones((10, 10)) - np.eye(10)
    cost[6] *= 5  # missing a shirt costs five times as much as any other mistake
    np.savetxt(tmp_path / "cost.csv", cost, delimiter=",")
    out = tmp_path / "evaluation"
    proc = run_cli(
        "evaluate",
        str(model_file),
        "--reject-below",
        "0.9",
        "--cost-matrix",
        str(tmp_path / "cost.csv"),
        "--out",
        str(out),
        data_root=data_root,
    )
    for phrase in (
        "top-k accuracy: top-1",
        "calibration: ECE",
        "abstain below 0.9",
        "expected-cost rule",
        "wrote",
    ):
        assert phrase in proc.stdout
    for name in (
        "evaluation.json",
        "coverage.csv",
        "confusion.png",
        "reliability.png",
        "coverage.png",
    ):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    report = json.loads((out / "evaluation.json").read_text())
    accuracy = report["accuracy"]
    assert report["top_k"]["1"] == accuracy <= report["top_k"]["2"] <= report["top_k"]["5"]
    assert np.trace(report["confusion_matrix"]) == round(accuracy * 10000)
    calibration = report["calibration"]
    assert (
        calibration["temperature"] > 0 and "held-out training examples" in calibration["fitted_on"]
    )
    assert calibration["nll"] <= report["nll"] + 1e-3  # scaling fitted elsewhere barely hurts
    abstain = report["abstain"]
    assert 0 < abstain["coverage"] < 1 and abstain["accuracy"] > accuracy
    assert report["cost"]["mean_cost"] < report["cost"]["mean_cost_argmax"]
    assert report["cost"]["accuracy_argmax"] == pytest.approx(accuracy)
    rows = (out / "coverage.csv").read_text().splitlines()
    assert rows[0] == "threshold,coverage,accuracy" and len(rows) == 102


@pytest.mark.slow
def test_evaluate_writes_beside_the_model_by_default(model_file, data_root):
    proc = run_cli("evaluate", str(model_file), "--json", "--no-plots", data_root=data_root)
    summary = json.loads(proc.stdout)
    assert summary["report"] == str(model_file.parent / "evaluation" / "evaluation.json")
    assert not (model_file.parent / "evaluation" / "confusion.png").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--reject-below", "1.5"], "--reject-below must be a probability in [0, 1]"),
        (["--cost-matrix", "COST"], "the cost matrix must be 10x10, got shape (3, 3)"),
    ],
)
@pytest.mark.slow
def test_evaluate_refuses_bad_options_before_writing(
    model_file, data_root, tmp_path, extra, message
):
    np.savetxt(tmp_path / "cost.csv", np.ones((3, 3)), delimiter=",")
    extra = [str(tmp_path / "cost.csv") if e == "COST" else e for e in extra]
    out = tmp_path / "never"
    proc = run_cli(
        "evaluate", str(model_file), *extra, "--out", str(out), data_root=data_root, check=False
    )
    assert proc.returncode == 2 and message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not out.exists()


def test_stability_prints_the_exercise_for_both_dtypes(data_root):
    proc = run_cli("stability", data_root=data_root)
    text = proc.stdout
    assert "float32" in text and "float64" in text
    assert "overflow -> nan" in text and "logit 100" in text and "nan logit" in text


# What only training runs and sweeps need: ``softreg evaluate`` loads none of it.
TRAINING_MODULES = (
    "softreg.runs",
    "softreg.run_callbacks",
    "softreg.run_files",
    "softreg.run_metrics",
    "softreg.sweep",
)


def test_evaluate_loads_no_training_code(model_file, data_root, tmp_path):
    script = (
        "import json, sys\n"
        "from softreg.cli import main\n"
        "status = main(sys.argv[1:])\n"
        f"loaded = [m for m in {TRAINING_MODULES!r} if m in sys.modules]\n"
        "print(json.dumps({'status': status, 'loaded': loaded}))\n"
    )
    out = tmp_path / "evaluation"
    proc = subprocess.run(
        [sys.executable, "-c", script, "evaluate", str(model_file), "--json", "--out", str(out)],
        capture_output=True,
        text=True,
        env={**os.environ, "SOFTREG_DATA": str(data_root)},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.splitlines()[-1])
    assert result == {"status": 0, "loaded": []}
    assert (out / "confusion.png").is_file()  # the whole command ran, figures included
