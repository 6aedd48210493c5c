"""Tests for finding, loading, validating and downloading datasets (softreg.data)."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

import softreg.data.download as download_module
from softreg.data import (
    DATASETS,
    FASHION_MNIST_LABELS,
    MNIST_LABELS,
    DataError,
    Dataset,
    IDXError,
    default_cache_dir,
    download_dataset,
    find_dataset_dir,
    load_dataset,
    text_labels,
)

FILES = dict(DATASETS["fashion-mnist"].files)  # role -> official .gz name


# From shared/data/README.md: SHA-256 of the decompressed official Fashion-MNIST files.
FASHION_SHA256 = {
    "train_images": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train_labels": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "test_images": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "test_labels": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
# Same README: MD5 of the decompressed official MNIST image files.
MNIST_IMAGES_MD5 = {
    "train_images": "6bbc9ace898e44ae57da46a324031adb",
    "test_images": "2646ac647ad5339dbf082846283269ea",
}

# Per-class counts (train, test): Fashion-MNIST is balanced, MNIST is not.
CLASS_COUNTS = {
    "fashion-mnist": ([6000] * 10, [1000] * 10),
    "mnist": (
        [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
        [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
    ),
}


# ---------------------------------------------------------------------------- helpers


def idx_bytes(array: np.ndarray) -> bytes:
    """uint8 IDX serialization, written independently of the reader."""
    assert array.dtype == np.uint8
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def make_dataset(
    directory: Path,
    *,
    n_train: int = 6,
    n_test: int = 4,
    compress: bool = True,
    image_shape: tuple[int, int] = (28, 28),
    train_labels: np.ndarray | None = None,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Write a tiny MNIST-style dataset into ``directory``; return role -> array."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, *image_shape), dtype=np.uint8),
        "train_labels": (
            rng.integers(0, 10, n_train, dtype=np.uint8) if train_labels is None else train_labels
        ),
        "test_images": rng.integers(0, 256, (n_test, *image_shape), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    arrays["train_images"][0, 0, 0] = 255  # so max pixel is exactly 1.0 after scaling
    directory.mkdir(parents=True, exist_ok=True)
    for role, array in arrays.items():
        data = idx_bytes(array)
        if compress:
            (directory / FILES[role]).write_bytes(gzip.compress(data, mtime=0))
        else:
            (directory / FILES[role].removesuffix(".gz")).write_bytes(data)
    return arrays


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def uri(directory: Path) -> str:
    return directory.as_uri() + "/"


@pytest.fixture(autouse=True)
def isolated(offline: None) -> None:
    """Every test here runs offline, without the user's data or cache (see conftest)."""


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "xdg-cache" / "softreg" / "fashion-mnist"


@pytest.fixture
def system_dir(tmp_path: Path) -> Path:
    return tmp_path / "system" / "fashion-mnist"


@pytest.fixture(scope="module", params=["fashion-mnist", "mnist"])
def shared(request: pytest.FixtureRequest, data_root: Path) -> Dataset:
    # data_root (conftest, session scope) is resolved before the autouse fixture below
    # clears SOFTREG_DATA.
    directory = data_root / request.param
    return load_dataset(request.param, data_dir=directory, download=False, progress=False)


# ---------------------------------------------------------------------- shared data


def test_shared_dataset_shapes_and_classes(shared: Dataset) -> None:
    assert shared.train_images.shape == (60000, 28, 28)
    assert shared.test_images.shape == (10000, 28, 28)
    assert shared.train_images.dtype == np.uint8
    assert shared.test_images.dtype == np.uint8
    assert shared.train_labels.dtype == np.int64
    assert shared.test_labels.dtype == np.int64
    train_counts, test_counts = CLASS_COUNTS[shared.name]
    np.testing.assert_array_equal(np.bincount(shared.train_labels, minlength=10), train_counts)
    np.testing.assert_array_equal(np.bincount(shared.test_labels, minlength=10), test_counts)
    assert shared.num_classes == 10
    assert shared.source.name == shared.name


def test_shared_dataset_features(shared: Dataset) -> None:
    for X, images in ((shared.X_train, shared.train_images), (shared.X_test, shared.test_images)):
        assert X.dtype == np.float32
        assert X.shape == (len(images), 784)
        assert X.flags.c_contiguous
        assert X.min() == 0.0
        assert X.max() == 1.0
    # Bit-identical to torchvision's ToTensor: float32 division by 255.
    expected = shared.train_images[:100].reshape(100, -1).astype(np.float32) / np.float32(255)
    np.testing.assert_array_equal(shared.X_train[:100], expected)
    assert shared.y_train is shared.train_labels
    assert shared.y_test is shared.test_labels


def test_shared_fashion_mnist_matches_official_checksums(data_root: Path) -> None:
    directory = data_root / "fashion-mnist"
    data = load_dataset("fashion-mnist", data_dir=directory, download=False, progress=False)
    assert data.class_names == FASHION_MNIST_LABELS
    # Re-serialize what was loaded: equal hashes mean every byte was read back exactly.
    for role, digest in FASHION_SHA256.items():
        array = getattr(data, role).astype(np.uint8)
        assert hashlib.sha256(idx_bytes(array)).hexdigest() == digest, role


def test_shared_mnist_matches_official_checksums(data_root: Path) -> None:
    directory = data_root / "mnist"
    data = load_dataset("mnist", data_dir=directory.parent, download=False, progress=False)
    assert data.class_names == MNIST_LABELS
    assert data.source == directory
    for role, digest in MNIST_IMAGES_MD5.items():
        assert hashlib.md5(idx_bytes(getattr(data, role))).hexdigest() == digest, role


def test_shared_data_found_through_env(monkeypatch: pytest.MonkeyPatch, data_root: Path) -> None:
    directory = data_root / "fashion-mnist"
    monkeypatch.setenv("SOFTREG_DATA", str(directory.parent))
    assert find_dataset_dir("fashion-mnist") == directory


# -------------------------------------------------------------------------- Dataset


def tiny(**overrides: object) -> Dataset:
    rng = np.random.default_rng(1)
    fields: dict[str, object] = {
        "name": "tiny",
        "class_names": ("a", "b", "c"),
        "train_images": rng.integers(0, 256, (5, 4, 3), dtype=np.uint8),
        "train_labels": np.array([0, 1, 2, 1, 0], dtype=np.uint8),
        "test_images": rng.integers(0, 256, (2, 4, 3), dtype=np.uint8),
        "test_labels": np.array([2, 2], dtype=np.int64),
        "source": "/nowhere",
    }
    fields.update(overrides)
    return Dataset(**fields)  # type: ignore[arg-type]


def test_dataset_normalizes_labels_and_source() -> None:
    data = tiny()
    assert data.train_labels.dtype == np.int64
    np.testing.assert_array_equal(data.train_labels, [0, 1, 2, 1, 0])
    assert data.source == Path("/nowhere")
    assert data.num_classes == 3


def test_dataset_features_are_cached_and_exact() -> None:
    data = tiny()
    X = data.X_train
    assert X is data.X_train  # computed once
    assert X.shape == (5, 12)
    assert X.dtype == np.float32
    assert X.flags.c_contiguous
    assert not X.flags.writeable
    np.testing.assert_array_equal(
        X, data.train_images.reshape(5, 12).astype(np.float32) / np.float32(255)
    )
    assert data.X_test.shape == (2, 12)
    assert data.train_images.dtype == np.uint8  # stored form untouched


def test_dataset_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        tiny().name = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"train_labels": np.array([0, 1, 3, 1, 0])}, "train_labels: label 3 outside [0, 3)"),
        ({"test_labels": np.array([-1, 0])}, "test_labels: label -1 outside [0, 3)"),
        ({"train_labels": np.array([0, 1, 2, 1])}, "train: 5 images but 4 labels"),
        ({"train_labels": np.array([[0, 1, 2, 1, 0]])}, "expected 1-D integer labels"),
        ({"train_labels": np.array([0.0, 1, 2, 1, 0])}, "expected 1-D integer labels"),
        ({"train_images": np.zeros((5, 12), dtype=np.uint8)}, "expected uint8 images"),
        ({"test_images": np.zeros((2, 4, 3), dtype=np.float32)}, "expected uint8 images"),
        ({"test_images": np.zeros((2, 3, 4), dtype=np.uint8)}, "train images are (4, 3)"),
    ],
)
def test_dataset_rejects_inconsistent_arrays(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(DataError) as info:
        tiny(**overrides)
    assert message in str(info.value)


# ---------------------------------------------------------------------- text labels


def test_text_labels() -> None:
    assert text_labels([0, 9]) == ["t-shirt", "ankle boot"]
    assert text_labels(np.array([2, 2, 7], dtype=np.int64)) == ["pullover", "pullover", "sneaker"]
    assert text_labels((3, 0), "mnist") == ["3", "0"]
    assert text_labels([1], tiny()) == ["b"]
    assert text_labels([]) == []
    assert text_labels(range(10)) == list(FASHION_MNIST_LABELS)


@pytest.mark.parametrize("bad", [[10], [-1], [0.5], [[0, 1]]])
def test_text_labels_rejects_bad_indices(bad: list[object]) -> None:
    with pytest.raises(ValueError, match="text_labels"):
        text_labels(bad)


def test_text_labels_unknown_dataset() -> None:
    with pytest.raises(DataError, match="fashion-mnist, mnist"):
        text_labels([0], "cifar-10")


# -------------------------------------------------------------------------- finding


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert default_cache_dir() == tmp_path / "xdg-cache" / "softreg"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for value in (None, "", "relative/cache"):  # unset, empty, relative: all ignored
        if value is None:
            monkeypatch.delenv("XDG_CACHE_HOME")
        else:
            monkeypatch.setenv("XDG_CACHE_HOME", value)
        assert default_cache_dir() == tmp_path / "home" / ".cache" / "softreg"


def test_search_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache_dir: Path, system_dir: Path
) -> None:
    assert find_dataset_dir("fashion-mnist") is None

    def loaded_from(**kwargs: object) -> int:
        data = load_dataset("fashion-mnist", download=False, progress=False, **kwargs)
        return len(data.train_images)

    make_dataset(system_dir, n_train=1)
    assert find_dataset_dir("fashion-mnist") == system_dir
    assert loaded_from() == 1

    make_dataset(cache_dir, n_train=2)
    assert find_dataset_dir("fashion-mnist") == cache_dir
    assert loaded_from() == 2

    env_dir = tmp_path / "env"
    make_dataset(env_dir / "fashion-mnist", n_train=3)
    monkeypatch.setenv("SOFTREG_DATA", str(env_dir))
    assert find_dataset_dir("fashion-mnist") == env_dir / "fashion-mnist"
    assert loaded_from() == 3

    explicit = tmp_path / "explicit"
    make_dataset(explicit, n_train=4)  # the files directly in data_dir
    assert find_dataset_dir("fashion-mnist", explicit) == explicit
    assert loaded_from(data_dir=explicit) == 4
    assert loaded_from(data_dir=str(explicit)) == 4


def test_name_subdirectory_preferred_over_data_dir_itself(tmp_path: Path) -> None:
    make_dataset(tmp_path / "d", n_train=1)
    make_dataset(tmp_path / "d" / "fashion-mnist", n_train=2)
    assert find_dataset_dir("fashion-mnist", tmp_path / "d") == tmp_path / "d" / "fashion-mnist"


def test_uncompressed_files_are_accepted(tmp_path: Path) -> None:
    arrays = make_dataset(tmp_path / "raw", compress=False)
    assert find_dataset_dir("fashion-mnist", tmp_path / "raw") == tmp_path / "raw"
    data = load_dataset("fashion-mnist", data_dir=tmp_path / "raw", download=False)
    for role, array in arrays.items():
        np.testing.assert_array_equal(getattr(data, role), array)


def test_incomplete_default_location_is_skipped(cache_dir: Path, system_dir: Path) -> None:
    make_dataset(cache_dir)
    (cache_dir / FILES["test_labels"]).unlink()
    make_dataset(system_dir)
    assert find_dataset_dir("fashion-mnist") == system_dir


def test_explicit_dir_without_data_does_not_fall_through(tmp_path: Path, cache_dir: Path) -> None:
    make_dataset(cache_dir)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no complete fashion-mnist dataset"):
        find_dataset_dir("fashion-mnist", tmp_path / "empty")
    with pytest.raises(DataError, match="no such directory"):
        load_dataset("fashion-mnist", data_dir=tmp_path / "missing")


def test_explicit_dir_names_missing_files(tmp_path: Path) -> None:
    make_dataset(tmp_path / "d")
    (tmp_path / "d" / FILES["train_labels"]).unlink()
    with pytest.raises(DataError, match="missing in .*train-labels-idx1-ubyte.gz"):
        find_dataset_dir("fashion-mnist", tmp_path / "d")


def test_env_without_data_does_not_fall_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, system_dir: Path
) -> None:
    make_dataset(system_dir)
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("SOFTREG_DATA", str(tmp_path / "empty"))
    with pytest.raises(DataError, match="SOFTREG_DATA="):
        find_dataset_dir("fashion-mnist")
    # An explicit data_dir still wins over a broken SOFTREG_DATA.
    make_dataset(tmp_path / "explicit")
    assert find_dataset_dir("fashion-mnist", tmp_path / "explicit") == tmp_path / "explicit"


def test_unknown_dataset_name() -> None:
    with pytest.raises(DataError, match="unknown dataset 'cifar'.*fashion-mnist, mnist"):
        find_dataset_dir("cifar")
    with pytest.raises(DataError, match="unknown dataset"):
        load_dataset("cifar")


def test_not_found_without_download_lists_places(cache_dir: Path, system_dir: Path) -> None:
    with pytest.raises(DataError) as info:
        load_dataset("fashion-mnist", download=False)
    message = str(info.value)
    assert "\n" not in message
    assert str(cache_dir) in message
    assert str(system_dir) in message
    assert "SOFTREG_DATA" in message
    assert "download" in message


# ------------------------------------------------------------------------ validation


def load_from(directory: Path) -> Dataset:
    return load_dataset("fashion-mnist", data_dir=directory, download=False, progress=False)


def test_load_rejects_label_out_of_range(tmp_path: Path) -> None:
    make_dataset(tmp_path, train_labels=np.array([0, 1, 12, 3, 4, 5], dtype=np.uint8))
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte.gz: label 12 outside \[0, 10\)"):
        load_from(tmp_path)


def test_load_rejects_count_mismatch(tmp_path: Path) -> None:
    make_dataset(tmp_path, n_train=6, train_labels=np.arange(5, dtype=np.uint8))
    with pytest.raises(DataError, match="train: 6 images but 5 labels"):
        load_from(tmp_path)


def test_load_rejects_wrong_image_size(tmp_path: Path) -> None:
    make_dataset(tmp_path, image_shape=(28, 27))
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz: expected .*\(n, 28, 28\)"):
        load_from(tmp_path)


def test_load_wraps_corrupt_file(tmp_path: Path) -> None:
    make_dataset(tmp_path)
    path = tmp_path / FILES["test_images"]
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz: ") as info:
        load_from(tmp_path)
    assert isinstance(info.value.__cause__, IDXError)


def test_load_round_trips_arrays(tmp_path: Path) -> None:
    arrays = make_dataset(tmp_path, n_train=7, n_test=3)
    data = load_from(tmp_path)
    assert data.name == "fashion-mnist"
    assert data.source == tmp_path
    for role, array in arrays.items():
        np.testing.assert_array_equal(getattr(data, role), array)
    assert data.X_train.max() == 1.0


# -------------------------------------------------------------------------- download


@pytest.fixture
def mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A file:// mirror with a tiny dataset; the spec's MD5s are patched to match it."""
    directory = tmp_path / "mirror"
    make_dataset(directory, seed=7)
    spec = DATASETS["fashion-mnist"]
    md5 = {role: md5_of(directory / name) for role, name in spec.files.items()}
    patched = dataclasses.replace(spec, md5=md5, mirrors=(uri(directory),))
    monkeypatch.setitem(DATASETS, "fashion-mnist", patched)
    return directory


def assert_clean_download(dest: Path, mirror: Path) -> None:
    for name in FILES.values():
        assert md5_of(dest / name) == md5_of(mirror / name)
    assert list(dest.glob("*.part")) == []


def test_download_falls_back_to_second_mirror(tmp_path: Path, mirror: Path) -> None:
    dest = tmp_path / "dest"
    got = download_dataset(
        "fashion-mnist", dest, mirrors=[uri(tmp_path / "absent"), uri(mirror)], progress=False
    )
    assert got == dest
    assert_clean_download(dest, mirror)
    assert sorted(p.name for p in dest.iterdir()) == sorted(FILES.values())


def test_download_base_url_without_trailing_slash(tmp_path: Path, mirror: Path) -> None:
    download_dataset("fashion-mnist", tmp_path / "d", mirrors=[mirror.as_uri()], progress=False)
    assert_clean_download(tmp_path / "d", mirror)


def test_download_checksum_mismatch_everywhere(tmp_path: Path) -> None:
    # The real spec's official MD5s cannot match the tiny fake files.
    good = tmp_path / "m1"
    make_dataset(good)
    make_dataset(tmp_path / "m2", seed=3)
    dest = tmp_path / "dest"
    with pytest.raises(DataError) as info:
        download_dataset(
            "fashion-mnist", dest, mirrors=[uri(good), uri(tmp_path / "m2")], progress=False
        )
    message = str(info.value)
    assert "\n" not in message
    assert "train-images-idx3-ubyte.gz" in message
    assert uri(good) in message and uri(tmp_path / "m2") in message
    assert "MD5 mismatch" in message
    assert "SOFTREG_DATA" in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert not dest.exists()  # no final file, no .part, and no empty directory


def test_download_all_mirrors_missing(tmp_path: Path, mirror: Path) -> None:
    with pytest.raises(DataError, match="could not download train-images-idx3-ubyte.gz"):
        download_dataset("fashion-mnist", tmp_path / "d", mirrors=[uri(tmp_path / "x")])
    assert not (tmp_path / "d").exists()


def test_present_files_are_not_downloaded_again(tmp_path: Path, mirror: Path) -> None:
    dest = tmp_path / "dest"
    make_dataset(dest, seed=7)  # identical bytes to the mirror, hence matching MD5s
    for path in dest.iterdir():
        os.utime(path, (1_000_000, 1_000_000))
    download_dataset("fashion-mnist", dest, mirrors=["file:///nonexistent/"], progress=False)
    assert all(path.stat().st_mtime == 1_000_000 for path in dest.iterdir())


def test_present_file_with_wrong_checksum_is_replaced(tmp_path: Path, mirror: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / FILES["train_labels"]).write_bytes(b"not the right bytes")
    download_dataset("fashion-mnist", dest, progress=False)
    assert_clean_download(dest, mirror)


class BrokenResponse:
    """Serves the first bytes of a file, then fails as a dropped connection would."""

    def __init__(self, data: bytes, *, content_length: int | None = None) -> None:
        self.data = data[:100]
        self.headers = {} if content_length is None else {"Content-Length": str(content_length)}
        self.fail = content_length is None

    def read(self, n: int) -> bytes:
        chunk, self.data = self.data, b""
        if not chunk and self.fail:
            raise ConnectionResetError("connection reset by peer")
        return chunk

    def __enter__(self) -> BrokenResponse:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


@pytest.mark.parametrize("content_length", [None, 10_000], ids=["reset", "short-read"])
def test_interrupted_download_keeps_only_a_part_file(
    tmp_path: Path, mirror: Path, monkeypatch: pytest.MonkeyPatch, content_length: int | None
) -> None:
    real_urlopen = download_module.urlopen
    part_seen = []

    def flaky_urlopen(request, timeout):  # type: ignore[no-untyped-def]
        if "/broken/" in request.full_url:
            name = request.full_url.rsplit("/", 1)[1]
            return BrokenResponse((mirror / name).read_bytes(), content_length=content_length)
        part_seen.extend(p.name for p in (tmp_path / "dest").glob("*.part"))
        return real_urlopen(request, timeout=timeout)

    monkeypatch.setattr(download_module, "urlopen", flaky_urlopen)
    dest = tmp_path / "dest"
    download_dataset("fashion-mnist", dest, mirrors=[uri(tmp_path / "broken"), uri(mirror)])
    # Each failed attempt kept its bytes for the next mirror (which, being file://, sent
    # the whole file instead); none of them ever appeared under the final name.
    assert part_seen == [name + ".part" for name in FILES.values()]
    assert_clean_download(dest, mirror)

    with pytest.raises(DataError, match="connection reset|short read"):
        download_dataset("fashion-mnist", tmp_path / "d2", mirrors=[uri(tmp_path / "broken")])
    part = tmp_path / "d2" / (FILES["train_images"] + ".part")
    assert list((tmp_path / "d2").iterdir()) == [part]  # waiting to be resumed
    assert part.read_bytes() == (mirror / FILES["train_images"]).read_bytes()[:100]


def test_download_progress_with_tqdm(
    tmp_path: Path, mirror: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("tqdm")
    download_dataset("fashion-mnist", tmp_path / "d", progress=True)
    assert "train-images-idx3-ubyte.gz" in capsys.readouterr().err


def test_download_progress_without_tqdm(
    tmp_path: Path,
    mirror: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setitem(sys.modules, "tqdm", None)  # makes `import tqdm` raise ImportError
    download_dataset("fashion-mnist", tmp_path / "d", progress=True)
    err = capsys.readouterr().err
    assert "train-images-idx3-ubyte.gz: 100%" in err
    assert_clean_download(tmp_path / "d", mirror)


def test_download_quiet(tmp_path: Path, mirror: Path, capsys: pytest.CaptureFixture[str]) -> None:
    download_dataset("fashion-mnist", tmp_path / "d", progress=False)
    assert capsys.readouterr().err == ""


def test_load_downloads_into_cache_when_missing(
    mirror: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = load_dataset("fashion-mnist", progress=False)
    assert data.source == cache_dir
    assert_clean_download(cache_dir, mirror)
    # A second load finds the cached copy; an unreachable mirror proves it does not fetch.
    unreachable = dataclasses.replace(DATASETS["fashion-mnist"], mirrors=("file:///nonexistent/",))
    monkeypatch.setitem(DATASETS, "fashion-mnist", unreachable)
    assert load_dataset("fashion-mnist", progress=False).source == cache_dir


def test_load_does_not_download_into_explicit_dir(tmp_path: Path, mirror: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no complete"):
        load_dataset("fashion-mnist", data_dir=tmp_path / "empty", download=True)
    assert list((tmp_path / "empty").iterdir()) == []
