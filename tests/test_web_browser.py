"""The page of ``rootscope serve`` in a real browser: the real server (uvicorn, 127.0.0.1) driven by
Debian's chromium through playwright. Another site's page cannot train or undo; a hostile plate name is
shown as text and runs nothing; the page itself still paints, trains and undoes."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

from rootscope import io

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.is_file():
    pytest.skip(f"{CHROMIUM} is absent (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is absent (the dev extra)")
uvicorn = pytest.importorskip("uvicorn", reason="the web extra is absent (pip install 'rootscope[web]')")

from test_web import plate, root_strokes  # noqa: E402

from rootscope.web.app import create_app  # noqa: E402

HOSTILE = """<img src=x onerror="document.body.setAttribute('data-pwned','1')">"""


@contextlib.contextmanager
def serving(folder: Path):
    """``rootscope serve folder`` on a free port of 127.0.0.1, in a thread; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(folder, preview_px=400), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            assert thread.is_alive(), "the server did not start"
            threading.Event().wait(0.05)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@contextlib.contextmanager
def other_site(html: str):
    """Another local site (its own port) serving one page; yields its URL."""

    class Page(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(html.encode())

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        yield browser
        browser.close()


def experiment(root: Path, plates: list[str], classes: tuple[str, ...] = ("background", "root")) -> Path:
    """An experiment of one 320 x 240 scan per plate."""
    for k, name in enumerate(plates):
        io.write_image(root / "raw" / name / "scan0.png", plate(2 + k)[0])
    (root / "rootscope.toml").write_text(f"classes = {json.dumps(classes)}\n")
    return root


def post(url: str, body: dict) -> dict:
    """POST ``body`` as JSON, as the page does."""
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as answer:
        return json.load(answer)


def test_a_page_of_another_site_can_neither_train_nor_undo(tmp_path, browser):
    folder = experiment(tmp_path, ["plate1"])
    model, labels = folder / "models" / "pixel.model", folder / "labels" / "plate1" / "scan0.png"
    with serving(folder) as base:
        for stroke in root_strokes(2):  # enough of both classes that a training would succeed
            post(f"{base}/api/scans/plate1/scan0/strokes", {**stroke, "full_size": True})
        painted = labels.read_bytes()
        attack = f"""<script>
            const post = (url) => fetch("{base}" + url, {{method: "POST", mode: "no-cors"}}).catch(() => null);
            post("/api/train").then(() => post("/api/scans/plate1/scan0/undo"))
                .then(() => {{ document.title = "sent"; }});
        </script>"""
        with other_site(attack) as url:
            page = browser.new_page()
            page.goto(url)
            page.wait_for_function("document.title === 'sent'")
            page.close()
        assert not model.exists()  # not trained
        assert labels.read_bytes() == painted  # not undone
        page = browser.new_page()  # the page itself still may: train, then undo
        page.goto(base)
        status = sync_api.expect(page.locator("#status"))  # the page's CSP forbids wait_for_function's eval
        status.to_contain_text("paint strokes")
        page.click("#train")
        status.to_contain_text("trained on 1 scans", timeout=60_000)
        assert model.is_file()
        page.click("#undo")
        status.to_contain_text("undone")
        page.close()
        assert labels.read_bytes() != painted


def test_a_hostile_plate_name_is_shown_as_text_and_runs_nothing(tmp_path, browser):
    folder = experiment(tmp_path, [HOSTILE, "plate2"], classes=("background", f"root{HOSTILE}"))
    traits = pd.DataFrame([{"plate": HOSTILE, "scan": "scan0.png", "plant": HOSTILE, "primary_length_mm": 10.5}])
    io.write_table(folder / "out" / "traits.csv", traits)
    with serving(folder) as base:
        page = browser.new_page()
        page.goto(base)
        sync_api.expect(page.locator("#status")).to_contain_text("paint strokes")
        assert page.locator("#scans h3").all_text_contents() == [HOSTILE, "plate2"]
        assert page.locator("#scans img").count() == 0
        assert page.locator("#classes button").all_text_contents() == ["background", f"root{HOSTILE}", "erase"]
        assert page.locator("#traits th").all_text_contents() == ["plant", HOSTILE]  # the review's table
        assert page.locator("#traits td").all_text_contents() == ["primary_length_mm", "10.50"]
        assert page.locator("img:not([id])").count() == 0
        # The page opened the hostile plate's scan, so its key travelled through every URL.
        assert page.locator("#scans button.current").text_content() == "scan0.png"
        assert page.evaluate("document.querySelector('#scans button.current').dataset.key") == f"{HOSTILE}/scan0"
        # Even HTML put in by other means runs no inline handler: the Content-Security-Policy forbids it.
        page.evaluate("document.body.insertAdjacentHTML('beforeend', "
                      "'<img src=x onerror=\"document.body.setAttribute(`data-csp`, `1`)\">')")
        page.wait_for_timeout(500)
        assert page.evaluate("document.body.getAttribute('data-pwned')") is None
        assert page.evaluate("document.body.getAttribute('data-csp')") is None
        page.close()
