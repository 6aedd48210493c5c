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
from conftest import REPO, require_shared_data, shared_data_dir

import softreg
from softreg.checkpoint import load_model, save_model
from softreg.cli import main
from softreg.data import DATASETS, FASHION_MNIST_LABELS, load_dataset
from softreg.data.catalog import DataError
from softreg.errors import (
    ConfigError,
    DataValueError,
    ModelFileError,
    RunDirError,
    SoftregError,
)
from softreg.predict import read_image_file
from softreg.report import write_report
from softreg.runs import train_run

FILES = dict(DATASETS["fashion-mnist"].files)  # role -> official .gz file name
FAST = ("--epochs", "1", "--no-plots", "--quiet")
PROC_OUT = Path("/proc/softreg-test-run")  # cannot be created, even by root
N_TRAIN, N_TEST = 60, 20
SHARED_DATA = shared_data_dir()  # read before the fixture below clears $SOFTREG_DATA


@pytest.fixture(autouse=True)
def isolated(offline: None) -> None:
    """Every test here runs offline, without the user's data or cache (see conftest)."""


# ------------------------------------------------------------------------ the good inputs


def idx_bytes(array: np.ndarray, *, dims: tuple[int, ...] | None = None, code: int = 0x08,
              magic: bytes | None = None) -> bytes:
    """IDX serialization, independent of softreg's reader; ``dims`` overrides the header's
    sizes, ``magic`` its first four bytes."""
    dims = array.shape if dims is None else dims
    header = (magic or bytes([0, 0, code, len(dims)])) + struct.pack(f">{len(dims)}I", *dims)
    stored = array.dtype.newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype
    return header + array.astype(stored).tobytes()


def good_arrays(n_train: int = N_TRAIN, n_test: int = N_TEST,
                side: int = 28) -> dict[str, np.ndarray]:
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
    return save_model(path, model, model.init(np.random.default_rng(0)),
                      class_names=tuple(class_names), metadata={"dataset": "fashion-mnist"})


def good_inputs(tmp_path: Path) -> dict[str, Any]:
    """What every case starts from: all of it works (see test_unbroken_inputs_are_accepted)."""
    image = tmp_path / "image.npy"
    np.save(image, good_arrays()["test_images"][0])
    return {"data": write_dataset(tmp_path / "data", good_arrays()),
            "model": write_model(tmp_path / "model" / "model.safetensors"),
            "out": tmp_path / "out", "image": image, "tmp": tmp_path}


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


def model_header(**changes: str):
    """Rewrite entries of the model file's safetensors metadata, keeping the tensors."""
    def edit(data: bytes) -> bytes:
        n = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + n])
        header["__metadata__"].update(changes)
        text = json.dumps(header).encode()
        text += b" " * (-len(text) % 8)
        return len(text).to_bytes(8, "little") + text + data[8 + n :]
    return model_bytes(edit)


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


# ------------------------------------------------------------------ the library calls


def load(ctx: dict[str, Any]) -> Any:
    return load_dataset("fashion-mnist", data_dir=ctx["data"], download=False, progress=False)


def run(**config: Any):
    def call(ctx: dict[str, Any]) -> Any:
        return train_run(softreg.TrainConfig(epochs=1, **config), ctx["out"],
                         data_dir=ctx["data"], progress=False, plots=False)
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
    return softreg.fit(loaded.model, (data.X_train, data.y_train), (data.X_test, data.y_test),
                       softreg.TrainConfig(epochs=1))


def read_image(ctx: dict[str, Any]) -> Any:
    return read_image_file(ctx["images"][0], size=(28, 28))


def loads_model(ctx: dict[str, Any]) -> Any:
    return load_model(ctx["model"])


def report_to(ctx: dict[str, Any]) -> Any:
    return write_report({}, ctx["out"], plots=False)  # refuses --out before reading the report


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
    raise AssertionError(command)


TRAIN_EVAL_DATA = ("train", "evaluate", "data")
nan, inf = float("nan"), float("inf")
X4, Y4 = np.full((4, 784), 0.5, np.float32), np.arange(4)
A = good_arrays()

CASES = [
    # --- missing, truncated or corrupt IDX / gzip files
    Case("missing-file", delete_role("test_labels"),
         r"no complete fashion-mnist dataset .*missing in .*: t10k-labels-idx1-ubyte\.gz",
         load, DataError, TRAIN_EVAL_DATA, real_process=True),
    Case("missing-data-dir", no_data_dir, r"no-such-dir: no such directory",
         load, DataError, TRAIN_EVAL_DATA),
    Case("truncated-gzip", edit_bytes("test_images", lambda b: b[: len(b) // 2]),
         r"t10k-images-idx3-ubyte\.gz: truncated gzip stream", load, DataError,
         TRAIN_EVAL_DATA, real_process=True),
    Case("corrupt-gzip-crc", edit_bytes("test_images", lambda b: flip(b, -6)),
         r"t10k-images-idx3-ubyte\.gz: corrupt gzip data: .*incorrect data check",
         load, DataError, TRAIN_EVAL_DATA),
    Case("corrupt-gzip-stream", edit_bytes("train_labels", lambda b: b[:12] + b"\xff" * 8
                                           + b[20:]),
         r"train-labels-idx1-ubyte\.gz: (corrupt|truncated) gzip", load, DataError,
         TRAIN_EVAL_DATA),
    Case("gzip-magic-then-garbage", replace_role("test_labels", b"\x1f\x8bgarbage",
                                                 compress=False),
         r"t10k-labels-idx1-ubyte: corrupt gzip data", load, DataError, ("data",)),
    Case("truncated-raw-idx", raw_truncated,
         r"t10k-images-idx3-ubyte: truncated IDX data: header says 15680 bytes, file has 15673",
         load, DataError, TRAIN_EVAL_DATA),
    Case("empty-file", replace_role("test_labels", b""),
         r"t10k-labels-idx1-ubyte\.gz: not an IDX file: 0 bytes", load, DataError,
         TRAIN_EVAL_DATA),
    Case("truncated-header", replace_role("test_labels", b"\x00\x00\x08\x01\x00"),
         r"truncated IDX header: 1 dimensions need 8 bytes, file has 5", load, DataError,
         ("train", "data")),
    Case("real-truncated-gzip", real_data("train_images", lambda p: p.read_bytes()[:1_000_000]),
         r"train-images-idx3-ubyte\.gz: truncated gzip stream", load, DataError,
         ("train", "evaluate")),
    Case("real-corrupt-gzip", real_data("test_images", lambda p: flip(p.read_bytes(), -6)),
         r"t10k-images-idx3-ubyte\.gz: corrupt gzip data", load, DataError, ("train",)),
    # --- wrong magic number
    Case("wrong-magic-images", replace_role("train_images", idx_bytes(
            A["train_images"], magic=b"\x00\x01\x08\x03")),
         r"train-images-idx3-ubyte\.gz: not an IDX file: magic number 0x00010803", load,
         DataError, TRAIN_EVAL_DATA, real_process=True),
    Case("wrong-magic-labels", replace_role("test_labels", idx_bytes(
            A["test_labels"], magic=b"\x08\x00\x00\x01")),
         r"t10k-labels-idx1-ubyte\.gz: not an IDX file: magic number 0x08000001", load,
         DataError, TRAIN_EVAL_DATA),
    Case("unknown-type-code", replace_role("train_labels", idx_bytes(A["train_labels"],
                                                                     code=0x0A)),
         r"train-labels-idx1-ubyte\.gz: unknown IDX type code 0x0A", load, DataError,
         ("train", "data")),
    # --- header count not matching the data
    Case("header-count-above-payload", replace_role("train_images", idx_bytes(
            A["train_images"], dims=(N_TRAIN + 1, 28, 28))),
         r"train-images-idx3-ubyte\.gz: truncated IDX data: header says 47824 bytes, "
         r"file has 47040", load, DataError, TRAIN_EVAL_DATA),
    Case("header-count-below-payload", replace_role("test_labels", idx_bytes(
            A["test_labels"], dims=(N_TEST - 2,))),
         r"t10k-labels-idx1-ubyte\.gz: 2 trailing bytes after IDX data", load, DataError,
         TRAIN_EVAL_DATA),
    Case("images-labels-count", replace_arrays(train_labels=A["train_labels"][:-1]),
         rf"train: {N_TRAIN} images but {N_TRAIN - 1} labels", load, DataError,
         TRAIN_EVAL_DATA),
    Case("images-in-the-labels-file", replace_arrays(test_labels=A["test_images"]),
         r"t10k-labels-idx1-ubyte\.gz: expected 1-D integer labels, got uint8 array of shape "
         r"\(20, 28, 28\)", load, DataError, TRAIN_EVAL_DATA),
    # --- labels outside [0, n_classes)
    Case("label-10", replace_arrays(test_labels=np.where(A["test_labels"] == 3, 10,
                                                         A["test_labels"]).astype(np.uint8)),
         r"t10k-labels-idx1-ubyte\.gz: label 10 outside \[0, 10\)", load, DataError,
         (*TRAIN_EVAL_DATA, "predict")),
    Case("label-255", replace_arrays(train_labels=np.full(N_TRAIN, 255, np.uint8)),
         r"train-labels-idx1-ubyte\.gz: label 255 outside \[0, 10\)", load, DataError,
         ("train",)),
    Case("real-label-10", real_data("test_labels", real_labels_with_10),
         r"t10k-labels-idx1-ubyte\.gz: label 10 outside \[0, 10\)", load, DataError,
         ("train", "evaluate", "predict")),
    Case("fit-label-10", nothing, r"train: label 10 outside \[0, 10\)",
         fit_arrays(X4, np.array([0, 1, 10, 2])), DataValueError),
    Case("fit-label-minus-1", nothing, r"train: label -1 outside \[0, 10\)",
         fit_arrays(X4, np.array([0, -1, 1, 2])), DataValueError),
    Case("fit-float-labels", nothing, r"train: labels must be integers",
         fit_arrays(X4, np.array([0.0, 1, 1, 2])), DataValueError),
    # --- images of the wrong size
    Case("images-32x32", replace_arrays(train_images=good_arrays(side=32)["train_images"],
                                        test_images=good_arrays(side=32)["test_images"]),
         r"train-images-idx3-ubyte\.gz: expected uint8 images of shape \(n, 28, 28\), got "
         r"uint8 array of shape \(60, 32, 32\)", load, DataError, TRAIN_EVAL_DATA),
    Case("test-images-28x27", replace_arrays(test_images=A["test_images"][:, :, :27].copy()),
         r"t10k-images-idx3-ubyte\.gz: expected uint8 images of shape \(n, 28, 28\)", load,
         DataError, ("evaluate", "predict")),
    Case("npy-32x32", image_file("big.npy", np.zeros((32, 32), np.uint8)),
         r"big\.npy: image of shape \(32, 32\), expected \(28, 28\)", read_image, SoftregError,
         ("predict",), real_process=True),
    Case("npy-flat-784", image_file("flat.npy", np.zeros(784, np.uint8)),
         r"flat\.npy: image of shape \(784,\), expected \(28, 28\)", read_image,
         SoftregError, ("predict",)),
    Case("npy-values-above-1", image_file("bright.npy", np.full((28, 28), 2.0)),
         r"bright\.npy: float image values must lie in \[0, 1\]", read_image, SoftregError,
         ("predict",)),
    Case("npy-not-an-array", image_file("junk.npy", b"junk"),
         r"junk\.npy: not a readable \.npy array", read_image, SoftregError, ("predict",)),
    Case("png-not-an-image", image_file("junk.png", b"junk"),
         r"junk\.png: not a readable image", read_image, SoftregError, ("predict",)),
    Case("missing-image", image_file("none.png", None), r"none\.png: no such image file",
         read_image, SoftregError, ("predict",)),
    # --- NaN or inf features
    Case("nan-features", nan_features, r"NaN or inf", fit_xy, DataValueError, ("predict",),
         real_process=True),
    Case("inf-features", inf_features, r"NaN or inf", fit_xy, DataValueError, ("predict",)),
    Case("idx-float-images", replace_role("train_images", idx_bytes(
            np.full((N_TRAIN, 28, 28), np.nan, np.float32), code=0x0D)),
         r"train-images-idx3-ubyte\.gz: expected uint8 images of shape \(n, 28, 28\), got "
         r"float32", load, DataError, TRAIN_EVAL_DATA),
    # --- an empty dataset
    Case("empty-dataset", replace_arrays(**good_arrays(n_train=0, n_test=0)),
         r"train-images-idx3-ubyte\.gz: no images \(its header says 0\); the train set is "
         r"empty", load, DataError, TRAIN_EVAL_DATA, real_process=True),
    Case("empty-test-set", replace_arrays(**{k: v for k, v in good_arrays(n_test=0).items()
                                             if k.startswith("test")}),
         r"t10k-images-idx3-ubyte\.gz: no images .*the test set is empty", load, DataError,
         (*TRAIN_EVAL_DATA, "predict")),
    Case("fit-empty", nothing, r"train: the dataset is empty",
         fit_arrays(X4[:0], Y4[:0]), DataValueError),
    Case("fit-length-mismatch", nothing, r"train: 4 examples but 3 labels",
         fit_arrays(X4, Y4[:3]), DataValueError),
    Case("fit-features-of-another-width", nothing,
         r"train: 784 features per example, but the model takes 64",
         lambda ctx: softreg.fit(softreg.SoftmaxRegression(num_inputs=64), (X4, Y4)),
         DataValueError),
    Case("constant-images-standardised", replace_arrays(
            train_images=np.zeros((N_TRAIN, 28, 28), np.uint8)),
         r"cannot standardise inputs with mean 0\.0 and std 0\.0", run(normalize="yes"),
         ConfigError, ("train",), ("--normalize", "yes")),
    # --- batch size, learning rate, epochs and the other hyperparameters
    *(Case(f"{flag.lstrip('-')}={value}", nothing, message,
           config(**{flag.lstrip("-").replace("-", "_"): kind(value)}), ConfigError,
           ("train",), (flag, value), real_process=flag == "--lr" and value == "nan")
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
      ]),
    Case("hidden=0", nothing, r"hidden layer size must be an integer >= 1, got 0",
         config(model="mlp", hidden=(0,)), ConfigError, ("train",),
         ("--model", "mlp", "--hidden", "0"),
         cli_message=r"argument --hidden: layer sizes must be >= 1, got '0'"),
    Case("device-cuda-on-numpy", nothing, r"the numpy backend runs on the CPU only",
         run(device="cuda"), ConfigError, ("train",), ("--device", "cuda")),
    Case("checkpoint-every=-1", nothing, r"checkpoint.every must be (an integer )?>= 0",
         lambda ctx: train_run(softreg.TrainConfig(epochs=1), ctx["out"], data_dir=ctx["data"],
                               progress=False, plots=False, checkpoint_every=-1),
         ConfigError, ("train",), ("--checkpoint-every", "-1")),
    Case("show=-1", nothing, r"--show must be >= 0, got -1", None, commands=("train",),
         flags=("--show", "-1")),
    Case("top=0", nothing, r"--top must be >= 1, got 0", None, commands=("predict",),
         flags=("--top", "0")),
    Case("index-outside", nothing, r"--index 20 outside the test set \[0, 20\)", None,
         commands=("predict",), flags=("--index", "20")),
    Case("reject-below=1.5", nothing, r"--reject-below must be a probability in \[0, 1\]",
         None, commands=("evaluate",), flags=("--reject-below", "1.5")),
    # --- an unwritable output directory (we may run as root: chmod would not stop writes)
    Case("out-under-a-file", out_under_a_file,
         r"somefile/run: cannot be created, .*somefile is not a directory", run(), RunDirError,
         ("train",), real_process=True),
    Case("out-is-a-file", out_is_a_file, r"somefile: exists and is not a directory", run(),
         RunDirError, ("train",)),
    Case("out-under-proc", out_under_proc,
         r"/proc/softreg-test-run: cannot create the run directory", run(), RunDirError,
         ("train",)),
    Case("evaluate-out-under-a-file", out_under_a_file,
         r"somefile/run: cannot create the output directory \(Not a directory\)", report_to,
         SoftregError, ("evaluate",)),
    Case("evaluate-out-is-a-file", out_is_a_file, r"somefile: exists and is not a directory",
         report_to, SoftregError, ("evaluate",)),
    Case("evaluate-out-under-proc", out_under_proc,
         r"/proc/softreg-test-run: cannot create the output directory", report_to,
         SoftregError, ("evaluate",)),
    # --- an existing run directory (refused unless --overwrite: test_overwrite_...)
    Case("existing-run-dir", earlier_run,
         r"out: already holds a run; choose another --out or pass --overwrite", run(),
         RunDirError, ("train",), real_process=True),
    # --- a model file of another shape
    Case("model-64-inputs", other_model(64, FASHION_MNIST_LABELS),
         r"784 features per example, but the model takes 64", fit_loaded_model,
         DataValueError, ("evaluate", "predict"),
         cli_message=r"the model takes 64 features, fashion-mnist has 784",
         real_process=True),
    Case("model-64-inputs-npy-28x28", other_model(64, FASHION_MNIST_LABELS, image=True),
         r"image\.npy: image of shape \(28, 28\), expected \(8, 8\)",
         lambda ctx: read_image_file(ctx["image"], size=(8, 8)), SoftregError, ("predict",)),
    Case("model-3-classes", other_model(784, ("a", "b", "c")),
         r"label [3-9] outside \[0, 3\)", fit_loaded_model, DataValueError,
         ("evaluate", "predict"), cli_message=r"the model has 3 classes, fashion-mnist has 10"),
    Case("model-header-shape", model_header(model_config=json.dumps(
            {"num_inputs": 785, "num_outputs": 10, "sigma": 0.01})),
         r"parameter shapes .*'W': \(784, 10\).* do not match the model's .*\(785, 10\)",
         loads_model, ModelFileError, ("evaluate", "predict")),
    # --- a truncated or tampered model file
    Case("model-missing", lambda ctx: ctx["model"].unlink(), r"no such model file",
         loads_model, ModelFileError, ("evaluate", "predict")),
    Case("model-is-a-directory", model_is_a_directory, r"model\.safetensors: no such model",
         loads_model, ModelFileError, ("predict",)),
    Case("model-truncated", model_bytes(lambda b: b[: len(b) // 2]),
         r"model\.safetensors: not a readable safetensors model file", loads_model,
         ModelFileError, ("evaluate", "predict"), real_process=True),
    Case("model-truncated-to-5-bytes", model_bytes(lambda b: b[:5]),
         r"not a readable safetensors model file", loads_model, ModelFileError, ("evaluate",)),
    Case("model-empty", model_bytes(lambda b: b""), r"not a readable safetensors model file",
         loads_model, ModelFileError, ("predict",)),
    Case("model-tampered-weights", model_bytes(lambda b: flip(b, -100)),
         r"model\.safetensors: tensor data does not match its checksum", loads_model,
         ModelFileError, ("evaluate", "predict"), real_process=True),
    Case("model-tampered-header-json", model_header(class_names="[not json"),
         r"damaged model header", loads_model, ModelFileError, ("evaluate", "predict")),
    Case("model-class-names-count", model_header(class_names=json.dumps(["a", "b"])),
         r"2 class names for 10 outputs", loads_model, ModelFileError, ("predict",)),
    Case("model-format-tag", model_header(softreg_format="99"),
         r"not a softreg model file", loads_model, ModelFileError, ("evaluate",)),
    Case("model-foreign-safetensors", foreign_model, r"not a softreg model file", loads_model,
         ModelFileError, ("evaluate", "predict")),
]

assert len({case.id for case in CASES}) == len(CASES), "case ids must be unique"


# ------------------------------------------------------------------------------ checking


def build(case: Case, tmp_path: Path) -> dict[str, Any]:
    ctx = good_inputs(tmp_path)
    return case.breaks(ctx) or ctx


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
    return [pytest.param(case, command, id=f"{case.id}-{command}")
            for case in CASES for command in case.commands]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES if c.library])
def test_library_refuses(case: Case, tmp_path: Path) -> None:
    ctx = build(case, tmp_path)
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
    assert err.startswith(f"softreg {command}: error: "), err
    assert re.search(case.cli_message or case.message, err), err


@pytest.mark.parametrize(("case", "command"), cli_params())
def test_cli_refuses(case: Case, command: str, tmp_path: Path,
                     capsys: pytest.CaptureFixture[str]) -> None:
    ctx = build(case, tmp_path)
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
def test_real_process_refuses(case: Case, tmp_path: Path) -> None:
    """No traceback escapes a real process either (nor a warning: stderr is one line)."""
    ctx = build(case, tmp_path)
    before = snapshot(tmp_path)
    command = case.commands[0]
    env = {k: v for k, v in os.environ.items() if k != "SOFTREG_DATA"}
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg-cache-unused")
    proc = subprocess.run([python(), "-m", "softreg", *cli_argv(case, command, ctx)],
                          capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
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


def test_overwrite_replaces_an_earlier_run(tmp_path: Path, data_root: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """The existing-run-dir case with --overwrite: trains (on the real data), replaces
    softreg's own files, leaves the user's, and leaves no temporary file."""
    ctx = good_inputs(tmp_path)
    earlier_run(ctx)
    code = main(["train", *FAST, "--data-dir", str(data_root), "--out", str(ctx["out"]),
                 "--overwrite"])
    assert code == 0, capsys.readouterr().err
    out = ctx["out"]
    assert (out / "notes.txt").read_text() == "mine\n"
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 1
    assert json.loads((out / "config.json").read_text())["epochs"] == 1
    assert not (out / "curves.png").exists()  # the earlier run's, not drawn by this one
    assert load_model(out / "model.safetensors").metadata["dataset"] == "fashion-mnist"
    assert not [p for p in out.iterdir() if p.name.startswith(".") or p.suffix == ".tmp"]
