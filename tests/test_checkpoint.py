"""Model files: round trip, and refusal of damaged or foreign files."""

import numpy as np
import pytest
from _helpers import edit_softreg_file
from safetensors.numpy import save_file

from softreg.checkpoint import load_model, save_model
from softreg.errors import ModelFileError
from softreg.models import SoftmaxRegression

NAMES = ("a", "b", "c")


@pytest.fixture
def saved(tmp_path):
    model = SoftmaxRegression(num_inputs=4, num_outputs=3)
    params = model.init(np.random.default_rng(0))
    path = save_model(
        tmp_path / "model.safetensors",
        model,
        params,
        class_names=NAMES,
        metadata={"dataset": "toy", "seed": 0},
    )
    return path, model, params


def test_round_trip(saved):
    path, model, params = saved
    loaded = load_model(path)
    assert loaded.model == model
    assert loaded.class_names == NAMES
    assert loaded.metadata["dataset"] == "toy"
    for k in params:
        np.testing.assert_array_equal(loaded.params[k], params[k])
    assert [p.name for p in path.parent.iterdir()] == ["model.safetensors"]  # no temp files


def test_the_file_is_plain_safetensors_without_pickle(saved):
    path, _, params = saved
    from safetensors.numpy import load_file

    np.testing.assert_array_equal(load_file(str(path))["W"], params["W"])
    assert b"pickle" not in path.read_bytes() and path.read_bytes()[8:9] == b"{"


def test_truncated_file_is_refused(saved):
    path = saved[0]
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ModelFileError, match="not a readable safetensors"):
        load_model(path)


def test_tampered_weights_are_refused(saved):
    path = saved[0]
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF  # flip bits inside the tensor data
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="checksum"):
        load_model(path)


def test_garbage_and_missing_files_are_refused(tmp_path):
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 100)
    with pytest.raises(ModelFileError, match="garbage.safetensors"):
        load_model(garbage)
    with pytest.raises(ModelFileError, match="no such model file"):
        load_model(tmp_path / "missing.safetensors")


def test_foreign_safetensors_file_is_refused(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file({"W": np.zeros((2, 2), np.float32)}, str(path))
    with pytest.raises(ModelFileError, match="not a softreg model"):
        load_model(path)


def test_shape_that_does_not_match_the_model_is_refused(saved):
    path = saved[0]
    edit_softreg_file(path, lambda h: h["model"]["config"].update(num_inputs=5))
    with pytest.raises(ModelFileError, match=r"tensor W is F32 \(4, 3\), expected F32 \(5, 3\)"):
        load_model(path)


def test_header_edited_without_a_new_checksum_is_refused(saved):
    path = saved[0]
    edit_softreg_file(path, lambda h: h["class_names"].reverse(), checksum=False)
    with pytest.raises(ModelFileError, match="do not match the file's checksum"):
        load_model(path)


def test_the_same_model_gives_the_same_bytes(saved, tmp_path):
    path, model, params = saved
    again = save_model(
        tmp_path / "again.safetensors",
        model,
        params,
        class_names=NAMES,
        metadata={"seed": 0, "dataset": "toy"},
    )  # another key order
    assert again.read_bytes() == path.read_bytes()


def test_a_run_repeated_in_another_process_writes_the_same_bytes(tmp_path):
    """Same seed, same bytes: nothing in a model file depends on the process that wrote it
    (say, the order of a hash table's keys, which Python and Rust seed per process)."""
    import os
    import subprocess
    import sys

    outs = []
    for hash_seed in ("1", "2"):
        out = tmp_path / f"run-{hash_seed}"
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        subprocess.run(
            [
                sys.executable,
                "-m",
                "softreg",
                "train",
                "--dataset",
                "synthetic",
                "--epochs",
                "3",
                "--no-plots",
                "--quiet",
                "--out",
                str(out),
            ],
            check=True,
            env=env,
            timeout=120,
            capture_output=True,
        )
        outs.append(out)
    for name in ("model.safetensors", "config.json"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name
