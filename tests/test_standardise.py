"""The input standardisation is one thing the model owns, honoured by every path that trains.

``TrainConfig(normalize=...)`` once took effect through ``softreg train`` only: ``fit``,
``sweep`` and the estimators trained the same weights with ``normalize="per-feature"`` as with
``"no"``. Now ``make_model`` fits the statistics, the model keeps them, and ``fit``, the sweep,
the estimators, ``evaluate``, ``predict`` and the saved model all apply them the same way.
Each test compares against an independent computation: the same training on data
standardised by hand (float32, the same arithmetic), so the numbers must be identical.
"""

from __future__ import annotations

import numpy as np
import pytest

from softreg import SoftmaxRegression, TrainConfig, evaluate, fit, make_model
from softreg.checkpoint import load_model, save_model
from softreg.errors import ConfigError
from softreg.models import MLP
from softreg.standardise import feature_stats, input_stats
from softreg.sweep import SplitData, train_point


@pytest.fixture
def skewed():
    """Features on very different scales (0.01 to 100), where standardising matters."""
    rng = np.random.default_rng(7)
    scales = np.logspace(-2, 2, 6).astype(np.float32)
    X = (rng.normal(size=(400, 6)) * scales + 3 * scales).astype(np.float32)
    y = (X[:, 0] / scales[0] + X[:, 5] / scales[5] > 6).astype(np.int64) + (
        X[:, 2] / scales[2] > 3.5
    )
    return X[:300], y[:300], X[300:], y[300:]


def standardise(X, mean, scale):
    """``(X - mean) / scale`` in float32, written out here as the reference."""
    out = np.subtract(
        X, np.float32(mean) if np.ndim(mean) == 0 else mean.astype(np.float32), dtype=np.float32
    )
    out /= np.float32(scale) if np.ndim(scale) == 0 else scale.astype(np.float32)
    return out


def by_hand(X, kind):
    """The statistics and standardised data, computed without the model."""
    mean, scale = feature_stats(X) if kind == "per-feature" else input_stats(X)
    return mean, scale, standardise(X, mean, scale)


@pytest.mark.parametrize(("normalize", "kind"), [("per-feature", "per-feature"), ("yes", "scalar")])
def test_fit_trains_on_the_standardised_inputs(skewed, normalize, kind):
    X, y, X_test, y_test = skewed
    config = TrainConfig(normalize=normalize, epochs=3, batch_size=32, lr=0.1)
    model = make_model(config, X, 3)
    assert model.input_scaling == kind
    result = fit(model, (X, y), (X_test, y_test), config)

    mean, scale, X_std = by_hand(X, kind)
    plain = make_model(TrainConfig(normalize="no"), X_std, 3)
    reference = fit(plain, (X_std, y), (standardise(X_test, mean, scale), y_test), config)
    for name in ("W", "b"):
        np.testing.assert_array_equal(result.params[name], reference.params[name])
    assert result.history.records == [
        r.__class__(**{**r.__dict__, "seconds": mine.seconds})
        for r, mine in zip(reference.history.records, result.history.records, strict=True)
    ]

    unscaled = fit(make_model(TrainConfig(normalize="no"), X, 3), (X, y), None, config)
    assert not np.array_equal(unscaled.params["W"], result.params["W"])  # it makes a difference


def test_the_trained_model_applies_its_statistics_to_raw_inputs(skewed, tmp_path):
    X, y, X_test, y_test = skewed
    config = TrainConfig(normalize="per-feature", epochs=3, batch_size=32)
    model = make_model(config, X, 3)
    result = fit(model, (X, y), (X_test, y_test), config)
    scored = evaluate(model, result.params, X_test, y_test)
    assert scored.accuracy == result.history.final.test_acc
    assert scored.loss == pytest.approx(result.history.final.test_loss, rel=1e-6)

    path = save_model(tmp_path / "m.safetensors", model, result.params, class_names=("a", "b", "c"))
    loaded = load_model(path)
    assert loaded.model == model
    np.testing.assert_array_equal(
        loaded.model.forward(loaded.params, X_test), model.forward(result.params, X_test)
    )


def test_a_sweep_point_trains_with_the_standardisation(skewed):
    X, y, X_val, y_val = skewed
    data = SplitData(X, y, X_val, y_val, num_classes=3)
    base = TrainConfig(normalize="per-feature", epochs=2, batch_size=32)
    point = train_point(data, base, "lr", 0.1)

    mean, scale, X_std = by_hand(X, "per-feature")
    plain = SplitData(X_std, y, standardise(X_val, mean, scale), y_val, num_classes=3)
    reference = train_point(plain, TrainConfig(normalize="no", epochs=2, batch_size=32), "lr", 0.1)
    assert (point.val_loss, point.val_acc) == (reference.val_loss, reference.val_acc)
    unscaled = train_point(data, TrainConfig(normalize="no", epochs=2, batch_size=32), "lr", 0.1)
    assert unscaled.val_loss != point.val_loss


def test_estimators_honour_per_feature_standardisation(skewed):
    pytest.importorskip("sklearn")
    from softreg.estimators import SoftmaxRegressionClassifier

    X, y, X_test, _ = skewed
    clf = SoftmaxRegressionClassifier(normalize="per-feature", epochs=3, random_state=0).fit(X, y)
    mean, scale, X_std = by_hand(X, "per-feature")
    plain = SoftmaxRegressionClassifier(normalize="no", epochs=3, random_state=0).fit(X_std, y)
    np.testing.assert_array_equal(clf.coef_, plain.coef_)
    np.testing.assert_array_equal(
        clf.predict(X_test), plain.predict(standardise(X_test, mean, scale))
    )


def test_weighted_statistics_count_a_weight_of_k_as_k_rows(skewed):
    X = skewed[0][:50]
    weights = np.arange(50) % 3  # 0, 1 or 2
    repeated = np.repeat(X, weights, axis=0)
    for kind in ("per-feature", "scalar"):
        config = TrainConfig(normalize="per-feature" if kind == "per-feature" else "yes")
        weighted = make_model(config, X, 3, sample_weight=weights)
        copies = make_model(config, repeated, 3)
        np.testing.assert_allclose(weighted.input_mean, copies.input_mean, rtol=1e-6)
        np.testing.assert_allclose(weighted.input_scale, copies.input_scale, rtol=1e-6)


def test_a_model_refuses_statistics_it_cannot_apply():
    with pytest.raises(ConfigError, match=r"input_scale must be > 0, got 0\.0"):
        SoftmaxRegression(num_inputs=3, num_outputs=2, input_scale=np.array([1.0, 0.0, 2.0]))
    with pytest.raises(ConfigError, match=r"one number or one per feature \(3,\)"):
        MLP(num_inputs=3, hidden=(2,), num_outputs=2, input_mean=np.zeros(4))
    with pytest.raises(ConfigError, match="input_mean must be finite"):
        SoftmaxRegression(num_inputs=3, num_outputs=2, input_mean=float("inf"))
    with pytest.raises(ConfigError, match="must be a number or an array of numbers"):
        SoftmaxRegression(num_inputs=3, num_outputs=2, input_scale="2")


def test_the_model_keeps_its_own_copy_of_the_statistics():
    mean = np.zeros(3)
    model = SoftmaxRegression(num_inputs=3, num_outputs=2, input_mean=mean)
    mean[0] = 100.0
    assert float(model.input_mean[0]) == 0.0
    with pytest.raises(ValueError, match="read-only"):
        model.input_mean[0] = 1.0
