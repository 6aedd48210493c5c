"""scripts/quickstart.sh, run against stand-ins: it sets up once, and says where the data came from.

The script runs in a copy of its directory layout whose ``python3 -m venv`` makes a fake
``.venv`` (a ``python`` that logs pip and a ``softreg`` that logs its commands and writes a run
directory), and whose ``apt-get`` is a stand-in too: nothing is installed or downloaded, and
the test takes a second or two.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from _helpers import REPO

# `python3`: `-m venv DIR` makes the fake venv; anything else goes to the real Python.
FAKE_PYTHON3 = """#!/usr/bin/env bash
if [ "$1" = -m ] && [ "$2" = venv ]; then
    echo venv >>"$QS_LOG"
    mkdir -p "$3/bin"
    cp "$QS_FAKES/python" "$QS_FAKES/softreg" "$3/bin/"
    exit 0
fi
exec "$QS_REAL_PYTHON" "$@"
"""

# The venv's `python`: pip is logged; `import softreg` works; the rest is real Python.
FAKE_VENV_PYTHON = """#!/usr/bin/env bash
if [ "$1" = -m ] && [ "$2" = pip ]; then echo "pip $*" >>"$QS_LOG"; exit 0; fi
if [ "$1" = -c ] && [ "$2" = "import softreg" ]; then exit 0; fi
if [ "$1" = -c ]; then echo dataset-fashion-mnist; exit 0; fi  # the Debian package's name
exec "$QS_REAL_PYTHON" "$@"
"""

# `softreg`: `data --no-download` finds the data when $QS_DATA/found exists; `data` (a
# download) fails loudly; `train --out DIR` writes a run directory.
FAKE_SOFTREG = """#!/usr/bin/env bash
echo "softreg $*" >>"$QS_LOG"
if [ "$1" = data ]; then
    case " $* " in
    *" --no-download "*)
        [ -e "$QS_DATA/found" ] || exit 2
        echo "fashion-mnist: 60000 training and 10000 test images, 10 classes, in $QS_DATA"
        exit 0 ;;
    esac
    echo "softreg data: error: could not download (a long message)" >&2
    exit 2
fi
out=$3
mkdir -p "$out"
printf '%s' '{"model": "softmax-regression", "dataset": "fashion-mnist", "epochs": 10,
 "test_acc": 0.8319, "train_acc": 0.8488, "train_loss": 0.4475, "test_loss": 0.4819,
 "seconds_train": 1.5}' >"$out/metrics.json"
touch "$out/curves.png" "$out/predictions.png" "$out/misclassified.png"
"""

# `apt-get`: logged; installing the package makes the data appear.
FAKE_APT_GET = """#!/usr/bin/env bash
echo "apt-get $*" >>"$QS_LOG"
if [ "$1" = install ]; then touch "$QS_DATA/found"; fi
"""


def _executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


@pytest.fixture
def sandbox(tmp_path: Path) -> dict:
    """A copy of the script and pyproject.toml, stand-ins on PATH, and a log of the calls."""
    if shutil.which("bash") is None:
        pytest.skip("needs bash")
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "quickstart.sh", root / "scripts")
    shutil.copy(REPO / "pyproject.toml", root)
    (root / "src" / "softreg").mkdir(parents=True)
    shutil.copy(REPO / "src" / "softreg" / "__init__.py", root / "src" / "softreg")
    fakes, path_dir, data = tmp_path / "fakes", tmp_path / "bin", tmp_path / "data"
    for directory in (fakes, path_dir, data):
        directory.mkdir()
    _executable(fakes / "python", FAKE_VENV_PYTHON)
    _executable(fakes / "softreg", FAKE_SOFTREG)
    _executable(path_dir / "python3", FAKE_PYTHON3)
    _executable(path_dir / "apt-get", FAKE_APT_GET)
    env = {
        **os.environ,
        "PATH": f"{path_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "QS_LOG": str(tmp_path / "calls.log"),
        "QS_FAKES": str(fakes),
        "QS_DATA": str(data),
        "QS_REAL_PYTHON": sys.executable,
    }
    return {"root": root, "env": env, "log": tmp_path / "calls.log", "data": data}


def _run(sandbox: dict, *args: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Run the quickstart; return the result and the calls it made (the log is then emptied)."""
    result = subprocess.run(
        ["bash", "scripts/quickstart.sh", *args],
        cwd=sandbox["root"],
        env=sandbox["env"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    log = sandbox["log"]
    calls = log.read_text().splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return result, calls


def test_second_run_skips_setup_until_pyproject_or_the_version_changes(sandbox):
    (sandbox["data"] / "found").touch()
    first, calls = _run(sandbox)
    assert first.returncode == 0, first.stderr
    assert "venv" in calls and any(c.startswith("pip") and "-e .[fast]" in c for c in calls)

    second, calls = _run(sandbox)
    assert second.returncode == 0, second.stderr
    assert not [c for c in calls if c == "venv" or c.startswith("pip")], calls
    assert "no setup" in second.stdout

    with open(sandbox["root"] / "pyproject.toml", "a") as f:
        f.write("\n# changed\n")
    third, calls = _run(sandbox)
    assert third.returncode == 0, third.stderr
    assert "venv" in calls

    init = sandbox["root"] / "src" / "softreg" / "__init__.py"
    init.write_text(init.read_text().replace("__version__ = ", "__version__ = '9' + "))
    fourth, calls = _run(sandbox)
    assert fourth.returncode == 0, fourth.stderr
    assert "venv" in calls and "no setup" not in fourth.stdout


def test_says_where_the_data_was_found_and_ends_with_results(sandbox):
    (sandbox["data"] / "found").touch()
    result, calls = _run(sandbox)
    assert result.returncode == 0, result.stderr
    assert f"in {sandbox['data']} (found on this machine)" in result.stdout
    assert not [c for c in calls if c.startswith("apt-get")]
    assert "download" not in result.stdout + result.stderr
    assert "test accuracy 0.8319" in result.stdout
    tail = result.stdout.splitlines()[-3:]  # one line per figure, with what it shows
    assert [line.split(":")[0].strip() for line in tail] == [
        "curves.png",
        "predictions.png",
        "misclassified.png",
    ]
    assert all(len(line.split(": ", 1)[1]) > 20 for line in tail)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() != 0, reason="the apt path is root's")
def test_installs_debians_package_quietly_when_nothing_is_local(sandbox):
    result, calls = _run(sandbox, "--out", "runs/elsewhere")
    assert result.returncode == 0, result.stderr
    assert any(c.startswith("apt-get install") and "dataset-fashion-mnist" in c for c in calls)
    assert "installed from Debian's dataset-fashion-mnist" in result.stdout
    assert "error" not in result.stdout + result.stderr  # no download was tried
    assert not [c for c in calls if c.startswith("softreg data") and "--no-download" not in c]
    metrics = sandbox["root"] / "runs" / "elsewhere" / "metrics.json"
    assert json.loads(metrics.read_text())["test_acc"] == 0.8319
    assert "curves.png: " in result.stdout


def test_a_failed_download_is_the_last_word(sandbox):
    """Nothing local, no apt (a fake apt-get that fails): the download's error ends the run."""
    _executable(
        Path(sandbox["env"]["PATH"].split(os.pathsep)[0]) / "apt-get", "#!/bin/sh\nexit 100\n"
    )
    result, calls = _run(sandbox)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith("softreg data: error:")
    assert not [c for c in calls if c.startswith("softreg train")]
