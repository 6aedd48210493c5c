"""Progress output: one line per epoch, and a step bar on stderr when asked for."""

import io

from softreg.config import TrainConfig
from softreg.history import EpochRecord
from softreg.models import SoftmaxRegression
from softreg.progress import ProgressBar, format_record
from softreg.train import fit


def test_format_record_reads_like_the_book():
    line = format_record(EpochRecord(3, 0.51304, 0.83, 0.814, 0.5, 0.3149), epochs=10)
    assert line == ("epoch  3/10  train loss 0.5130  train acc 0.8300  test acc 0.8140  (0.31 s)")
    assert "test acc" not in format_record(EpochRecord(1, 0.5, 0.8, None, None, 0.1), epochs=1)


def test_one_line_per_epoch_without_a_bar(blobs):
    X, y, Xt, yt = blobs
    stream = io.StringIO()
    fit(
        SoftmaxRegression(num_inputs=5, num_outputs=3),
        (X, y),
        (Xt, yt),
        TrainConfig(epochs=3),
        callbacks=[ProgressBar(stream, bar=False)],
    )
    lines = stream.getvalue().splitlines()
    assert [line.split()[1] for line in lines] == ["1/3", "2/3", "3/3"]


def test_bar_counts_steps_on_stderr(blobs, capsys):
    X, y, Xt, yt = blobs
    stream = io.StringIO()
    fit(
        SoftmaxRegression(num_inputs=5, num_outputs=3),
        (X, y),
        (Xt, yt),
        TrainConfig(epochs=2, batch_size=100),
        callbacks=[ProgressBar(stream, bar=True)],
    )
    err = capsys.readouterr().err
    assert "10/10" in err and "step" in err  # 2 epochs x ceil(500 / 100) steps
    assert len(stream.getvalue().splitlines()) == 2
