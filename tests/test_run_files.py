"""The run directory as documented: exactly its files, ``steps.csv`` even with no report,
``config.json`` with only the fields its model uses (older ones, with every field, still
read and resumed), and the book's bars said only for the book's recipe."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from softreg.cli import main
from softreg.cli.training import is_book_recipe
from softreg.config import MODEL_ONLY_FIELDS, TrainConfig
from softreg.run_files import CHECKPOINT_FILE, read_run_config
from softreg.run_options import RunOptions
from softreg.runs import resume_run, train_run

QUIET = {"progress": False, "plots": False}
WRITTEN = {"config.json", "epochs.csv", "steps.csv", "model.safetensors", "metrics.json"}
FIGURES = {"curves.png", "curves.svg", "predictions.png", "misclassified.png"}


def _train(config: TrainConfig, out: Path, data_root: Path, **options):
    return train_run(config, out, options=RunOptions(data_dir=data_root, **{**QUIET, **options}))


def test_files_of_a_run_with_no_running_loss_report(tmp_path, data_root):
    """The book's case: fewer batches an epoch than log_every; steps.csv is its header."""
    config = TrainConfig(dataset="synthetic", epochs=2, batch_size=100, log_every=300)
    result = _train(config, tmp_path / "run", data_root)
    assert {p.name for p in result.run_dir.iterdir()} == WRITTEN
    assert (result.run_dir / "steps.csv").read_text() == "epoch,batch,step,running_loss\n"
    no_log = _train(TrainConfig(dataset="synthetic", log_every=0), tmp_path / "none", data_root)
    assert (no_log.run_dir / "steps.csv").read_text() == "epoch,batch,step,running_loss\n"


def test_files_of_a_run_with_reports_figures_and_checkpoints(tmp_path, data_root):
    config = TrainConfig(epochs=1, batch_size=1000, log_every=20)  # 60 batches: 3 reports
    options = {"plots": True, "checkpoint_every": 30}
    result = _train(config, tmp_path / "run", data_root, **options)
    assert {p.name for p in result.run_dir.iterdir()} == WRITTEN | FIGURES | {CHECKPOINT_FILE}
    rows = (result.run_dir / "steps.csv").read_text().splitlines()
    assert rows[0] == "epoch,batch,step,running_loss" and len(rows) == 4


@pytest.mark.parametrize(
    ("model", "left_out"), [("softmax-regression", "hidden"), ("mlp", "sigma")]
)
def test_config_json_holds_only_the_fields_its_model_uses(tmp_path, data_root, model, left_out):
    config = TrainConfig(dataset="synthetic", model=model, hidden=(8,), epochs=1)
    result = _train(config, tmp_path / "run", data_root)
    written = json.loads((result.run_dir / "config.json").read_text())
    assert left_out not in written
    assert set(written) == set(config.to_dict()) - {left_out}
    assert read_run_config(result.run_dir).trains_like(config)
    assert MODEL_ONLY_FIELDS[left_out] != model


def test_an_old_config_json_with_every_field_is_read_and_resumed(tmp_path, data_root):
    """Written before config.json left fields out: softmax regression with the MLP's hidden."""
    config = TrainConfig(dataset="synthetic", epochs=3, hidden=(32,))
    out = _train(config, tmp_path / "run", data_root, checkpoint_every=1).run_dir
    (out / "metrics.json").unlink()  # as if stopped after its last checkpoint
    (out / "config.json").write_text(json.dumps(config.to_dict()))
    assert read_run_config(out) == config
    assert resume_run(out, options=RunOptions(data_dir=data_root, **QUIET)) is not None


def test_a_run_whose_model_ignores_a_changed_field_resumes(tmp_path, data_root):
    """--hidden given to softmax regression: config.json leaves it out, the checkpoint keeps
    it; the run still continues (the field trains nothing)."""
    config = TrainConfig(dataset="synthetic", epochs=3, hidden=(32,))
    out = _train(config, tmp_path / "run", data_root, checkpoint_every=1).run_dir
    (out / "metrics.json").unlink()
    assert read_run_config(out) != config and read_run_config(out).trains_like(config)
    result = resume_run(out, options=RunOptions(data_dir=data_root, **QUIET))
    assert result is not None and result.metrics["status"] == "finished"


def test_trains_like_compares_only_what_the_model_uses():
    assert TrainConfig(hidden=(3,)).trains_like(TrainConfig())
    assert not TrainConfig(sigma=0.1).trains_like(TrainConfig())
    assert TrainConfig(model="mlp", sigma=0.1).trains_like(TrainConfig(model="mlp"))
    assert not TrainConfig(model="mlp", hidden=(3,)).trains_like(TrainConfig(model="mlp"))
    # a config.json is read back as the same run
    for config in (TrainConfig(), TrainConfig(model="mlp", hidden=(4, 2))):
        assert TrainConfig(**config.to_dict(unused=False)) == config


def test_the_books_recipe():
    assert is_book_recipe(TrainConfig())
    for free in ({"seed": 7}, {"backend": "torch"}, {"log_every": 0}, {"eval_batch_size": 10}):
        assert is_book_recipe(TrainConfig(**free)), free
    for changed in (
        {"epochs": 5},
        {"lr": 0.2},
        {"batch_size": 128},
        {"dataset": "mnist"},
        {"model": "mlp"},
        {"momentum": 0.5},
        {"normalize": "yes"},
        {"sigma": 0.1},
    ):
        assert not is_book_recipe(TrainConfig(**changed)), changed


def test_bars_line_only_for_the_books_recipe(tmp_path, data_root, capsys):
    """A short Fashion-MNIST run misses the bars by design: it says nothing of them."""
    args = ["train", "--epochs", "1", "--batch-size", "1000", "--no-plots", "--quiet"]
    main([*args, "--data-dir", str(data_root), "--out", str(tmp_path / "short")])
    out = capsys.readouterr().out
    assert out.startswith("final: ") and "book's bars" not in out


@pytest.mark.parametrize(
    ("config", "said"), [(TrainConfig(seed=3), True), (TrainConfig(epochs=3), False)]
)
def test_summary_says_the_bars_for_the_recipe(tmp_path, capsys, config, said):
    from types import SimpleNamespace

    from softreg.cli.training import _print_summary

    metrics = {"train_loss": 0.45, "train_acc": 0.85, "test_acc": 0.83, "seconds_train": 1.0}
    _print_summary(SimpleNamespace(metrics=metrics, config=config, run_dir=tmp_path))
    out = capsys.readouterr().out
    assert ("the book's bars (train loss < 0.5, accuracies > 0.7): met" in out) == said
