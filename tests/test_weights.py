"""Per-example weights in the training loss (what scikit-learn's sample_weight needs), checked
against PyTorch autograd and against duplicated rows."""

from __future__ import annotations

import numpy as np
import pytest

from softreg import ops
from softreg.config import TrainConfig
from softreg.errors import DataValueError
from softreg.models import SoftmaxRegression
from softreg.train import fit


@pytest.mark.parametrize("softmax", ["stable", "naive"])
def test_weighted_loss_and_gradient_match_torch_autograd(softmax):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, size=(32, 7)).astype(np.float32)
    y = rng.integers(0, 7, size=32)
    w = rng.uniform(0, 2, size=32).astype(np.float32)
    losses, dlogits = ops.LOSS_GRADS[softmax](logits, y, weight=w)

    t = torch.tensor(logits, requires_grad=True)
    per_example = torch.nn.functional.cross_entropy(t, torch.tensor(y), reduction="none")
    (torch.tensor(w) * per_example).mean().backward()
    np.testing.assert_allclose(
        losses, (torch.tensor(w) * per_example).detach().numpy(), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(dlogits, t.grad.numpy(), rtol=1e-5, atol=1e-7)


def test_naive_loss_overflows_where_the_stable_one_does_not():
    logits = np.array([[100.0, 0.0, -5.0]], dtype=np.float32)
    with np.errstate(all="ignore"):
        naive, _ = ops.cross_entropy_with_grad_naive(logits, np.array([1]))
    stable, _ = ops.cross_entropy_with_grad(logits, np.array([1]))
    assert np.isnan(naive[0]) and stable[0] == pytest.approx(100.0, rel=1e-6)


def run(X, y, weights=None, **config):
    model = SoftmaxRegression(num_inputs=X.shape[1], num_outputs=3)
    return fit(
        model, (X, y), None, TrainConfig(log_every=0, **config), sample_weight=weights
    ).params


def test_equal_weights_change_nothing_and_scale_does_not_matter(blobs):
    X, y, _, _ = blobs
    plain = run(X, y, epochs=2, batch_size=50)
    ones = run(X, y, np.full(len(y), 3.0), epochs=2, batch_size=50)
    for name in plain:
        np.testing.assert_array_equal(ones[name], plain[name])
    w = np.random.default_rng(1).uniform(0.5, 2, size=len(y))
    np.testing.assert_allclose(
        run(X, y, 7 * w, epochs=2)["W"], run(X, y, w, epochs=2)["W"], rtol=1e-5, atol=1e-7
    )


def test_integer_weights_equal_duplicated_rows_in_full_batch_descent(blobs):
    X, y, _, _ = blobs
    counts = np.random.default_rng(2).integers(0, 4, size=len(y))
    weighted = run(X, y, counts, epochs=20, optimizer="gd", lr=0.5)
    repeated = run(
        np.repeat(X, counts, axis=0), np.repeat(y, counts), epochs=20, optimizer="gd", lr=0.5
    )
    for name in weighted:
        np.testing.assert_allclose(weighted[name], repeated[name], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        (np.ones(3), r"shape \(500,\)"),
        (np.full(500, np.nan), "finite"),
        (-np.ones(500), ">= 0"),
        (np.zeros(500), "sum to 0"),
    ],
)
def test_bad_weights_are_refused(blobs, weights, message):
    X, y, _, _ = blobs
    with pytest.raises(DataValueError, match=message):
        run(X, y, weights, epochs=1)


def test_weights_near_float64s_largest_are_rescaled_not_lost(blobs):
    """Their sum overflows float64: only their ratios may count, as for any weights."""
    X, y, _, _ = blobs
    model = SoftmaxRegression(num_inputs=5, num_outputs=3)
    config = TrainConfig(epochs=2, batch_size=64)
    ratios = np.linspace(1.0, 3.0, len(y))
    huge = fit(model, (X, y), None, config, sample_weight=ratios * 1e307).params
    plain = fit(model, (X, y), None, config, sample_weight=ratios).params
    for name in ("W", "b"):
        np.testing.assert_allclose(huge[name], plain[name], rtol=1e-6, atol=1e-7)
    assert not np.allclose(huge["W"], model.init(np.random.default_rng(0))["W"])
