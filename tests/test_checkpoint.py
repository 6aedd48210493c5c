"""Model files: round trip, and refusal of damaged or foreign files."""

import json

import numpy as np
import pytest
from safetensors.numpy import save_file

from softreg.checkpoint import load_model, save_model
from softreg.errors import ModelFileError
from softreg.models import SoftmaxRegression

NAMES = ("a", "b", "c")


@pytest.fixture
def saved(tmp_path):
    model = SoftmaxRegression(num_inputs=4, num_outputs=3)
    params = model.init(np.random.default_rng(0))
    path = save_model(tmp_path / "model.safetensors", model, params, class_names=NAMES,
                      metadata={"dataset": "toy", "seed": 0})
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


def test_shape_that_does_not_match_the_model_is_refused(saved, tmp_path):
    path, model, params = saved
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        header = dict(f.metadata())
    header["model_config"] = json.dumps({"num_inputs": 5, "num_outputs": 3, "sigma": 0.01})
    other = tmp_path / "reshaped.safetensors"
    save_file({k: np.asarray(v) for k, v in params.items()}, str(other), metadata=header)
    with pytest.raises(ModelFileError, match="shapes"):
        load_model(other)
