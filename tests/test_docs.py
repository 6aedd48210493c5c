"""The built documentation site, opened in a real headless browser (Debian's chromium).

Skipped unless the site has been built (``bash scripts/docs.sh`` writes docs/_build/html)
and ``chromium`` and ``chromedriver`` are on the PATH (Debian: ``apt-get install chromium
chromium-driver``). The browser is driven through chromedriver's W3C WebDriver protocol,
plain JSON over HTTP on localhost, so no client library is needed. The pages are opened from
disk (``file://``): nothing touches the network.

Each page checked must load every image (``naturalWidth > 0``) and log no error to the
browser console.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "docs" / "_build" / "html"
# The front page, the API page of softreg.fit, the book's recipe in the gallery, and the
# chapter's notebook as the build ran it.
PAGES = [
    "index.html",
    "api/generated/softreg.fit.html",
    "auto_examples/plot_book_recipe.html",
    "notebook/softmax_regression.html",
]

pytestmark = [
    pytest.mark.skipif(
        not (SITE / "index.html").is_file(), reason="docs not built: bash scripts/docs.sh"
    ),
    pytest.mark.skipif(
        not (shutil.which("chromium") and shutil.which("chromedriver")),
        reason="needs chromium and chromedriver (apt-get install chromium chromium-driver)",
    ),
]


class WebDriver:
    """The few WebDriver commands the checks need, sent to a local chromedriver."""

    def __init__(self, url: str) -> None:
        self.url = url
        capabilities = {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--window-size=1280,2000",
                ],
            },
            "goog:loggingPrefs": {"browser": "ALL"},
        }
        reply = self._call("POST", "/session", {"capabilities": {"alwaysMatch": capabilities}})
        self.session = f"/session/{reply['sessionId']}"

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())["value"]

    def get(self, url: str) -> None:
        """Open ``url`` and wait for it to load."""
        self._call("POST", self.session + "/url", {"url": url})

    def run_async(self, script: str) -> Any:
        """Run ``script`` in the page; it hands its result to its last argument, a callback."""
        return self._call("POST", self.session + "/execute/async", {"script": script, "args": []})

    def console(self) -> list[dict[str, Any]]:
        """The browser console's entries since the last call."""
        return self._call("POST", self.session + "/se/log", {"type": "browser"})

    def quit(self) -> None:
        """End the session (closes the browser)."""
        self._call("DELETE", self.session)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    port = _free_port()
    driver = subprocess.Popen(
        ["chromedriver", f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):  # chromedriver takes a moment to listen
            try:
                urllib.request.urlopen(url + "/status", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        session = WebDriver(url)
        try:
            yield session
        finally:
            session.quit()
    finally:
        driver.terminate()
        driver.wait(timeout=10)


# Loads every image, lazy ones too, and reports each image's address and width once all
# have finished (or after 10 s).
IMAGES = """
const done = arguments[arguments.length - 1];
const images = Array.from(document.images);
images.forEach(img => { img.loading = "eager"; });
const deadline = Date.now() + 10000;
(function poll() {
    if (images.some(img => !img.complete) && Date.now() < deadline) {
        setTimeout(poll, 50);
    } else {
        done(images.map(img => [img.currentSrc || img.src, img.complete, img.naturalWidth]));
    }
})();
"""


@pytest.mark.parametrize("page", PAGES)
def test_page_loads_its_images_without_console_errors(browser: WebDriver, page: str) -> None:
    path = SITE / page
    assert path.is_file(), f"{page} was not built"
    browser.console()  # drop what earlier pages logged
    browser.get(path.as_uri())
    images = browser.run_async(IMAGES)
    broken = [src for src, complete, width in images if not (complete and width > 0)]
    assert not broken, f"{page}: images that did not load: {broken}"
    errors = [entry["message"] for entry in browser.console() if entry["level"] == "SEVERE"]
    assert not errors, f"{page}: console errors: {errors}"
    if page.startswith(("auto_examples/", "notebook/")):
        assert len(images) >= 2, f"{page}: the figures are missing"
