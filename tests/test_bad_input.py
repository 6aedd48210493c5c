"""Bad input, one case per row, through the library and through the command line.

Each case starts from inputs that work (a tiny Fashion-MNIST-shaped dataset of four IDX
files, a valid model file, an output directory that does not exist yet) and breaks exactly
one thing. Then:

(a) the library call raises a SoftregError subclass whose message names the problem;
(b) ``softreg.cli.main`` returns 2 and prints one line, ``softreg <cmd>: error: ...``, naming
    the problem, and no traceback (for a subset also through a real ``python -m softreg``);
(c) nothing is half-written: every file and directory under ``tmp_path`` is exactly as it
    was before the call (no output directory, no ``*.tmp`` / ``*.part`` files, an earlier
    run's files byte-identical).

``test_unbroken_inputs_are_accepted`` proves the starting inputs work, so each case fails
because of its one defect. A few cases use the real Fashion-MNIST files (symlinked) with one
file replaced.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import os
import re
import struct
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _helpers import (
    REPO,
    edit_softreg_file,
    read_softreg_file,
    require_shared_data,
    shared_data_dir,
)

import softreg
from softreg.checkpoint import load_model, save_model
from softreg.cli import main
from softreg.data import DATASETS, FASHION_MNIST_LABELS, MNIST_LABELS, load_dataset
from softreg.data.catalog import DataError
from softreg.errors import (
    ConfigError,
    DataValueError,
    ModelFileError,
    RunDirError,
    SoftregError,
)
from softreg.predict import predict_top_k, read_image_file
from softreg.report import write_report
from softreg.run_options import RunOptions
from softreg.runs import resume_run, train_run

FILES = dict(DATASETS["fashion-mnist"].files)  # role -> official .gz file name
FAST = ("--epochs", "1", "--no-plots", "--quiet")
PROC_OUT = Path("/proc/softreg-test-run")  # cannot be created, even by root
N_TRAIN, N_TEST = 60, 20
SHARED_DATA = shared_data_dir()  # read before the fixture below clears $SOFTREG_DATA


@pytest.fixture(autouse=True)
def isolated(offline: None) -> None:
    """Every test here runs offline, without the user's data or cache (see conftest)."""


# ------------------------------------------------------------------------ the good inputs


def idx_bytes(
    array: np.ndarray,
    *,
    dims: tuple[int, ...] | None = None,
    code: int = 0x08,
    magic: bytes | None = None,
) -> bytes:
    """IDX serialization, independent of softreg's reader; ``dims`` overrides the header's
    sizes, ``magic`` its first four bytes."""
    dims = array.shape if dims is None else dims
    header = (magic or bytes([0, 0, code, len(dims)])) + struct.pack(f">{len(dims)}I", *dims)
    stored = array.dtype.newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype
    return header + array.astype(stored).tobytes()


def good_arrays(
    n_train: int = N_TRAIN, n_test: int = N_TEST, side: int = 28
) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "train_images": rng.integers(0, 256, (n_train, side, side), dtype=np.uint8),
        "train_labels": (np.arange(n_train) % 10).astype(np.uint8),
        "test_images": rng.integers(0, 256, (n_test, side, side), dtype=np.uint8),
        "test_labels": (np.arange(n_test) % 10).astype(np.uint8),
    }


def write_file(directory: Path, role: str, content: bytes, *, compress: bool = True) -> Path:
    """``content`` as the file of ``role`` (gzip-compressed under the official name, or raw
    without ``.gz``), replacing whichever form was there."""
    for name in (FILES[role], FILES[role].removesuffix(".gz")):
        (directory / name).unlink(missing_ok=True)
    path = directory / (FILES[role] if compress else FILES[role].removesuffix(".gz"))
    path.write_bytes(gzip.compress(content, mtime=0) if compress else content)
    return path


def write_dataset(directory: Path, arrays: dict[str, np.ndarray]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for role, array in arrays.items():
        write_file(directory, role, idx_bytes(array))
    return directory


def write_model(path: Path, num_inputs: int = 784, class_names=FASHION_MNIST_LABELS) -> Path:
    model = softreg.SoftmaxRegression(num_inputs=num_inputs, num_outputs=len(class_names))
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_model(
        path,
        model,
        model.init(np.random.default_rng(0)),
        class_names=tuple(class_names),
        metadata={"dataset": "fashion-mnist"},
    )


def good_inputs(tmp_path: Path) -> dict[str, Any]:
    """What every case starts from: all of it works (see test_unbroken_inputs_are_accepted)."""
    image = tmp_path / "image.npy"
    np.save(image, good_arrays()["test_images"][0])
    return {
        "data": write_dataset(tmp_path / "data", good_arrays()),
        "model": write_model(tmp_path / "model" / "model.safetensors"),
        "out": tmp_path / "out",
        "image": image,
        "tmp": tmp_path,
    }


# ------------------------------------------------------------------- ways to break them


def replace_role(role: str, content: bytes, *, compress: bool = True):
    def breaks(ctx: dict[str, Any]) -> None:
        write_file(ctx["data"], role, content, compress=compress)

    return breaks


def replace_arrays(**arrays: np.ndarray):
    def breaks(ctx: dict[str, Any]) -> None:
        for role, array in arrays.items():
            write_file(ctx["data"], role, idx_bytes(array))

    return breaks


def edit_bytes(role: str, edit: Callable[[bytes], bytes]):
    def breaks(ctx: dict[str, Any]) -> None:
        path = ctx["data"] / FILES[role]
        path.write_bytes(edit(path.read_bytes()))

    return breaks


def flip(data: bytes, at: int) -> bytes:
    out = bytearray(data)
    out[at] ^= 0xFF
    return bytes(out)


def raw_truncated(ctx: dict[str, Any]) -> None:
    raw = gzip.decompress((ctx["data"] / FILES["test_images"]).read_bytes())
    write_file(ctx["data"], "test_images", raw[:-7], compress=False)


def delete_role(role: str):
    def breaks(ctx: dict[str, Any]) -> None:
        (ctx["data"] / FILES[role]).unlink()

    return breaks


def no_data_dir(ctx: dict[str, Any]) -> dict[str, Any]:
    return {**ctx, "data": ctx["tmp"] / "no-such-dir"}


def real_data(role: str | None = None, content: Callable[[Path], bytes] | None = None):
    """The real Fashion-MNIST files, symlinked, with ``role``'s file replaced by
    ``content(real file)``."""

    def breaks(ctx: dict[str, Any]) -> dict[str, Any]:
        source = (SHARED_DATA or require_shared_data()) / "fashion-mnist"
        directory = ctx["tmp"] / "real"
        directory.mkdir()
        for other, name in FILES.items():
            if other == role:
                (directory / name).write_bytes(content(source / name))
            else:
                (directory / name).symlink_to(source / name)
        return {**ctx, "data": directory}

    return breaks


def real_labels_with_10(path: Path) -> bytes:
    labels = np.frombuffer(gzip.decompress(path.read_bytes()), np.uint8, offset=8).copy()
    labels[7] = 10
    return gzip.compress(idx_bytes(labels), mtime=0)


def nan_features(ctx: dict[str, Any]) -> None:
    X = np.full((4, 784), 0.5, np.float32)
    X[2, 100] = np.nan
    ctx.update(X=X, y=np.arange(4), images=[save_npy(ctx, "nan.npy", np.full((28, 28), np.nan))])


def inf_features(ctx: dict[str, Any]) -> None:
    X = np.full((4, 784), 0.5, np.float32)
    X[0, 0] = -np.inf
    image = np.zeros((28, 28), np.float32)
    image[3, 3] = np.inf
    ctx.update(X=X, y=np.arange(4), images=[save_npy(ctx, "inf.npy", image)])


def save_npy(ctx: dict[str, Any], name: str, array: np.ndarray) -> Path:
    np.save(ctx["tmp"] / name, array)
    return ctx["tmp"] / name


def image_file(name: str, content: bytes | np.ndarray | None):
    def breaks(ctx: dict[str, Any]) -> None:
        path = ctx["tmp"] / name
        if isinstance(content, np.ndarray):
            np.save(path, content)
        elif content is not None:
            path.write_bytes(content)
        ctx["images"] = [path]

    return breaks


def model_bytes(edit: Callable[[bytes], bytes]):
    def breaks(ctx: dict[str, Any]) -> None:
        ctx["model"].write_bytes(edit(ctx["model"].read_bytes()))

    return breaks


def model_edit(edit_header=None, edit_tensors=None, *, checksum: bool = True):
    """Change the model file's header or tensors; with ``checksum`` the file's checksum is
    recomputed over the changed content (a hostile writer), without it kept (a careless
    one)."""

    def breaks(ctx: dict[str, Any]) -> None:
        edit_softreg_file(ctx["model"], edit_header, edit_tensors, checksum=checksum)

    return breaks


def model_header_text(text: str):
    """The model file's softreg header replaced by ``text``, tensors kept."""

    def breaks(ctx: dict[str, Any]) -> None:
        from safetensors.numpy import save_file

        _, tensors = read_softreg_file(ctx["model"])
        save_file(tensors, str(ctx["model"]), metadata={"softreg": text})

    return breaks


def set_tensor(name: str, value: Callable[[np.ndarray], np.ndarray]):
    def edit(tensors: dict[str, np.ndarray]) -> None:
        tensors[name] = value(tensors[name])

    return edit


def with_nan(array: np.ndarray) -> np.ndarray:
    out = array.copy()
    out.reshape(-1)[3] = np.nan
    return out


def foreign_model(ctx: dict[str, Any]) -> None:
    from safetensors.numpy import save_file

    save_file({"W": np.zeros((784, 10), np.float32)}, str(ctx["model"]))


def other_model(num_inputs: int, class_names, *, image: bool = False):
    """A valid model file of another shape; with ``image``, predict gets the 28x28 image."""

    def breaks(ctx: dict[str, Any]) -> None:
        write_model(ctx["model"], num_inputs, class_names)
        if image:
            ctx["images"] = [ctx["image"]]

    return breaks


def model_is_a_directory(ctx: dict[str, Any]) -> None:
    ctx["model"].unlink()
    ctx["model"].mkdir()


def out_under_a_file(ctx: dict[str, Any]) -> None:
    (ctx["tmp"] / "somefile").write_text("not a directory\n")
    ctx["out"] = ctx["tmp"] / "somefile" / "run"


def out_is_a_file(ctx: dict[str, Any]) -> None:
    (ctx["tmp"] / "somefile").write_text("not a directory\n")
    ctx["out"] = ctx["tmp"] / "somefile"


def out_under_proc(ctx: dict[str, Any]) -> None:
    ctx["out"] = PROC_OUT


def earlier_run(ctx: dict[str, Any]) -> None:
    """An earlier run's files in --out, and a file of the user's beside them."""
    out = ctx["out"]
    out.mkdir()
    (out / "config.json").write_text(json.dumps({"epochs": 3}) + "\n")
    (out / "metrics.json").write_text(json.dumps({"status": "finished", "epochs": 3}) + "\n")
    (out / "curves.png").write_bytes(b"\x89PNG\r\n\x1a\n earlier")
    (out / "model.safetensors").write_bytes(ctx["model"].read_bytes())
    (out / "notes.txt").write_text("mine\n")


def nothing(ctx: dict[str, Any]) -> None:
    pass


def limit_memory(nbytes: int):
    """Pretend the machine has ``nbytes`` of memory available (see softreg.limits)."""

    def breaks(ctx: dict[str, Any]) -> None:
        ctx["memory"] = nbytes

    return breaks


def big_png(ctx: dict[str, Any]) -> None:
    """A 20000 x 20000 grey PNG of one colour (48 kB), written row by row."""
    import zlib

    width = height = 20000
    row = b"\x00" + b"\x00" * width
    raw = zlib.compress(row * height, 9)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    path = ctx["tmp"] / "huge.png"
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", raw)
        + chunk(b"IEND", b"")
    )
    ctx["images"] = [path]


def gzip_bomb(role: str):
    """``role``'s file: its own IDX content, then 50 MB of zeros in the same gzip stream."""

    def breaks(ctx: dict[str, Any]) -> None:
        content = idx_bytes(A[role]) + bytes(50_000_000)
        write_file(ctx["data"], role, content)

    return breaks


def earlier_sweep(ctx: dict[str, Any]) -> None:
    ctx["out"].mkdir()
    (ctx["out"] / "sweep-lr-epochs.csv").write_text("field,value\nlr,0.1\n")


class Stop(Exception):
    pass


class StopAfter(softreg.Callback):
    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, step: int, epoch: int) -> None:
        if step == self.step:
            raise Stop


def stopped_run(edit: Callable[[Path], None] | None = None):
    """A run that stopped in its second epoch (3 steps an epoch) after a checkpoint at step
    4, then ``edit`` applied to its directory."""

    def breaks(ctx: dict[str, Any]) -> None:
        with pytest.raises(Stop):
            train_run(
                softreg.TrainConfig(epochs=2, batch_size=20),
                ctx["out"],
                options=RunOptions(
                    data_dir=ctx["data"],
                    progress=False,
                    plots=False,
                    checkpoint_every=2,
                    callbacks=(StopAfter(5),),
                ),
            )
        if edit is not None:
            edit(ctx["out"])

    return breaks


def earlier_format_model(ctx: dict[str, Any]) -> None:
    """The model as softreg's first format wrote it: header entries beside the tensors, a
    checksum over the tensors only."""
    from safetensors.numpy import save_file

    header, tensors = read_softreg_file(ctx["model"])
    metadata = {
        "softreg_format": "1",
        "model": "softmax-regression",
        "model_config": json.dumps(header["model"]["config"]),
        "class_names": json.dumps(header["class_names"]),
        "tensors_sha256": "0" * 64,
    }
    save_file({k: tensors[k] for k in ("W", "b")}, str(ctx["model"]), metadata=metadata)


def config_text(text: str):
    def edit(run_dir: Path) -> None:
        (run_dir / "config.json").write_text(text)

    return edit


def config_field(**fields: Any):
    def edit(run_dir: Path) -> None:
        config = json.loads((run_dir / "config.json").read_text())
        (run_dir / "config.json").write_text(json.dumps({**config, **fields}))

    return edit


def checkpoint_edit(edit_header=None, edit_tensors=None, *, checksum: bool = True):
    def edit(run_dir: Path) -> None:
        edit_softreg_file(
            run_dir / "checkpoint.safetensors", edit_header, edit_tensors, checksum=checksum
        )

    return edit


def first_record(**fields: Any):
    def edit(header: dict[str, Any]) -> None:
        header["history"]["records"][0].update(fields)

    return edit


def lock_link_to_victim(ctx: dict[str, Any]) -> None:
    """An earlier run whose lock file is a link to a file outside the run directory."""
    earlier_run(ctx)
    (ctx["tmp"] / "victim.txt").write_text("precious\n")
    (ctx["out"] / ".softreg.lock").symlink_to(ctx["tmp"] / "victim.txt")


def model_with_extra_metadata(ctx: dict[str, Any]) -> None:
    from safetensors.numpy import save_file

    from softreg.fileio import canonical_json

    header, tensors = read_softreg_file(ctx["model"])
    save_file(
        tensors,
        str(ctx["model"]),
        metadata={"softreg": canonical_json(header), "evil": "\x1b[2J" * 100},
    )


NESTED = "[" * 100_000 + "]" * 100_000
DEEP = '{"x": ' + "[" * 100 + "]" * 100 + "}" + " " * 4000  # deep, but mostly blank
DEEPEST = "[" * 100_000 + "]" * 100_000 + " " * 3_300_000  # beyond Python's parser


# ------------------------------------------------------------------ the library calls


def load(ctx: dict[str, Any]) -> Any:
    return load_dataset("fashion-mnist", data_dir=ctx["data"], download=False, progress=False)


def run(**config: Any):
    def call(ctx: dict[str, Any]) -> Any:
        return train_run(
            softreg.TrainConfig(epochs=1, **config),
            ctx["out"],
            options=RunOptions(data_dir=ctx["data"], progress=False, plots=False),
        )

    return call


def config(**fields: Any):
    return lambda ctx: softreg.TrainConfig(**fields)


def fit_xy(ctx: dict[str, Any]) -> Any:
    model = softreg.SoftmaxRegression(num_inputs=ctx["X"].shape[1], num_outputs=10)
    return softreg.fit(model, (ctx["X"], ctx["y"]), config=softreg.TrainConfig(epochs=1))


def fit_arrays(X: np.ndarray, y: np.ndarray):
    return lambda ctx: fit_xy({**ctx, "X": X, "y": y})


def fit_loaded_model(ctx: dict[str, Any]) -> Any:
    loaded, data = load_model(ctx["model"]), load(ctx)
    return softreg.fit(
        loaded.model,
        (data.X_train, data.y_train),
        (data.X_test, data.y_test),
        softreg.TrainConfig(epochs=1),
    )


def read_image(ctx: dict[str, Any]) -> Any:
    return read_image_file(ctx["images"][0], size=(28, 28))


def loads_model(ctx: dict[str, Any]) -> Any:
    return load_model(ctx["model"])


def report_to(ctx: dict[str, Any]) -> Any:
    return write_report({}, ctx["out"], plots=False)  # refuses --out before reading the report


def resume(ctx: dict[str, Any]) -> Any:
    return resume_run(
        ctx["out"], options=RunOptions(data_dir=ctx["data"], progress=False, plots=False)
    )


def sweep(*, val_fraction: float = 0.1, **options: Any):
    def call(ctx: dict[str, Any]) -> Any:
        from softreg.sweep import SweepPlan, sweep_main

        return sweep_main(
            SweepPlan(softreg.TrainConfig(epochs=1), "lr", [0.1, 1.0], val_fraction=val_fraction),
            out_dir=ctx["out"],
            data_dir=ctx["data"],
            progress=False,
            plots=False,
            **{"workers": 1, **options},
        )

    return call


def load_model_and_data(ctx: dict[str, Any]) -> tuple[Any, Any, Any]:
    loaded = load_model(ctx["model"])
    return loaded.model, loaded.params, load(ctx).X_test


# ----------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Case:
    id: str
    breaks: Callable[[dict[str, Any]], dict[str, Any] | None]  # edits the good inputs
    message: str  # regex the library's message and the CLI's line must match
    library: Callable[[dict[str, Any]], Any] | None  # the call that must refuse the input
    error: type[SoftregError] = SoftregError
    commands: tuple[str, ...] = ()  # CLI commands that must refuse it (see argv)
    flags: tuple[str, ...] = ()  # extra flags for those commands
    cli_message: str | None = None  # when the CLI says it in other words (argparse, say)
    real_process: bool = False  # also through `python -m softreg` (the first command)


def argv(command: str, ctx: dict[str, Any], flags: tuple[str, ...] = ()) -> list[str]:
    data, out, model = str(ctx["data"]), str(ctx["out"]), str(ctx["model"])
    if command == "train":
        return ["train", *FAST, "--data-dir", data, "--out", out, *flags]
    if command == "evaluate":
        return ["evaluate", model, "--data-dir", data, "--no-plots", "--out", out, *flags]
    if command == "predict":
        images = [str(p) for p in ctx.get("images", ())]
        where = images or ["--data-dir", data, "--index", "0"]
        return ["predict", model, *where, *flags]
    if command == "data":
        return ["data", "--data-dir", data, "--no-download", *flags]
    if command == "resume":
        return ["train", "--resume", out, "--data-dir", data, "--quiet", "--no-plots", *flags]
    if command == "sweep":
        return [
            "sweep",
            "--lr",
            "0.1,1",
            "--epochs",
            "1",
            "--workers",
            "1",
            "--data-dir",
            data,
            "--out",
            out,
            "--quiet",
            "--no-plots",
            *flags,
        ]
    raise AssertionError(command)


TRAIN_EVAL_DATA = ("train", "evaluate", "data")
nan, inf = float("nan"), float("inf")
X4, Y4 = np.full((4, 784), 0.5, np.float32), np.arange(4)
A = good_arrays()

CASES = [
    # --- missing, truncated or corrupt IDX / gzip files
    Case(
        "missing-file",
        delete_role("test_labels"),
        r"no complete fashion-mnist dataset .*missing in .*: t10k-labels-idx1-ubyte\.gz",
        load,
        DataError,
        TRAIN_EVAL_DATA,
        real_process=True,
    ),
    Case(
        "missing-data-dir",
        no_data_dir,
        r"no-such-dir: no such directory",
        load,
        DataError,
        TRAIN_EVAL_DATA,
    ),
    Case(
        "truncated-gzip",
        edit_bytes("test_images", lambda b: b[: len(b) // 2]),
        r"t10k-images-idx3-ubyte\.gz: truncated gzip stream",
        load,
        DataError,
        TRAIN_EVAL_DATA,
        real_process=True,
    ),
    Case(
        "corrupt-gzip-crc",
        edit_bytes("test_images", lambda b: flip(b, -6)),
        r"t10k-images-idx3-ubyte\.gz: corrupt gzip data: .*incorrect data check",
        load,
        DataError,
        TRAIN_EVAL_DATA,
    ),
    Case(
        "corrupt-gzip-stream",
        edit_bytes("train_labels", lambda b: b[:12] + b"\xff" * 8 + b[20:]),
        r"train-labels-idx1-ubyte\.gz: (corrupt|truncated) gzip",
        load,
        DataError,
        TRAIN_EVAL_DATA,
    ),
    Case(
        "gzip-magic-then-garbage",
        replace_role("test_labels", b"\x1f\x8bgarbage", compress=False),
        r"t10k-labels-idx1-ubyte: corrupt gzip data",
        load,
        DataError,
        ("data",),
    ),
    Case(
        "truncated-raw-idx",
        raw_truncated,
        r"t10k-images-idx3-ubyte: truncated IDX data: header says 15680 bytes, file has 15673",
        load,
        DataError,
        TRAIN_EVAL_DATA,
    ),
    Case(
        "empty-file",
        replace_role("test_labels", b""),
        r"t10k-labels-idx1-ubyte\.gz: not an IDX file: 0 bytes",
        load,
        DataError,
        TRAIN_EVAL_DATA,
    ),
    Case(
        "truncated-header",
        replace_role("test_labels", b"\x00\x00\x08\x01\x00"),
        r"truncated IDX header: 1 dimensions need 8 bytes, file has 5",
        load,
        DataError,
        ("train", "data"),
    ),
    Case(
        "real-truncated-gzip",
        real_data("train_images", lambda p: p.read_bytes()[:1_000_000]),
        r"train-images-idx3-ubyte\.gz: truncated gzip stream",
        load,
        DataError,
        ("train", "evaluate"),
    ),
    Case(
        "real-corrupt-gzip",
        real_data("test_images", lambda p: flip(p.read_bytes(), -6)),
        r"t10k-images-idx3-ubyte\.gz: corrupt gzip data",
        load,
        DataError,
        ("train",),
    ),
    # --- wrong magic number
    Case(
        "wrong-magic-images",
        replace_role("train_images", idx_bytes(A["train_images"], magic=b"\x00\x01\x08\x03")),
        r"train-images-idx3-ubyte\.gz: not an IDX file: magic number 0x00010803",
        load,
        DataError,
        TRAIN_EVAL_DATA,
        real_process=True,
    ),
    Case(
        "wrong-magic-labels",
        replace_role("test_labels", idx_bytes(A["test_labels"], magic=b"\x08\x00\x00\x01")),
        r"t10k-labels-idx1-ubyte\.gz: not an IDX file: magic number 0x08000001",
        load,
        DataError,
        TRAIN_EVAL_DATA,
    ),
    Case(
        "unknown-type-code",
        replace_role("train_labels", idx_bytes(A["train_labels"], code=0x0A)),
        r"train-labels-idx1-ubyte\.gz: unknown IDX type code 0x0A",
        load,
        DataError,
        ("train", "data"),
    ),
    # --- header count not matching the data
    Case(
        "header-count-above-payload",
        replace_role("train_images", idx_bytes(A["train_images"], dims=(N_TRAIN + 1, 28, 28))),
        r"train-images-idx3-ubyte\.gz: truncated IDX data: header says 47824 bytes, "
        r"file has 47040",
        load,
        DataError,
        TRAIN_EVAL_DATA,
    ),
    Case(
        "header-count-below-payload",
        replace_role("test_labels", idx_bytes(A["test_labels"], dims=(N_TEST - 2,))),
        r"t10k-labels-idx1-ubyte\.gz: 2 trailing bytes after IDX data",
        load,
        DataError,
        TRAIN_EVAL_DATA,
    ),
    Case(
        "images-labels-count",
        replace_arrays(train_labels=A["train_labels"][:-1]),
        rf"train: {N_TRAIN} images but {N_TRAIN - 1} labels",
        load,
        DataError,
        TRAIN_EVAL_DATA,
    ),
    Case(
        "images-in-the-labels-file",
        replace_arrays(test_labels=A["test_images"]),
        r"t10k-labels-idx1-ubyte\.gz: expected 1-D integer labels, got uint8 array of shape "
        r"\(20, 28, 28\)",
        load,
        DataError,
        TRAIN_EVAL_DATA,
    ),
    # --- labels outside [0, n_classes)
    Case(
        "label-10",
        replace_arrays(
            test_labels=np.where(A["test_labels"] == 3, 10, A["test_labels"]).astype(np.uint8)
        ),
        r"t10k-labels-idx1-ubyte\.gz: label 10 outside \[0, 10\)",
        load,
        DataError,
        (*TRAIN_EVAL_DATA, "predict"),
    ),
    Case(
        "label-255",
        replace_arrays(train_labels=np.full(N_TRAIN, 255, np.uint8)),
        r"train-labels-idx1-ubyte\.gz: label 255 outside \[0, 10\)",
        load,
        DataError,
        ("train",),
    ),
    Case(
        "real-label-10",
        real_data("test_labels", real_labels_with_10),
        r"t10k-labels-idx1-ubyte\.gz: label 10 outside \[0, 10\)",
        load,
        DataError,
        ("train", "evaluate", "predict"),
    ),
    Case(
        "fit-label-10",
        nothing,
        r"train: label 10 outside \[0, 10\)",
        fit_arrays(X4, np.array([0, 1, 10, 2])),
        DataValueError,
    ),
    Case(
        "fit-label-minus-1",
        nothing,
        r"train: label -1 outside \[0, 10\)",
        fit_arrays(X4, np.array([0, -1, 1, 2])),
        DataValueError,
    ),
    Case(
        "fit-float-labels",
        nothing,
        r"train: labels must be integers",
        fit_arrays(X4, np.array([0.0, 1, 1, 2])),
        DataValueError,
    ),
    # --- images of the wrong size
    Case(
        "images-32x32",
        replace_arrays(
            train_images=good_arrays(side=32)["train_images"],
            test_images=good_arrays(side=32)["test_images"],
        ),
        r"train-images-idx3-ubyte\.gz: expected uint8 images of shape \(n, 28, 28\), got "
        r"uint8 array of shape \(60, 32, 32\)",
        load,
        DataError,
        TRAIN_EVAL_DATA,
    ),
    Case(
        "test-images-28x27",
        replace_arrays(test_images=A["test_images"][:, :, :27].copy()),
        r"t10k-images-idx3-ubyte\.gz: expected uint8 images of shape \(n, 28, 28\)",
        load,
        DataError,
        ("evaluate", "predict"),
    ),
    Case(
        "npy-32x32",
        image_file("big.npy", np.zeros((32, 32), np.uint8)),
        r"big\.npy: image of shape \(32, 32\), expected \(28, 28\)",
        read_image,
        SoftregError,
        ("predict",),
        real_process=True,
    ),
    Case(
        "npy-flat-784",
        image_file("flat.npy", np.zeros(784, np.uint8)),
        r"flat\.npy: image of shape \(784,\), expected \(28, 28\)",
        read_image,
        SoftregError,
        ("predict",),
    ),
    Case(
        "npy-values-above-1",
        image_file("bright.npy", np.full((28, 28), 2.0)),
        r"bright\.npy: float image values must lie in \[0, 1\]",
        read_image,
        SoftregError,
        ("predict",),
    ),
    Case(
        "npy-not-an-array",
        image_file("junk.npy", b"junk"),
        r"junk\.npy: not a readable \.npy array",
        read_image,
        SoftregError,
        ("predict",),
    ),
    Case(
        "png-not-an-image",
        image_file("junk.png", b"junk"),
        r"junk\.png: not a readable image",
        read_image,
        SoftregError,
        ("predict",),
    ),
    Case(
        "missing-image",
        image_file("none.png", None),
        r"none\.png: no such image file",
        read_image,
        SoftregError,
        ("predict",),
    ),
    # --- NaN or inf features
    Case(
        "nan-features",
        nan_features,
        r"NaN or inf",
        fit_xy,
        DataValueError,
        ("predict",),
        real_process=True,
    ),
    Case("inf-features", inf_features, r"NaN or inf", fit_xy, DataValueError, ("predict",)),
    Case(
        "idx-float-images",
        replace_role(
            "train_images", idx_bytes(np.full((N_TRAIN, 28, 28), np.nan, np.float32), code=0x0D)
        ),
        r"train-images-idx3-ubyte\.gz: expected uint8 images of shape \(n, 28, 28\), got "
        r"float32",
        load,
        DataError,
        TRAIN_EVAL_DATA,
    ),
    # --- an empty dataset
    Case(
        "empty-dataset",
        replace_arrays(**good_arrays(n_train=0, n_test=0)),
        r"train-images-idx3-ubyte\.gz: no images \(its header says 0\); the train set is "
        r"empty",
        load,
        DataError,
        TRAIN_EVAL_DATA,
        real_process=True,
    ),
    Case(
        "empty-test-set",
        replace_arrays(**{k: v for k, v in good_arrays(n_test=0).items() if k.startswith("test")}),
        r"t10k-images-idx3-ubyte\.gz: no images .*the test set is empty",
        load,
        DataError,
        (*TRAIN_EVAL_DATA, "predict"),
    ),
    Case(
        "fit-empty",
        nothing,
        r"train: the dataset is empty",
        fit_arrays(X4[:0], Y4[:0]),
        DataValueError,
    ),
    Case(
        "fit-length-mismatch",
        nothing,
        r"train: 4 examples but 3 labels",
        fit_arrays(X4, Y4[:3]),
        DataValueError,
    ),
    Case(
        "fit-features-of-another-width",
        nothing,
        r"train: 784 features per example, but the model takes 64",
        lambda ctx: softreg.fit(softreg.SoftmaxRegression(num_inputs=64), (X4, Y4)),
        DataValueError,
    ),
    Case(
        "constant-images-standardised",
        replace_arrays(train_images=np.zeros((N_TRAIN, 28, 28), np.uint8)),
        r"cannot standardise inputs with mean 0\.0 and std 0\.0",
        run(normalize="yes"),
        ConfigError,
        ("train",),
        ("--normalize", "yes"),
    ),
    # --- batch size, learning rate, epochs and the other hyperparameters
    *(
        Case(
            f"{flag.lstrip('-')}={value}",
            nothing,
            message,
            config(**{flag.lstrip("-").replace("-", "_"): kind(value)}),
            ConfigError,
            ("train",),
            (flag, value),
            real_process=flag == "--lr" and value == "nan",
        )
        for flag, value, kind, message in [
            ("--batch-size", "0", int, r"batch_size must be an integer >= 1, got 0"),
            ("--batch-size", "-3", int, r"batch_size must be an integer >= 1, got -3"),
            ("--lr", "0", float, r"learning rate must be a positive finite number, got 0\.0"),
            ("--lr", "-0.1", float, r"learning rate must be a positive finite number, got -0\.1"),
            ("--lr", "nan", float, r"learning rate must be a positive finite number, got nan"),
            ("--lr", "inf", float, r"learning rate must be a positive finite number, got inf"),
            ("--epochs", "0", int, r"epochs must be an integer >= 1, got 0"),
            ("--epochs", "-2", int, r"epochs must be an integer >= 1, got -2"),
            ("--momentum", "1.5", float, r"momentum must be below 1, got 1\.5"),
            ("--momentum", "-0.5", float, r"momentum must be a finite number >= 0, got -0\.5"),
            ("--momentum", "nan", float, r"momentum must be a finite number >= 0, got nan"),
            ("--weight-decay", "-1", float, r"weight_decay must be a finite number >= 0"),
            ("--weight-decay", "inf", float, r"weight_decay must be a finite number >= 0"),
            ("--sigma", "nan", float, r"sigma must be a finite number >= 0, got nan"),
            ("--sigma", "-1", float, r"sigma must be a finite number >= 0, got -1\.0"),
            ("--eval-batch-size", "0", int, r"eval_batch_size must be an integer >= 1, got 0"),
            ("--log-every", "-1", int, r"log_every must be an integer >= 0, got -1"),
            ("--seed", "-1", int, r"seed must be an integer >= 0, got -1"),
        ]
    ),
    Case(
        "hidden=0",
        nothing,
        r"hidden layer size must be an integer >= 1, got 0",
        config(model="mlp", hidden=(0,)),
        ConfigError,
        ("train",),
        ("--model", "mlp", "--hidden", "0"),
        cli_message=r"argument --hidden: layer sizes must be >= 1, got '0'",
    ),
    Case(
        "device-cuda-on-numpy",
        nothing,
        r"the numpy backend runs on the CPU only",
        run(device="cuda"),
        ConfigError,
        ("train",),
        ("--device", "cuda"),
    ),
    Case(
        "checkpoint-every=-1",
        nothing,
        r"checkpoint.every must be (an integer )?>= 0",
        lambda ctx: train_run(
            softreg.TrainConfig(epochs=1),
            ctx["out"],
            options=RunOptions(
                data_dir=ctx["data"], progress=False, plots=False, checkpoint_every=-1
            ),
        ),
        ConfigError,
        ("train",),
        ("--checkpoint-every", "-1"),
    ),
    Case(
        "show=-1",
        nothing,
        r"--show must be 0 to 100, got -1",
        None,
        commands=("train",),
        flags=("--show", "-1"),
    ),
    Case(
        "top=0",
        nothing,
        r"--top must be >= 1, got 0",
        None,
        commands=("predict",),
        flags=("--top", "0"),
    ),
    Case(
        "index-outside",
        nothing,
        r"--index 20 outside the test set \[0, 20\)",
        None,
        commands=("predict",),
        flags=("--index", "20"),
    ),
    Case(
        "reject-below=1.5",
        nothing,
        r"--reject-below must be a probability in \[0, 1\]",
        None,
        commands=("evaluate",),
        flags=("--reject-below", "1.5"),
    ),
    # --- an unwritable output directory (we may run as root: chmod would not stop writes)
    Case(
        "out-under-a-file",
        out_under_a_file,
        r"somefile/run: cannot be created, .*somefile is not a directory",
        run(),
        RunDirError,
        ("train",),
        real_process=True,
    ),
    Case(
        "out-is-a-file",
        out_is_a_file,
        r"somefile: exists and is not a directory",
        run(),
        RunDirError,
        ("train",),
    ),
    Case(
        "out-under-proc",
        out_under_proc,
        r"/proc/softreg-test-run: cannot create the run directory",
        run(),
        RunDirError,
        ("train",),
    ),
    Case(
        "evaluate-out-under-a-file",
        out_under_a_file,
        r"somefile/run: cannot be created, .*somefile is not a directory",
        report_to,
        SoftregError,
        ("evaluate",),
    ),
    Case(
        "evaluate-out-is-a-file",
        out_is_a_file,
        r"somefile: exists and is not a directory",
        report_to,
        SoftregError,
        ("evaluate",),
    ),
    Case(
        "evaluate-out-under-proc",
        out_under_proc,
        r"/proc/softreg-test-run: cannot create the output directory",
        report_to,
        SoftregError,
        ("evaluate",),
    ),
    # --- an existing run directory (refused unless --overwrite: test_overwrite_...)
    Case(
        "existing-run-dir",
        earlier_run,
        r"out: already holds a run; choose another --out or pass --overwrite",
        run(),
        RunDirError,
        ("train",),
        real_process=True,
    ),
    # --- a model file of another shape
    Case(
        "model-64-inputs",
        other_model(64, FASHION_MNIST_LABELS),
        r"784 features per example, but the model takes 64",
        fit_loaded_model,
        DataValueError,
        ("evaluate", "predict"),
        cli_message=r"the model takes 64 features, fashion-mnist has 784",
        real_process=True,
    ),
    Case(
        "model-64-inputs-npy-28x28",
        other_model(64, FASHION_MNIST_LABELS, image=True),
        r"image\.npy: image of shape \(28, 28\), expected \(8, 8\)",
        lambda ctx: read_image_file(ctx["image"], size=(8, 8)),
        SoftregError,
        ("predict",),
    ),
    Case(
        "model-3-classes",
        other_model(784, ("a", "b", "c")),
        r"label [3-9] outside \[0, 3\)",
        fit_loaded_model,
        DataValueError,
        ("evaluate", "predict"),
        cli_message=r"the model's 3 classes \(a, b, c\) are not fashion-mnist's 10 "
        r"\(t-shirt, trouser, pullover, dress, \.\.\.\)",
    ),
    Case(
        "model-header-shape",
        model_edit(lambda h: h["model"]["config"].update(num_inputs=785)),
        r"tensor W is F32 \(784, 10\), expected F32 \(785, 10\)",
        loads_model,
        ModelFileError,
        ("evaluate", "predict"),
    ),
    # --- a truncated or tampered model file
    Case(
        "model-missing",
        lambda ctx: ctx["model"].unlink(),
        r"no such model file",
        loads_model,
        ModelFileError,
        ("evaluate", "predict"),
    ),
    Case(
        "model-is-a-directory",
        model_is_a_directory,
        r"model\.safetensors: no such model",
        loads_model,
        ModelFileError,
        ("predict",),
    ),
    Case(
        "model-truncated",
        model_bytes(lambda b: b[: len(b) // 2]),
        r"model\.safetensors: not a readable safetensors model file",
        loads_model,
        ModelFileError,
        ("evaluate", "predict"),
        real_process=True,
    ),
    Case(
        "model-truncated-to-5-bytes",
        model_bytes(lambda b: b[:5]),
        r"not a readable safetensors model file",
        loads_model,
        ModelFileError,
        ("evaluate",),
    ),
    Case(
        "model-empty",
        model_bytes(lambda b: b""),
        r"not a readable safetensors model file",
        loads_model,
        ModelFileError,
        ("predict",),
    ),
    Case(
        "model-tampered-weights",
        model_bytes(lambda b: flip(b, -100)),
        r"model\.safetensors: the header or the tensors do not match the file's checksum",
        loads_model,
        ModelFileError,
        ("evaluate", "predict"),
        real_process=True,
    ),
    Case(
        "model-tampered-header-json",
        model_header_text('{"kind": "model", "format": 2,'),
        r"model\.safetensors: the header: not valid JSON",
        loads_model,
        ModelFileError,
        ("evaluate", "predict"),
    ),
    Case(
        "model-class-names-count",
        model_edit(lambda h: h.update(class_names=["a", "b"])),
        r"2 class names for 10 outputs",
        loads_model,
        ModelFileError,
        ("predict",),
    ),
    Case(
        "model-format-tag",
        model_edit(lambda h: h.update(format=99)),
        r"format 99, but this softreg reads format 2",
        loads_model,
        ModelFileError,
        ("evaluate",),
    ),
    Case(
        "model-foreign-safetensors",
        foreign_model,
        r"not a softreg model file",
        loads_model,
        ModelFileError,
        ("evaluate", "predict"),
    ),
    # --- a dataset whose classes are not the model's
    Case(
        "evaluate-on-another-dataset",
        nothing,
        r"the model's 10 classes \(t-shirt, trouser, pullover, dress, \.\.\.\) are not "
        r"mnist's 10 \(0, 1, 2, 3, \.\.\.\)",
        lambda ctx: load_model(ctx["model"]).check_classes("mnist", MNIST_LABELS),
        DataValueError,
        ("evaluate", "predict"),
        ("--dataset", "mnist"),
        real_process=True,
    ),
    # --- a model file changed after it was written, checksum left as it was
    Case(
        "model-input-scale-bit-flipped",
        model_edit(
            edit_tensors=set_tensor(
                "input_scale",
                lambda t: np.asarray(t.view(np.uint32) ^ np.uint32(1 << 22)).view(np.float32),
            ),
            checksum=False,
        ),
        r"do not match the file's checksum",
        loads_model,
        ModelFileError,
        ("evaluate",),
    ),
    Case(
        "model-class-names-reordered",
        model_edit(lambda h: h["class_names"].reverse(), checksum=False),
        r"do not match the file's checksum",
        loads_model,
        ModelFileError,
        ("predict",),
    ),
    # --- a model file changed, with a valid checksum over the changed content
    Case(
        "model-class-name-escape-sequence",
        model_edit(lambda h: h["class_names"].__setitem__(0, "\x1b[2J\x1b]0;pwned\x07")),
        r"class name '\\x1b\[2J\\x1b\]0;pwned\\x07' is not a printable string",
        loads_model,
        ModelFileError,
        ("evaluate", "predict"),
    ),
    Case(
        "model-class-names-duplicate",
        model_edit(lambda h: h["class_names"].__setitem__(1, h["class_names"][0])),
        r"the class names are not all different",
        loads_model,
        ModelFileError,
        ("predict",),
    ),
    Case(
        "model-class-name-number",
        model_edit(lambda h: h["class_names"].__setitem__(0, 7)),
        r"class name 7 is not a printable string",
        loads_model,
        ModelFileError,
        ("evaluate",),
    ),
    Case(
        "model-class-name-long",
        model_edit(lambda h: h["class_names"].__setitem__(0, "x" * 10_000)),
        r"class name 'x+ is not a printable string of 1 to 64 characters",
        loads_model,
        ModelFileError,
        ("predict",),
    ),
    Case(
        "model-config-string",
        model_edit(lambda h: h["model"]["config"].update(num_inputs="784")),
        r"model configuration is not valid \(num_inputs must be an integer >= 1, got '784'\)",
        loads_model,
        ModelFileError,
        ("evaluate", "predict"),
    ),
    Case(
        "model-config-unknown-field",
        model_edit(lambda h: h["model"]["config"].update(depth=3)),
        r"model configuration is not valid \(.*unexpected keyword argument 'depth'\)",
        loads_model,
        ModelFileError,
        ("predict",),
    ),
    Case(
        "model-config-sigma-nan-text",
        model_edit(lambda h: h["model"]["config"].update(sigma="nan")),
        r"sigma must be a finite number >= 0, got 'nan'",
        loads_model,
        ModelFileError,
        ("predict",),
    ),
    Case(
        "model-type-unknown",
        model_edit(lambda h: h["model"].update(type="transformer")),
        r"unknown model type 'transformer'",
        loads_model,
        ModelFileError,
        ("evaluate",),
    ),
    Case(
        "model-kind-checkpoint",
        model_edit(lambda h: h.update(kind="checkpoint")),
        r"not a softreg model file \(it is a 'checkpoint' file\)",
        loads_model,
        ModelFileError,
        ("predict",),
    ),
    Case(
        "model-metadata-escape-sequence",
        model_edit(lambda h: h["metadata"].update(dataset="\x1b]0;pwned\x07")),
        r"metadata entry 'dataset' is not a short printable string",
        loads_model,
        ModelFileError,
        ("evaluate",),
    ),
    Case(
        "model-metadata-not-a-string",
        model_edit(lambda h: h["metadata"].update(seed=0)),
        r"metadata entry 'seed' is not a short printable string",
        loads_model,
        ModelFileError,
        ("predict",),
    ),
    Case(
        "model-input-scale-zero",
        model_edit(edit_tensors=set_tensor("input_scale", lambda t: np.zeros_like(t))),
        r"input standardisation is not valid \(input_scale must be > 0, got 0\.0\)",
        loads_model,
        ModelFileError,
        ("evaluate", "predict"),
    ),
    Case(
        "model-input-mean-nan",
        model_edit(
            edit_tensors=set_tensor("input_mean", lambda t: np.full(784, np.nan, np.float32))
        ),
        r"input standardisation is not valid \(input_mean must be finite, got nan\)",
        loads_model,
        ModelFileError,
        ("predict",),
    ),
    Case(
        "model-input-scale-float64",
        model_edit(edit_tensors=set_tensor("input_scale", lambda t: t.astype(np.float64))),
        r"tensor input_scale is F64 \(\), expected F32 \(\) or \(784,\)",
        loads_model,
        ModelFileError,
        ("evaluate",),
    ),
    Case(
        "model-input-scale-shape",
        model_edit(edit_tensors=set_tensor("input_scale", lambda t: np.ones(5, np.float32))),
        r"tensor input_scale is F32 \(5,\), expected F32 \(\) or \(784,\)",
        loads_model,
        ModelFileError,
        ("predict",),
    ),
    Case(
        "model-weights-nan",
        model_edit(edit_tensors=set_tensor("W", with_nan)),
        r"tensor W holds NaN or infinite values",
        loads_model,
        ModelFileError,
        ("evaluate", "predict"),
        real_process=True,
    ),
    Case(
        "model-weights-float64",
        model_edit(edit_tensors=set_tensor("W", lambda t: t.astype(np.float64))),
        r"tensor W is F64 \(784, 10\), expected F32 \(784, 10\)",
        loads_model,
        ModelFileError,
        ("predict",),
    ),
    Case(
        "model-weights-strings-as-bytes",
        model_edit(
            edit_tensors=set_tensor("b", lambda t: np.frombuffer(b"0123456789", np.uint8).copy())
        ),
        r"tensor b is U8 \(10,\), expected F32 \(10,\)",
        loads_model,
        ModelFileError,
        ("evaluate",),
    ),
    Case(
        "model-extra-tensor",
        model_edit(edit_tensors=lambda t: t.update(extra=np.zeros(3, np.float32))),
        r"unexpected: extra",
        loads_model,
        ModelFileError,
        ("predict",),
    ),
    Case(
        "model-missing-tensor",
        model_edit(edit_tensors=lambda t: t.pop("b")),
        r"missing: b;",
        loads_model,
        ModelFileError,
        ("evaluate",),
    ),
    Case(
        "model-header-flood-of-brackets",
        model_header_text(NESTED),
        r"model\.safetensors: the header: 100000 objects and lists in 200000 bytes, too many "
        r"to be softreg's",
        loads_model,
        ModelFileError,
        ("evaluate", "predict"),
        real_process=True,
    ),
    Case(
        "model-header-nested-deeply",
        model_header_text(DEEP),
        r"model\.safetensors: the header: nested deeper than 64 levels",
        loads_model,
        ModelFileError,
        ("evaluate", "predict"),
    ),
    Case(
        "model-header-nested-beyond-the-parser",
        model_header_text(DEEPEST),
        r"model\.safetensors: the header: nested too deeply to be read",
        loads_model,
        ModelFileError,
        ("predict",),
    ),
    Case(
        "model-header-not-an-object",
        model_header_text("[1, 2, 3]"),
        r"the header is not a JSON object",
        loads_model,
        ModelFileError,
        ("predict",),
    ),
    Case(
        "model-header-nan",
        model_header_text('{"kind": NaN}'),
        r"the header: not valid JSON \(NaN is not a JSON number\)",
        loads_model,
        ModelFileError,
        ("evaluate",),
    ),
    Case(
        "model-earlier-format",
        earlier_format_model,
        r"written by an earlier softreg \(format 1, whose header no checksum covers\)",
        loads_model,
        ModelFileError,
        ("evaluate", "predict"),
    ),
    Case(
        "model-beyond-memory",
        limit_memory(20_000),
        r"model\.safetensors: its tensors take 31\.4 kB, more than the 20\.0 kB of memory "
        r"available",
        loads_model,
        ModelFileError,
        ("evaluate", "predict"),
    ),
    # --- hostile image and .npy files
    Case(
        "png-20000x20000",
        big_png,
        r"huge\.png: image larger than the limit of 4096x4096 = 16777216 pixels \(Image size "
        r"\(400000000 pixels\)",
        read_image,
        SoftregError,
        ("predict",),
        real_process=True,
    ),
    Case(
        "npy-strings",
        image_file("strings.npy", np.full((28, 28), "ab")),
        r"strings\.npy: image must hold real numbers, got dtype <U2",
        read_image,
        SoftregError,
        ("predict",),
    ),
    Case(
        "npy-structured",
        image_file("records.npy", np.zeros((28, 28), [("a", "i4")])),
        r"records\.npy: image must hold real numbers, got dtype \[\('a', '<i4'\)\]",
        read_image,
        SoftregError,
        ("predict",),
    ),
    Case(
        "npy-datetime",
        image_file("dates.npy", np.zeros((28, 28), "datetime64[D]")),
        r"dates\.npy: image must hold real numbers, got dtype datetime64\[D\]",
        read_image,
        SoftregError,
        ("predict",),
    ),
    # --- decompression and size bombs in the data
    Case(
        "idx-gzip-bomb",
        gzip_bomb("test_labels"),
        r"t10k-labels-idx1-ubyte\.gz: more than 1048576 trailing bytes after IDX data",
        load,
        DataError,
        ("train", "evaluate"),
    ),
    Case(
        "idx-declares-more-than-gzip-can-hold",
        replace_role("train_images", idx_bytes(A["train_images"], dims=(10**9, 28, 28))),
        r"train-images-idx3-ubyte\.gz: the header declares 784000000000 bytes of IDX data "
        r"\(784\.0 GB\), but a gzip file of \d+ bytes can hold at most",
        load,
        DataError,
        ("train", "data"),
    ),
    Case(
        "idx-beyond-memory",
        limit_memory(10_000),
        r"train-images-idx3-ubyte\.gz: the header declares .*47\.0 kB, more than the 10\.0 kB of "
        r"memory available",
        load,
        DataError,
        ("train", "data"),
    ),
    Case(
        "data-dir-unknown-user",
        lambda ctx: {**ctx, "data": Path("~nosuchuser-softreg/data")},
        r"data_dir ~nosuchuser-softreg/data: cannot expand ~nosuchuser-softreg",
        load,
        DataError,
        ("train", "data"),
        real_process=True,
    ),
    # --- checks that run before the first file is written
    Case(
        "sampled-as-many-as-classes",
        nothing,
        r"sampled=10 classes per step, but the model has only 10",
        run(sampled=10),
        ConfigError,
        ("train",),
        ("--sampled", "10"),
    ),
    Case(
        "hidden-layer-beyond-memory",
        nothing,
        r"a mlp model 784-100000000000-10 \(79,500,000,000,010 parameters\) needs about "
        r"1\.6 PB, more than the .* of memory available",
        run(model="mlp", hidden=(10**11,)),
        ConfigError,
        ("train",),
        ("--model", "mlp", "--hidden", str(10**11)),
        real_process=True,
    ),
    Case(
        "out-empty",
        nothing,
        r"the run directory is an empty string",
        lambda ctx: train_run(
            softreg.TrainConfig(epochs=1),
            "",
            options=RunOptions(data_dir=ctx["data"], progress=False, plots=False),
        ),
        RunDirError,
        ("train", "sweep"),
        ("--out", ""),
        cli_message=r"argument --out: an empty directory name",
    ),
    Case(
        "show-100000",
        nothing,
        r"the prediction grids show 0 to 100 images, got 100000",
        lambda ctx: train_run(
            softreg.TrainConfig(epochs=1),
            ctx["out"],
            options=RunOptions(data_dir=ctx["data"], progress=False, plots=False, n_show=100_000),
        ),
        ConfigError,
        ("train",),
        ("--show", "100000"),
        cli_message=r"--show must be 0 to 100, got 100000",
    ),
    Case(
        "sweep-workers-0",
        nothing,
        r"workers must be an integer >= 1, got 0",
        sweep(workers=0),
        ConfigError,
        ("sweep",),
        ("--workers", "0"),
    ),
    Case(
        "sweep-over-an-earlier-sweep",
        earlier_sweep,
        r"out: already holds a run; choose another --out or pass --overwrite",
        sweep(),
        RunDirError,
        ("sweep",),
    ),
    Case(
        "sweep-out-is-a-file",
        out_is_a_file,
        r"somefile: exists and is not a directory",
        sweep(),
        RunDirError,
        ("sweep",),
    ),
    Case(
        "sweep-missing-data",
        delete_role("train_labels"),
        r"no complete fashion-mnist dataset",
        sweep(),
        DataError,
        ("sweep",),
    ),
    # --- a run to resume whose config.json or checkpoint was damaged
    Case(
        "resume-config-flood-of-brackets",
        stopped_run(config_text(NESTED)),
        r"config\.json: 100000 objects and lists in 200000 bytes",
        resume,
        RunDirError,
        ("resume",),
        real_process=True,
    ),
    Case(
        "resume-config-nested-deeply",
        stopped_run(config_text(DEEP)),
        r"config\.json: nested deeper than 64 levels",
        resume,
        RunDirError,
        ("resume",),
    ),
    Case(
        "resume-config-a-list",
        stopped_run(config_text("[1, 2]")),
        r"config\.json: not a valid run configuration \(not a JSON object\)",
        resume,
        RunDirError,
        ("resume",),
    ),
    Case(
        "resume-config-lr-a-string",
        stopped_run(config_field(lr="0.1")),
        r"learning rate must be a positive finite number, got '0\.1'",
        resume,
        RunDirError,
        ("resume",),
    ),
    Case(
        "resume-config-hidden-a-number",
        stopped_run(config_field(hidden=5)),
        r"hidden must be a sequence of layer sizes, got 5",
        resume,
        RunDirError,
        ("resume",),
    ),
    Case(
        "resume-config-unknown-field",
        stopped_run(config_field(depth=3)),
        r"not a valid run configuration \(.*unexpected keyword argument 'depth'\)",
        resume,
        RunDirError,
        ("resume",),
    ),
    Case(
        "resume-config-huge",
        stopped_run(config_text(" " * 2_000_000 + "{}")),
        r"config\.json: 2000002 bytes, too large to be a run configuration",
        resume,
        RunDirError,
        ("resume",),
    ),
    Case(
        "resume-checkpoint-history-junk",
        stopped_run(checkpoint_edit(first_record(train_loss="junk"))),
        r"history\.records\[0\]\.train_loss must be a finite number >= 0, got 'junk'",
        resume,
        ModelFileError,
        ("resume",),
    ),
    Case(
        "resume-checkpoint-history-accuracy",
        stopped_run(checkpoint_edit(first_record(test_acc=7.5))),
        r"history\.records\[0\]\.test_acc is above 1",
        resume,
        ModelFileError,
        ("resume",),
    ),
    Case(
        "resume-checkpoint-history-extra-rows",
        stopped_run(
            checkpoint_edit(lambda h: h["history"]["records"].extend(h["history"]["records"] * 3))
        ),
        r"the history's epochs \[1, 1, 1, 1\] do not count up to position\.epoch 1",
        resume,
        ModelFileError,
        ("resume",),
    ),
    Case(
        "resume-checkpoint-history-changed",
        stopped_run(checkpoint_edit(first_record(train_loss=0.001), checksum=False)),
        r"checkpoint\.safetensors: the header or the tensors do not match the file's checksum",
        resume,
        ModelFileError,
        ("resume",),
    ),
    Case(
        "resume-checkpoint-position-negative",
        stopped_run(checkpoint_edit(lambda h: h["position"].update(step=-1))),
        r"position\.step must be an integer >= 0, got -1",
        resume,
        ModelFileError,
        ("resume",),
    ),
    Case(
        "resume-checkpoint-every-text",
        stopped_run(checkpoint_edit(lambda h: h.update(checkpoint_every="x"))),
        r"checkpoint_every must be an integer, got 'x'",
        resume,
        ModelFileError,
        ("resume",),
    ),
    Case(
        "resume-checkpoint-config-differs",
        stopped_run(checkpoint_edit(lambda h: h["train_config"].update(lr=0.5))),
        r"written for another configuration",
        resume,
        RunDirError,
        ("resume",),
    ),
    # --- more ways in, each closed at its mechanism
    Case(
        "out-lock-file-links-outside",
        lock_link_to_victim,
        r"out: cannot lock the run directory: \.softreg\.lock cannot be opened \(it is a "
        r"symbolic link\)",
        lambda ctx: train_run(
            softreg.TrainConfig(epochs=1),
            ctx["out"],
            overwrite=True,
            options=RunOptions(data_dir=ctx["data"], progress=False, plots=False),
        ),
        RunDirError,
        ("train", "sweep"),
        ("--overwrite",),
    ),
    Case(
        "sweep-overwrite-that-fails",
        earlier_sweep,
        r"validation fraction 0\.9999 of 60 examples leaves 60 to validate and 0 to fit",
        sweep(overwrite=True, val_fraction=0.9999),
        ConfigError,
        ("sweep",),
        ("--overwrite", "--val-fraction", "0.9999"),
    ),
    Case(
        "unrecognized-argument-escapes",
        nothing,
        r"unrecognized arguments: \\x1b\[2Jx y",
        None,
        commands=("train", "evaluate", "data"),
        flags=("\x1b[2Jx\ny",),
    ),
    Case(
        "resume-empty",
        nothing,
        r"argument --resume: an empty directory name",
        None,
        commands=("resume",),
        flags=("--resume", ""),
    ),
    Case(
        "model-weights-overflow",
        model_edit(edit_tensors=set_tensor("W", lambda t: np.full_like(t, 1e37))),
        r"the model's scores overflow float32 for \d+ of \d+ inputs",
        lambda ctx: predict_top_k(*load_model_and_data(ctx), FASHION_MNIST_LABELS),
        SoftregError,
        ("evaluate", "predict"),
    ),
    Case(
        "model-config-field-no-check-reads",
        model_edit(lambda h: h["model"]["config"].update(input_mean=123.0)),
        r"the header's model\.config\.input_mean holds what softreg does not write there",
        loads_model,
        ModelFileError,
        ("evaluate", "predict"),
    ),
    Case(
        "model-header-extra-field",
        model_edit(lambda h: h.update(notes="\x1b[2J")),
        r"the header's notes holds what softreg does not write there",
        loads_model,
        ModelFileError,
        ("predict",),
    ),
    Case(
        "model-extra-metadata-entry",
        model_with_extra_metadata,
        r"metadata entries beside softreg's header \('evil'\)",
        loads_model,
        ModelFileError,
        ("evaluate", "predict"),
    ),
    Case(
        "sigma-beyond-float32",
        nothing,
        r"sigma=1e\+300 draws initial weights beyond float32's range",
        run(sigma=1e300),
        ConfigError,
        ("train",),
        ("--sigma", "1e300"),
    ),
    Case(
        "resume-checkpoint-logged-beyond-position",
        stopped_run(checkpoint_edit(lambda h: h["position"].update(logged=[0.5, 10**6]))),
        r"the state's last running-loss report \(0\.5, after 1000000 examples\) does not "
        r"fit its position \(batch 1, at most 20 examples\)",
        resume,
        ConfigError,
        ("resume",),
    ),
    Case(
        "resume-checkpoint-correct-beyond-position",
        stopped_run(
            checkpoint_edit(
                edit_tensors=set_tensor("epoch_sums.correct", lambda t: np.full_like(t, 10**6))
            )
        ),
        r"the state's epoch sums \(loss .*, 1000000 correct\) do not fit its position",
        resume,
        ConfigError,
        ("resume",),
    ),
    Case(
        "resume-checkpoint-step-beyond-position",
        stopped_run(checkpoint_edit(lambda h: h["position"].update(step=1000))),
        r"at step 1000, but epoch 1 and batch 1 of 3 batches an epoch make 4 steps",
        resume,
        RunDirError,
        ("resume",),
    ),
    Case(
        "resume-checkpoint-data-order-float",
        stopped_run(
            checkpoint_edit(edit_tensors=set_tensor("data_order", lambda t: t.astype(np.float32)))
        ),
        r"tensor data_order is F32 \(60,\), expected I64 \(60,\)",
        resume,
        ModelFileError,
        ("resume",),
    ),
]

assert len({case.id for case in CASES}) == len(CASES), "case ids must be unique"


# ------------------------------------------------------------------------------ checking


def build(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    ctx = good_inputs(tmp_path)
    ctx = case.breaks(ctx) or ctx
    if "memory" in ctx:  # after the inputs are made: only the call sees the smaller machine
        import softreg.limits

        monkeypatch.setattr(softreg.limits, "available_memory", lambda: ctx["memory"])
    return ctx


def snapshot(root: Path) -> dict[str, str | None]:
    """Every path under ``root``: a file's SHA-256, a symlink's target, None for a directory."""
    state: dict[str, str | None] = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        if path.is_symlink():
            state[key] = "-> " + os.readlink(path)
        elif path.is_dir():
            state[key] = None
        else:
            state[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return state


def assert_nothing_written(tmp_path: Path, before: dict[str, str | None]) -> None:
    leftovers = [p for p in tmp_path.rglob("*") if p.name.endswith((".tmp", ".part"))]
    assert not leftovers, f"temporary files left behind: {leftovers}"
    after = snapshot(tmp_path)
    assert sorted(set(after) - set(before)) == [], "created by the failed call"
    assert sorted(set(before) - set(after)) == [], "removed by the failed call"
    changed = sorted(k for k in before if before[k] != after[k])
    assert changed == [], "changed by the failed call"
    assert not PROC_OUT.exists()


def cli_params():
    return [
        pytest.param(case, command, id=f"{case.id}-{command}")
        for case in CASES
        for command in case.commands
    ]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES if c.library])
def test_library_refuses(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = build(case, tmp_path, monkeypatch)
    before = snapshot(tmp_path)
    with pytest.raises(SoftregError) as info:
        case.library(ctx)
    assert isinstance(info.value, case.error), type(info.value).__mro__
    message = str(info.value)
    assert re.search(case.message, message), message
    assert "\n" not in message
    assert_nothing_written(tmp_path, before)


def cli_argv(case: Case, command: str, ctx: dict[str, Any]) -> list[str]:
    return argv(command, ctx, case.flags)


def assert_one_line(err: str, command: str, case: Case) -> None:
    assert "Traceback" not in err, err
    assert err.endswith("\n") and err.count("\n") == 1, f"not one line: {err!r}"
    printed = "train" if command == "resume" else command  # softreg train --resume
    assert err.startswith(f"softreg {printed}: error: "), err
    assert re.search(case.cli_message or case.message, err), err


@pytest.mark.parametrize(("case", "command"), cli_params())
def test_cli_refuses(
    case: Case,
    command: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ctx = build(case, tmp_path, monkeypatch)
    before = snapshot(tmp_path)
    try:
        code = main(cli_argv(case, command, ctx))
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code
    out, err = capsys.readouterr()
    assert code == 2, err
    assert out == ""
    assert_one_line(err, command, case)
    assert_nothing_written(tmp_path, before)


def python() -> str:
    venv = REPO / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES if c.real_process])
def test_real_process_refuses(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No traceback escapes a real process either (nor a warning: stderr is one line)."""
    ctx = build(case, tmp_path, monkeypatch)
    assert "memory" not in ctx, "a real process cannot see a patched memory size"
    before = snapshot(tmp_path)
    command = case.commands[0]
    env = {k: v for k, v in os.environ.items() if k != "SOFTREG_DATA"}
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg-cache-unused")
    proc = subprocess.run(
        [python(), "-m", "softreg", *cli_argv(case, command, ctx)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert_one_line(proc.stderr, command, case)
    assert_nothing_written(tmp_path, before)


# ------------------------------------------------------------------- what does work


def test_unbroken_inputs_are_accepted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The starting point of every case works, so each case fails for its one defect."""
    ctx = good_inputs(tmp_path)
    data = load(ctx)
    assert data.X_train.shape == (N_TRAIN, 784) and data.X_test.shape == (N_TEST, 784)
    assert load_model(ctx["model"]).model.num_inputs == 784
    assert read_image(ctx | {"images": [ctx["image"]]}).shape == (28, 28)
    result = fit_xy(ctx | {"X": X4, "y": Y4})
    assert math.isfinite(result.history.final.train_loss)
    for command in ("data", "train", "evaluate", "predict"):
        assert main(argv(command, ctx)) == 0, capsys.readouterr().err
    assert main(["predict", str(ctx["model"]), str(ctx["image"])]) == 0
    assert (ctx["out"] / "model.safetensors").is_file()
    assert capsys.readouterr().err == ""


def test_overwrite_replaces_an_earlier_run(
    tmp_path: Path, data_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The existing-run-dir case with --overwrite: trains (on the real data), replaces
    softreg's own files, leaves the user's, and leaves no temporary file."""
    ctx = good_inputs(tmp_path)
    earlier_run(ctx)
    code = main(
        ["train", *FAST, "--data-dir", str(data_root), "--out", str(ctx["out"]), "--overwrite"]
    )
    assert code == 0, capsys.readouterr().err
    out = ctx["out"]
    assert (out / "notes.txt").read_text() == "mine\n"
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 1
    assert json.loads((out / "config.json").read_text())["epochs"] == 1
    assert not (out / "curves.png").exists()  # the earlier run's, not drawn by this one
    assert load_model(out / "model.safetensors").metadata["dataset"] == "fashion-mnist"
    assert not [p for p in out.iterdir() if p.name.startswith(".") or p.suffix == ".tmp"]
