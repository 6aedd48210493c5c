"""Learning-rate schedules: the cosine curve against PyTorch's CosineAnnealingLR, and a whole
training run under it against a PyTorch loop that uses torch.optim.SGD with that scheduler."""

from __future__ import annotations

import math

import numpy as np
import pytest

from softreg import backend
from softreg.cli import build_parser
from softreg.config import TrainConfig
from softreg.data.batching import epoch_permutation
from softreg.errors import ConfigError
from softreg.models import SoftmaxRegression
from softreg.optim import scheduled_lr
from softreg.train import fit


def test_cosine_is_torchs_cosine_annealing_stepped_per_batch():
    torch = pytest.importorskip("torch")
    total = 37
    param = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([param], lr=0.3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total, eta_min=0.0)
    for step in range(total):
        assert scheduled_lr(0.3, "cosine", step, total) == pytest.approx(
            opt.param_groups[0]["lr"], rel=1e-12, abs=1e-15
        )
        opt.step()
        sched.step()


def test_schedule_values_and_errors():
    assert [scheduled_lr(0.1, "constant", s, 10) for s in (0, 5, 9)] == [0.1, 0.1, 0.1]
    assert scheduled_lr(0.1, "cosine", 0, 10) == 0.1
    assert scheduled_lr(0.1, "cosine", 5, 10) == pytest.approx(0.05)
    assert 0 < scheduled_lr(0.1, "cosine", 9, 10) < 0.1 * (1 - math.cos(math.pi / 10))
    with pytest.raises(ConfigError, match="unknown lr schedule 'linear'"):
        scheduled_lr(0.1, "linear", 0, 10)
    with pytest.raises(ConfigError, match="lr_schedule"):
        TrainConfig(lr_schedule="step")


def test_cli_takes_the_schedule_and_refuses_others(capsys):
    parser = build_parser()
    assert parser.parse_args(["train", "--lr-schedule", "cosine"]).lr_schedule == "cosine"
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["train", "--lr-schedule", "linear"])
    assert exit_info.value.code == 2
    assert "--lr-schedule" in capsys.readouterr().err


def test_fit_under_cosine_follows_torch_sgd_with_cosine_annealing(blobs):
    """Same initial weights and data order; PyTorch does the rest: autograd, F.cross_entropy,
    torch.optim.SGD with momentum and weight decay, CosineAnnealingLR stepped every batch."""
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    X, y, X_test, y_test = blobs
    config = TrainConfig(
        epochs=3,
        batch_size=64,
        lr=0.2,
        lr_schedule="cosine",
        momentum=0.9,
        weight_decay=1e-3,
        log_every=0,
    )
    model = SoftmaxRegression(num_inputs=5, num_outputs=3)
    ours = fit(model, (X, y), (X_test, y_test), config)

    init = model.init(np.random.default_rng(config.seed))
    W, b = (torch.tensor(init[k], requires_grad=True) for k in ("W", "b"))
    opt = torch.optim.SGD(
        [W, b], lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )
    steps_per_epoch = math.ceil(len(y) / config.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.epochs * steps_per_epoch)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    for epoch in range(config.epochs):
        order = torch.from_numpy(epoch_permutation(len(y), seed=config.seed, epoch=epoch))
        for idx in order.split(config.batch_size):
            loss = F.cross_entropy(Xt[idx] @ W + b, yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    np.testing.assert_allclose(ours.params["W"], W.detach().numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ours.params["b"], b.detach().numpy(), rtol=1e-4, atol=1e-5)
    constant = fit(
        model,
        (X, y),
        (X_test, y_test),
        TrainConfig(**{**config.to_dict(), "lr_schedule": "constant"}),
    )
    assert not np.allclose(constant.params["W"], ours.params["W"], rtol=1e-3)


def test_cosine_runs_alike_on_every_backend(backend_name, backend_device, blobs):
    if backend_name == "array-api-strict":
        pytest.skip("not a training backend")
    X, y, X_test, y_test = blobs
    model = SoftmaxRegression(num_inputs=5, num_outputs=3)
    config = TrainConfig(
        epochs=2, batch_size=64, lr=0.5, lr_schedule="cosine", momentum=0.5, log_every=0
    )
    reference = fit(model, (X, y), (X_test, y_test), config)
    got = fit(
        model,
        (X, y),
        (X_test, y_test),
        TrainConfig(**{**config.to_dict(), "backend": backend_name, "device": backend_device}),
    )
    for name in ("W", "b"):
        np.testing.assert_allclose(
            backend.to_numpy(got.params[name]),
            reference.params[name],
            rtol=1e-4,
            atol=1e-5,
            err_msg=name,
        )
