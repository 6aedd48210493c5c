"""The command line end to end on Fashion-MNIST: the book's recipe, its bars, the run
directory contract, evaluate/predict, and one-line errors with exit status 2."""

import json
import subprocess
import sys
from dataclasses import fields

import numpy as np
import pytest
from _helpers import run_cli

from softreg.cli import build_parser, main
from softreg.config import TrainConfig

CONTRACT_FILES = (
    "metrics.json",
    "curves.png",
    "curves.svg",
    "predictions.png",
    "misclassified.png",
    "model.safetensors",
    "epochs.csv",
    "config.json",
    "steps.csv",  # its header only: 235 batches an epoch, no report every 300
)


@pytest.fixture(scope="module")
def book_run(tmp_path_factory, data_root):
    """The contract's command: the book's recipe, 10 epochs, seed 0."""
    out = tmp_path_factory.mktemp("runs") / "book"
    proc = run_cli(
        "train",
        "--dataset",
        "fashion-mnist",
        "--epochs",
        "10",
        "--batch-size",
        "256",
        "--lr",
        "0.1",
        "--seed",
        "0",
        "--out",
        str(out),
        data_root=data_root,
    )
    return out, proc


@pytest.mark.slow
def test_book_recipe_meets_the_books_bars(book_run):
    out, proc = book_run
    metrics = json.loads((out / "metrics.json").read_text())
    # d2l's train_ch3 asserts these after 10 epochs.
    assert metrics["train_loss"] < 0.5
    assert 0.7 < metrics["train_acc"] <= 1
    assert 0.7 < metrics["test_acc"] <= 1
    # ... and its figure shows about 0.45 / 0.85 / 0.83.
    assert metrics["train_loss"] == pytest.approx(0.45, abs=0.03)
    assert metrics["train_acc"] == pytest.approx(0.85, abs=0.02)
    assert metrics["test_acc"] == pytest.approx(0.83, abs=0.02)
    assert "bars (train loss < 0.5, accuracies > 0.7): met" in proc.stdout


@pytest.mark.slow
def test_run_directory_contract(book_run):
    out, _ = book_run
    assert sorted(p.name for p in out.iterdir()) == sorted(CONTRACT_FILES)  # nothing else
    for name in CONTRACT_FILES:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert (out / "steps.csv").read_text() == "epoch,batch,step,running_loss\n"
    assert "hidden" not in json.loads((out / "config.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == 10 and metrics["backend"] == "numpy"
    assert metrics["seconds_train"] > 0 and metrics["peak_rss_mb"] < 1000
    assert len(metrics["history"]) == 10
    rows = (out / "epochs.csv").read_text().splitlines()
    assert rows[0] == "epoch,train_loss,train_acc,test_acc,test_loss,seconds" and len(rows) == 11
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in (out / "curves.svg").read_bytes()[:500]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files left


@pytest.mark.slow
def test_evaluate_reproduces_the_runs_test_accuracy(book_run, data_root):
    out, _ = book_run
    metrics = json.loads((out / "metrics.json").read_text())
    proc = run_cli(
        "evaluate",
        str(out / "model.safetensors"),
        "--dataset",
        "fashion-mnist",
        data_root=data_root,
    )
    assert f"test accuracy {metrics['test_acc']:.4f}" in proc.stdout
    as_json = run_cli("evaluate", str(out / "model.safetensors"), "--json", data_root=data_root)
    assert json.loads(as_json.stdout)["test_acc"] == metrics["test_acc"]


@pytest.mark.slow
def test_predict_test_images_and_image_files(book_run, data_root, fashion, tmp_path):
    out, _ = book_run
    proc = run_cli(
        "predict",
        str(out / "model.safetensors"),
        "--index",
        "0",
        "1",
        "--top",
        "2",
        data_root=data_root,
    )
    lines = proc.stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith("test[0]") and "true: ankle boot" in lines[0]
    # The same image as a PNG file and as .npy gives the same prediction as by index.
    from PIL import Image

    Image.fromarray(fashion.test_images[0]).save(tmp_path / "boot.png")
    np.save(tmp_path / "boot.npy", fashion.test_images[0])
    files = run_cli(
        "predict",
        str(out / "model.safetensors"),
        str(tmp_path / "boot.png"),
        str(tmp_path / "boot.npy"),
        "--top",
        "2",
        data_root=data_root,
    )
    by_index = lines[0].split("  ", 1)[1].split("   true")[0].strip()
    for line in files.stdout.splitlines():
        assert line.split("  ", 1)[1].strip() == by_index
    # A dark-on-light picture is inverted automatically and still recognised.
    Image.fromarray(255 - fashion.test_images[0]).save(tmp_path / "paper.png")
    paper = run_cli(
        "predict",
        str(out / "model.safetensors"),
        str(tmp_path / "paper.png"),
        "--top",
        "2",
        data_root=data_root,
    )
    assert paper.stdout.split("  ", 1)[1].strip() == by_index


@pytest.mark.slow
def test_same_seed_gives_bit_identical_weights(tmp_path, data_root):
    from safetensors.numpy import load_file

    weights = []
    for name in ("a", "b"):
        run_cli(
            "train",
            "--epochs",
            "2",
            "--seed",
            "5",
            "--no-plots",
            "--quiet",
            "--out",
            str(tmp_path / name),
            data_root=data_root,
        )
        weights.append(load_file(str(tmp_path / name / "model.safetensors")))
        metrics = json.loads((tmp_path / name / "metrics.json").read_text())
        weights[-1]["history"] = np.array(
            [[r["train_loss"], r["train_acc"], r["test_acc"]] for r in metrics["history"]]
        )
    for key in ("W", "b", "history"):
        np.testing.assert_array_equal(weights[0][key], weights[1][key])


def test_every_config_field_has_a_flag():
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    flags = {opt for action in train._actions for opt in action.option_strings}
    for f in fields(TrainConfig):
        assert "--" + f.name.replace("_", "-") in flags


def test_help_shows_examples(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "examples:" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--batch-size", "0"], "batch_size must be an integer >= 1, got 0"),
        (["train", "--lr", "-1"], "learning rate must be a positive finite number"),
        (["train", "--lr", "nan"], "learning rate must be a positive finite number"),
        (["train", "--epochs", "0"], "epochs must be an integer >= 1"),
        (["train", "--epochs", "ten"], "invalid int value: 'ten'"),
        (["train", "--dataset", "cifar"], "invalid choice: 'cifar'"),
        (["train", "--backend", "mxnet"], "invalid choice: 'mxnet'"),
        (["train", "--device", "cuda"], "the numpy backend runs on the CPU only"),
        (["evaluate", "/no/such/model.safetensors"], "no such model file"),
        (["predict", "/no/such/model.safetensors", "--index", "0"], "no such model file"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.slow
def test_errors_through_the_real_process(tmp_path, data_root, book_run):
    out, _ = book_run
    cases = [
        (
            ["train", "--data-dir", str(tmp_path / "empty"), "--out", str(tmp_path / "r1")],
            "no complete fashion-mnist dataset",
        ),
        (["train", "--out", str(out)], "already holds a run"),
        (["predict", str(out / "model.safetensors"), "--index", "10000"], "outside the test set"),
        (
            ["predict", str(out / "model.safetensors"), str(tmp_path / "none.png")],
            "no such image file",
        ),
        (
            [
                "evaluate",
                str(out / "model.safetensors"),
                "--dataset",
                "mnist",
                "--data-dir",
                str(tmp_path),
            ],
            "no complete mnist dataset",
        ),
    ]
    (tmp_path / "empty").mkdir()
    for argv, message in cases:
        proc = run_cli(*argv, data_root=data_root, check=False)
        assert proc.returncode == 2, (argv, proc.stderr)
        assert message in proc.stderr and "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "r1").exists()  # failed before anything was written


@pytest.mark.slow
def test_damaged_model_file_is_refused(tmp_path, data_root, book_run):
    out, _ = book_run
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes((out / "model.safetensors").read_bytes()[:500])
    proc = run_cli("evaluate", str(broken), data_root=data_root, check=False)
    assert proc.returncode == 2 and "not a readable safetensors" in proc.stderr


@pytest.mark.slow
def test_overwrite_replaces_only_softregs_files(tmp_path, data_root):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "metrics.json").write_text("{}")
    proc = run_cli(
        "train",
        "--epochs",
        "1",
        "--no-plots",
        "--quiet",
        "--out",
        str(out),
        data_root=data_root,
        check=False,
    )
    assert proc.returncode == 2 and "--overwrite" in proc.stderr
    run_cli(
        "train",
        "--epochs",
        "1",
        "--no-plots",
        "--quiet",
        "--out",
        str(out),
        "--overwrite",
        data_root=data_root,
    )
    assert (out / "notes.txt").read_text() == "mine"
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 1
    assert not (out / "curves.png").exists()


def test_an_unexpected_error_is_still_one_line_and_exit_2(monkeypatch, capsys):
    """The CLI's last line of defence: a defect no test found prints one line (control
    characters escaped), not a traceback; --debug or SOFTREG_DEBUG=1 shows the traceback."""
    import softreg.cli

    def defect(args):
        raise RuntimeError("boom\nsecond line \x1b[2J")

    monkeypatch.setitem(softreg.cli.COMMANDS, "data", defect)
    monkeypatch.delenv("SOFTREG_DEBUG", raising=False)
    assert softreg.cli.main(["data"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(
        "softreg data: error: unexpected RuntimeError: boom second line "
        "\\x1b[2J (this is a defect in softreg; rerun with --debug"
    )
    with pytest.raises(RuntimeError, match="boom"):
        softreg.cli.main(["--debug", "data"])
    monkeypatch.setenv("SOFTREG_DEBUG", "1")
    with pytest.raises(RuntimeError, match="boom"):
        softreg.cli.main(["data"])


def test_out_of_memory_is_one_line(monkeypatch, capsys):
    import softreg.cli

    def exhausted(args):
        raise MemoryError

    monkeypatch.setitem(softreg.cli.COMMANDS, "data", exhausted)
    monkeypatch.delenv("SOFTREG_DEBUG", raising=False)
    assert softreg.cli.main(["data"]) == 2
    assert capsys.readouterr().err.startswith("softreg data: error: out of memory")


def test_paths_are_printed_without_terminal_control_characters(tmp_path, capsys):
    """A path is the user's, but it may come from anywhere (a listing, a script): what the
    CLI prints cannot set the terminal's title or clear its screen."""
    out = tmp_path / "r\x1b]0;pwned\x07"
    assert (
        main(
            [
                "train",
                "--dataset",
                "synthetic",
                "--epochs",
                "1",
                "--no-plots",
                "--quiet",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "\x1b" not in printed and "\x07" not in printed
    assert "r\\x1b]0;pwned\\x07/" in printed


@pytest.mark.slow
def test_the_tensorflow_backend_says_nothing_on_stderr(tmp_path):
    import importlib.util

    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("tensorflow is not installed")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "softreg",
            "train",
            "--backend",
            "tensorflow",
            "--dataset",
            "synthetic",
            "--epochs",
            "1",
            "--no-plots",
            "--quiet",
            "--out",
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
