"""Tests for softreg.fileio: atomic replacement of files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from softreg.fileio import atomic_write, atomic_write_bytes


def test_atomic_write_bytes_creates_and_replaces(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    atomic_write_bytes(path, b"first")
    assert path.read_bytes() == b"first"
    atomic_write_bytes(path, b"second, longer")
    assert path.read_bytes() == b"second, longer"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.bin"]  # no temp files left


def test_text_mode(tmp_path: Path) -> None:
    with atomic_write(tmp_path / "notes.txt", "w") as f:
        f.write("naïve\n")
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "naïve\n"


def test_exception_leaves_original_and_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(b"original")
    with pytest.raises(RuntimeError, match="boom"), atomic_write(path) as f:
        f.write(b"half-writ")
        assert path.read_bytes() == b"original"  # not visible before success
        raise RuntimeError("boom")
    assert path.read_bytes() == b"original"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_temp_file_lives_next_to_the_target(tmp_path: Path) -> None:
    with atomic_write(tmp_path / "a.bin") as f:
        tmp = Path(f.name)
        assert tmp.parent == tmp_path
        assert tmp.name.startswith(".a.bin.") and tmp.name.endswith(".tmp")
    assert not tmp.exists()


def test_new_file_gets_umask_permissions(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        atomic_write_bytes(tmp_path / "new", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o640


def test_replaced_file_keeps_its_permissions(tmp_path: Path) -> None:
    path = tmp_path / "script"
    path.write_bytes(b"old")
    path.chmod(0o751)
    atomic_write_bytes(path, b"new")
    assert stat.S_IMODE(path.stat().st_mode) == 0o751


def test_rejects_other_modes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mode"), atomic_write(tmp_path / "x", "ab"):
        pass


def test_write_json_writes_non_finite_numbers_as_null(tmp_path):
    """JSON has no NaN or infinity: a diverged run's numbers must not make a file that
    strict readers (softreg's own included) refuse."""
    import json

    from softreg.fileio import parse_json, write_json

    path = tmp_path / "m.json"
    write_json(path, {"loss": float("inf"), "acc": [0.5, float("nan")], "n": 3})
    assert parse_json(path.read_bytes(), "m.json") == {"loss": None, "acc": [0.5, None], "n": 3}
    assert json.loads(path.read_text()) == {"loss": None, "acc": [0.5, None], "n": 3}
