"""Figures: the Animator-like live curves and the prediction grids."""

import sys
import types

import numpy as np

from softreg.callbacks import Callback
from softreg.config import TrainConfig
from softreg.history import EpochRecord, History
from softreg.models import SoftmaxRegression
from softreg.plotting import LiveCurves, plot_curves, plot_predictions, save_figure
from softreg.train import fit


def history_of(n):
    return History(
        [
            EpochRecord(e, 1.0 / e, 0.5 + e / 100, 0.5 + e / 120, 0.6, 0.1 * e)
            for e in range(1, n + 1)
        ]
    )


def test_curves_have_the_books_three_lines_and_limits(tmp_path):
    fig = plot_curves(history_of(4), epochs=10)
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.get_lines()] == ["train loss", "train acc", "test acc"]
    assert ax.get_xlim() == (1, 10)
    # The first loss (1.0) would be cut off at the book's 0.9, the last (0.25) at its 0.3.
    low, high = ax.get_ylim()
    assert (round(low, 6), high) == (0.2, 1.05)
    assert ax.get_xlabel() == "epoch"
    written = save_figure(fig, tmp_path / "curves", formats=("png", "svg"))
    assert [p.name for p in written] == ["curves.png", "curves.svg"]
    inside = History(
        [EpochRecord(e, 0.8 - e / 20, 0.5 + e / 100, 0.5, 0.6, 0.1 * e) for e in range(1, 5)]
    )
    assert plot_curves(inside).axes[0].get_ylim() == (0.3, 0.9)  # the book's limits


def test_live_curves_rewrite_the_png_every_epoch(tmp_path, blobs):
    X, y, Xt, yt = blobs
    snapshots = []

    class Snapshot(Callback):  # runs after LiveCurves in the same epoch
        def on_epoch_end(self, record, history, state):
            snapshots.append((tmp_path / "curves.png").read_bytes())

    # A small learning rate keeps the loss in view and changing from epoch to epoch.
    fit(
        SoftmaxRegression(num_inputs=5, num_outputs=3),
        (X, y),
        (Xt, yt),
        TrainConfig(epochs=3, lr=0.002),
        callbacks=[LiveCurves(tmp_path / "curves", notebook=False, min_interval=0), Snapshot()],
    )
    assert len(snapshots) == 3 and len(set(snapshots)) == 3
    assert (tmp_path / "curves.svg").exists()  # written once, at the end


def test_live_curves_redraw_at_most_every_min_interval(tmp_path, blobs, monkeypatch):
    """Many quick epochs (full-batch iterations) draw the first and the last epoch only."""
    import softreg.plotting.curves

    X, y, Xt, yt = blobs
    drawn = []
    real = softreg.plotting.curves.plot_curves
    monkeypatch.setattr(
        softreg.plotting.curves,
        "plot_curves",
        lambda history, **kw: drawn.append(len(history.records)) or real(history, **kw),
    )
    fit(
        SoftmaxRegression(num_inputs=5, num_outputs=3),
        (X, y),
        (Xt, yt),
        TrainConfig(epochs=20, optimizer="gd"),
        callbacks=[LiveCurves(tmp_path / "curves", notebook=False, min_interval=3600)],
    )
    assert drawn == [1, 20, 20]  # epoch 1, epoch 20, and the final PNG + SVG


def test_live_curves_redraw_in_place_in_a_notebook(monkeypatch, blobs):
    calls = []

    class Image:
        def __init__(self, data):
            assert data.startswith(b"\x89PNG")
            self.data = data

    class Handle:
        def update(self, image):
            calls.append(("update", image.data))

    def display(image, display_id=False):
        calls.append(("display", display_id))
        return Handle()

    fake = types.ModuleType("IPython.display")
    fake.display, fake.Image = display, Image
    monkeypatch.setitem(sys.modules, "IPython", types.ModuleType("IPython"))
    monkeypatch.setitem(sys.modules, "IPython.display", fake)
    X, y, Xt, yt = blobs
    fit(
        SoftmaxRegression(num_inputs=5, num_outputs=3),
        (X, y),
        (Xt, yt),
        TrainConfig(epochs=3, lr=0.002),
        callbacks=[LiveCurves(notebook=True, min_interval=0)],
    )
    assert [c[0] for c in calls] == ["display", "update", "update"] and calls[0][1] is True
    assert calls[1][1] != calls[2][1]  # each epoch redraws the picture


def test_prediction_grid_titles_true_over_predicted(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, size=(10, 28, 28), dtype=np.uint8)
    trues = ["coat"] * 10
    preds = ["coat"] * 9 + ["shirt"]
    fig = plot_predictions(images, trues, preds, ncols=5)
    titled = [ax for ax in fig.axes if ax.get_title()]
    assert len(titled) == 10
    assert titled[0].get_title() == "coat\ncoat" and titled[-1].get_title() == "coat\nshirt"
    assert titled[-1].title.get_color() == "red" and titled[0].title.get_color() == "black"
    save_figure(fig, tmp_path / "grid")
    assert (tmp_path / "grid.png").stat().st_size > 1000


def test_empty_prediction_grid_still_draws(tmp_path):
    fig = plot_predictions(np.zeros((0, 28, 28), np.uint8), [], [])
    save_figure(fig, tmp_path / "none")
    assert (tmp_path / "none.png").exists()
