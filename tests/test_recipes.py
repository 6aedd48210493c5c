"""Named recipes, and the per-feature statistics of the best-linear recipe."""

from __future__ import annotations

import json

import numpy as np
import pytest

from softreg.checkpoint import load_model
from softreg.cli import main
from softreg.config import TrainConfig
from softreg.errors import ConfigError
from softreg.evaluation import evaluate
from softreg.models import SoftmaxRegression
from softreg.recipes import RECIPES, recipe_config
from softreg.run_options import RunOptions
from softreg.runs import train_run
from softreg.standardise import feature_stats


def test_feature_stats_are_numpys_mean_and_std_plus_the_floor():
    X = np.random.default_rng(0).uniform(0, 1, size=(20000, 7)).astype(np.float32)
    X[:, 3] = 0.5  # a constant feature: its scale is the floor, not 0
    mean, scale = feature_stats(X, floor=0.05, chunk_rows=4096)
    np.testing.assert_allclose(mean, X.astype(np.float64).mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(scale, X.astype(np.float64).std(axis=0) + 0.05, rtol=1e-9)
    assert scale[3] == pytest.approx(0.05)


def test_feature_stats_of_integer_pixels_do_not_wrap_around():
    images = np.random.default_rng(3).integers(0, 256, size=(500, 4, 4), dtype=np.uint8)
    mean, scale = feature_stats(images, floor=0.0, chunk_rows=128)
    flat = images.reshape(500, 16).astype(np.float64)
    np.testing.assert_allclose(mean, flat.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(scale, flat.std(axis=0), rtol=1e-9)


def test_per_feature_standardisation_is_float32_and_the_float64_formula_rounded():
    rng = np.random.default_rng(4)
    X = rng.uniform(0, 1, size=(64, 5)).astype(np.float32)
    mean, scale = feature_stats(X)
    model = SoftmaxRegression(num_inputs=5, num_outputs=2, input_mean=mean, input_scale=scale)
    got = model.scale_inputs(X)
    assert got.dtype == np.float32 and got.shape == (64, 5)
    want = (X.astype(np.float64) - mean) / scale
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    assert not np.shares_memory(got, X)


def test_per_feature_run_saves_a_model_for_raw_inputs(tmp_path):
    """The saved model holds the per-feature statistics and applies them itself: on the raw
    test inputs it scores exactly what the run reported."""
    config = TrainConfig(
        dataset="synthetic", normalize="per-feature", epochs=5, lr=0.1, momentum=0.9, batch_size=32
    )
    result = train_run(config, tmp_path / "run", options=RunOptions(progress=False, plots=False))
    loaded = load_model(tmp_path / "run" / "model.safetensors")
    data = result.dataset
    raw = evaluate(loaded.model, loaded.params, data.X_test, data.y_test)
    assert raw.accuracy == result.metrics["test_acc"]
    assert raw.loss == pytest.approx(result.metrics["test_loss"], rel=1e-6)
    mean, scale = feature_stats(data.X_train)
    assert loaded.model.input_scaling == "per-feature"
    np.testing.assert_array_equal(loaded.model.input_mean, mean.astype(np.float32))
    np.testing.assert_array_equal(loaded.model.input_scale, scale.astype(np.float32))
    assert result.metrics["model_config"]["input_scaling"] == "per-feature"


def test_recipes_are_valid_configs_and_flags_override_them(tmp_path):
    for name in RECIPES:
        recipe_config(name)
    assert recipe_config("best-linear").normalize == "per-feature"
    with pytest.raises(ConfigError, match="unknown recipe"):
        recipe_config("fastest")
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--recipe",
                "best-linear",
                "--dataset",
                "synthetic",
                "--epochs",
                "2",
                "--out",
                str(out),
                "--quiet",
                "--no-plots",
            ]
        )
        == 0
    )
    config = json.loads((out / "config.json").read_text())
    assert config["epochs"] == 2 and config["dataset"] == "synthetic"  # given flags win
    recipe = RECIPES["best-linear"]
    assert {key: config[key] for key in recipe if key != "epochs"} == {
        key: value for key, value in recipe.items() if key != "epochs"
    }  # the rest is the recipe's
    assert config["lr_schedule"] == "cosine"
