"""Interrupted and corrupt downloads, against a real HTTP server on 127.0.0.1.

Nothing here reaches beyond the loopback interface: the server runs in a thread, and an
autouse fixture refuses any other connection.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gzip
import hashlib
import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import softreg.data.download as download_module
from softreg.data import DATASETS, DataError, download_dataset

NAME = "fashion-mnist"
FILES = dict(DATASETS[NAME].files)  # role -> official .gz name
IMAGES = FILES["train_images"]  # the first file fetched, and the one interrupted below
CUT = 5000  # bytes of IMAGES sent before a transfer breaks
KILL_AT = 1000  # bytes of IMAGES sent before the server stalls and the client is killed


def idx_gz(shape: tuple[int, ...], seed: int) -> bytes:
    """A gzipped uint8 IDX file of random bytes (random, so it does not compress)."""
    header = bytes([0, 0, 0x08, len(shape)]) + struct.pack(f">{len(shape)}I", *shape)
    count = 1
    for n in shape:
        count *= n
    return gzip.compress(header + random.Random(seed).randbytes(count), mtime=0)


def fake_files(seed: int = 0) -> dict[str, bytes]:
    """file name -> bytes of a tiny dataset; IMAGES is about 24 kB."""
    shapes = {"train_images": (30, 28, 28), "train_labels": (30,)}
    shapes |= {"test_images": (10, 28, 28), "test_labels": (10,)}
    return {FILES[role]: idx_gz(shape, seed + i) for i, (role, shape) in enumerate(shapes.items())}


@dataclasses.dataclass
class Hit:
    path: str
    range: str | None
    status: int


class Mirror(ThreadingHTTPServer):
    """Serves ``files`` by name under any path, honouring ``Range: bytes=N-``.

    Switches, read per request: ``cut_after`` closes the connection after that many body
    bytes; ``stall_after`` sends that many, then waits for ``release``; ``ignore_range``
    always answers 200 with the whole file; ``corrupt`` flips every byte served.
    """

    daemon_threads = True

    def __init__(self, files: dict[str, bytes]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files = files
        self.hits: list[Hit] = []
        self.cut_after: int | None = None
        self.stall_after: int | None = None
        self.release = threading.Event()
        self.ignore_range = False
        self.corrupt = False
        self.url = f"http://127.0.0.1:{self.server_address[1]}/fashion/"

    def hits_for(self, name: str) -> list[Hit]:
        return [hit for hit in self.hits if hit.path.endswith("/" + name)]


class _Handler(BaseHTTPRequestHandler):
    server: Mirror

    def do_GET(self) -> None:
        mirror = self.server
        data = mirror.files.get(self.path.rsplit("/", 1)[-1])
        asked = self.headers.get("Range")
        if data is None:
            self._answer(asked, 404, {}, b"")
            return
        if mirror.corrupt:
            data = bytes(b ^ 0xFF for b in data)
        start = 0 if asked is None or mirror.ignore_range else int(asked[6:].rstrip("-"))
        if start >= len(data) and start:
            self._answer(asked, 416, {"Content-Range": f"bytes */{len(data)}"}, b"")
        elif asked is None or mirror.ignore_range:
            self._answer(asked, 200, {}, data)
        else:
            span = f"bytes {start}-{len(data) - 1}/{len(data)}"
            self._answer(asked, 206, {"Content-Range": span}, data[start:])

    def _answer(self, asked: str | None, status: int, headers: dict[str, str], body: bytes) -> None:
        self.server.hits.append(Hit(self.path, asked, status))
        self.send_response(status)
        for key, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(key, value)
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._send_body(body)  # unless the client went away (killed on purpose)

    def _send_body(self, body: bytes) -> None:
        cut, stall = self.server.cut_after, self.server.stall_after
        if cut is not None:
            body = body[:cut]  # then the connection closes: HTTP/1.0
        if stall is not None:
            self.wfile.write(body[:stall])
            self.wfile.flush()
            self.server.release.wait(timeout=10)
            body = body[stall:]
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection but to 127.0.0.1 fails the test; proxies are bypassed."""
    real = socket.create_connection

    def guarded(address: tuple[str, int], *args: object, **kwargs: object) -> socket.socket:
        if address[0] != "127.0.0.1":
            raise AssertionError(f"a test tried to connect to {address}")
        return real(address, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "create_connection", guarded)
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.delenv("SOFTREG_DATA", raising=False)


@pytest.fixture
def files(monkeypatch: pytest.MonkeyPatch) -> dict[str, bytes]:
    """The fake dataset; the spec's MD5s are patched to match it."""
    served = fake_files()
    spec = DATASETS[NAME]
    md5 = {role: hashlib.md5(served[name]).hexdigest() for role, name in spec.files.items()}
    monkeypatch.setitem(DATASETS, NAME, dataclasses.replace(spec, md5=md5))
    return served


@pytest.fixture
def serve() -> Iterator[Callable[[dict[str, bytes]], Mirror]]:
    """Starts mirrors in threads; stops them (releasing any stalled reply) afterwards."""
    started: list[Mirror] = []

    def start(served: dict[str, bytes]) -> Mirror:
        mirror = Mirror(served)
        # A short poll interval makes shutdown quick.
        loop = functools.partial(mirror.serve_forever, poll_interval=0.01)
        threading.Thread(target=loop, daemon=True).start()
        started.append(mirror)
        return mirror

    yield start
    for mirror in started:
        mirror.release.set()
        mirror.shutdown()
        mirror.server_close()


@pytest.fixture
def mirror(serve: Callable[[dict[str, bytes]], Mirror], files: dict[str, bytes]) -> Mirror:
    return serve(files)


def download(mirror: Mirror, dest: Path) -> Path:
    return download_dataset(NAME, dest, mirrors=[mirror.url], progress=False)


def assert_complete(dest: Path, files: dict[str, bytes]) -> None:
    assert sorted(p.name for p in dest.iterdir()) == sorted(files)  # and no .part
    for name, data in files.items():
        assert (dest / name).read_bytes() == data


def interrupt(mirror: Mirror, dest: Path, after: int = CUT) -> Path:
    """A first download whose IMAGES transfer breaks after ``after`` bytes; the part path."""
    mirror.cut_after = after
    with pytest.raises(DataError, match="short read"):
        download(mirror, dest)
    mirror.cut_after = None
    return dest / (IMAGES + ".part")


# ---------------------------------------------------------------------------- tests


@pytest.mark.parametrize("after", [CUT, 0])
def test_interrupted_transfer_keeps_only_a_part(
    tmp_path: Path, mirror: Mirror, files: dict[str, bytes], after: int
) -> None:
    part = interrupt(mirror, tmp_path, after)
    assert not (tmp_path / IMAGES).exists()
    if after:
        assert part.read_bytes() == files[IMAGES][:after]  # every byte received, in order
    else:
        assert not part.exists()  # nothing to resume from: no empty part either
    assert [p.name for p in tmp_path.iterdir()] == ([part.name] if after else [])


def test_retry_resumes_with_range(tmp_path: Path, mirror: Mirror, files: dict[str, bytes]) -> None:
    interrupt(mirror, tmp_path)
    download(mirror, tmp_path)
    first, retry = mirror.hits_for(IMAGES)
    assert (first.range, first.status) == (None, 200)
    assert (retry.range, retry.status) == (f"bytes={CUT}-", 206)
    assert_complete(tmp_path, files)


def test_server_ignoring_range_restarts(
    tmp_path: Path, mirror: Mirror, files: dict[str, bytes]
) -> None:
    interrupt(mirror, tmp_path)
    mirror.ignore_range = True
    download(mirror, tmp_path)
    retry = mirror.hits_for(IMAGES)[-1]
    assert (retry.range, retry.status) == (f"bytes={CUT}-", 200)
    assert_complete(tmp_path, files)  # the whole file replaced the part, not appended to it


def test_checksum_mismatch_leaves_nothing(tmp_path: Path, mirror: Mirror) -> None:
    mirror.corrupt = True
    with pytest.raises(DataError, match="MD5 mismatch"):
        download(mirror, tmp_path)
    assert list(tmp_path.iterdir()) == []
    assert [hit.range for hit in mirror.hits] == [None]  # no part, so no resume attempt


@pytest.mark.parametrize(
    ("stale", "status"),
    [(b"\x00" * CUT, 206), (b"\x00" * 100_000, 416)],
    ids=["wrong-bytes", "longer-than-file"],
)
def test_stale_part_is_discarded_and_restarted(
    tmp_path: Path, mirror: Mirror, files: dict[str, bytes], stale: bytes, status: int
) -> None:
    (tmp_path / (IMAGES + ".part")).write_bytes(stale)
    download(mirror, tmp_path)
    hits = [(hit.range, hit.status) for hit in mirror.hits_for(IMAGES)]
    assert hits == [(f"bytes={len(stale)}-", status), (None, 200)]
    assert_complete(tmp_path, files)


def test_bad_resume_restarts_once_then_next_mirror(
    tmp_path: Path, serve: Callable[[dict[str, bytes]], Mirror], files: dict[str, bytes]
) -> None:
    bad, good = serve(files), serve(files)
    bad.corrupt = True
    (tmp_path / (IMAGES + ".part")).write_bytes(files[IMAGES][:CUT])
    download_dataset(NAME, tmp_path, mirrors=[bad.url, good.url], progress=False)
    assert [hit.range for hit in bad.hits_for(IMAGES)] == [f"bytes={CUT}-", None]
    assert [hit.range for hit in good.hits_for(IMAGES)] == [None]  # the bad bytes were dropped
    assert_complete(tmp_path, files)


def test_keyboard_interrupt_keeps_part_for_resume(
    tmp_path: Path, mirror: Mirror, files: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    class CtrlC:  # a progress bar that is interrupted once bytes have arrived
        def update(self, n: int) -> None:
            raise KeyboardInterrupt

        def __enter__(self) -> CtrlC:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

    mirror.stall_after = CUT  # so the first chunk read is not the whole file
    with monkeypatch.context() as patch:
        patch.setattr(download_module, "progress_bar", lambda *args, **kwargs: CtrlC())
        with pytest.raises(KeyboardInterrupt):
            download(mirror, tmp_path)
    mirror.stall_after = None
    kept = (tmp_path / (IMAGES + ".part")).read_bytes()
    assert kept and files[IMAGES].startswith(kept)
    assert [p.name for p in tmp_path.iterdir()] == [IMAGES + ".part"]
    download(mirror, tmp_path)
    assert mirror.hits_for(IMAGES)[-1].range == f"bytes={len(kept)}-"
    assert_complete(tmp_path, files)


CHILD = """
import dataclasses, json, sys
from softreg.data import DATASETS, download_dataset
spec = DATASETS["fashion-mnist"]
DATASETS["fashion-mnist"] = dataclasses.replace(spec, md5=json.loads(sys.argv[3]))
download_dataset("fashion-mnist", sys.argv[1], mirrors=[sys.argv[2]], progress=False)
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_mid_download_then_resume(
    tmp_path: Path, mirror: Mirror, files: dict[str, bytes]
) -> None:
    # The child gets a few bytes of IMAGES, then waits mid-file. Fewer than an I/O buffer:
    # what it got must reach the part at once, not sit in a buffer the kill throws away.
    mirror.stall_after = KILL_AT
    part = tmp_path / (IMAGES + ".part")
    md5 = json.dumps(dict(DATASETS[NAME].md5))
    env = {**os.environ, "no_proxy": "*"}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path), mirror.url, md5], env=env)
    try:
        wait_for(lambda: part.is_file() and part.stat().st_size == KILL_AT, child)
        os.kill(child.pid, signal.SIGKILL)  # no cleanup of any kind can run
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert [p.name for p in tmp_path.iterdir()] == [part.name]  # nothing under a final name
    assert part.read_bytes() == files[IMAGES][:KILL_AT]

    mirror.stall_after = None
    download(mirror, tmp_path)
    retry = mirror.hits_for(IMAGES)[-1]
    assert (retry.range, retry.status) == (f"bytes={KILL_AT}-", 206)
    assert_complete(tmp_path, files)


def wait_for(condition: Callable[[], bool], child: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert child.poll() is None, "the download ended before it could be killed"
        assert time.monotonic() < deadline, "the download never got going"
        time.sleep(0.01)


def test_a_failed_download_leaves_no_empty_directories(tmp_path: Path) -> None:
    dest = tmp_path / "cache" / "softreg" / NAME
    with pytest.raises(DataError, match="could not download"):
        download_dataset(NAME, dest, mirrors=[(tmp_path / "no-mirror").as_uri()], progress=False)
    assert not (tmp_path / "cache").exists()
