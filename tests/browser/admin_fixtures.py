"""Browser fixtures for the admin tests: the real app under uvicorn, Debian's chromium.

Kept apart from tests/browser/conftest.py (the widget's fixtures) so the two can merge
without a clash; the admin tests import these by name.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright
from sqlalchemy import Engine

from fundgoal import db
from fundgoal.config import Settings
from fundgoal.web.app import create_app

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    engine: Engine
    settings: Settings


@pytest.fixture
def live_admin_server(tmp_path: Path, sqlite_template: Path) -> Iterator[LiveServer]:
    """The real app on 127.0.0.1 with a fresh migrated SQLite database."""
    path = tmp_path / "browser.db"
    shutil.copy(sqlite_template, path)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    settings = Settings(database_url=f"sqlite:///{path}", env="test", public_url=url)
    engine = db.make_engine(settings.database_url)
    app = create_app(settings, engine=engine)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the app did not start under uvicorn")
        time.sleep(0.05)
    yield LiveServer(url, engine, settings)
    server.should_exit = True
    thread.join(10)
    engine.dispose()


@pytest.fixture(scope="session")
def admin_browser() -> Iterator[Browser]:
    if not os.path.exists(CHROMIUM):
        reason = f"{CHROMIUM} is missing (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests are required in CI but {reason}")
        pytest.skip(reason)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def admin_page(admin_browser: Browser, live_admin_server: LiveServer) -> Iterator[Page]:
    context = admin_browser.new_context(
        base_url=live_admin_server.url,
        accept_downloads=True,
        viewport={"width": 1360, "height": 900},
    )
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_admin_server.url)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    def console(msg: ConsoleMessage) -> None:
        # A refused form answers 4xx on purpose; CSP violations ("Refused to …") and script
        # errors are what this collects.
        if msg.type == "error" and "the server responded with a status of 4" not in msg.text:
            errors.append(msg.text)

    page.on("console", console)
    yield page
    context.close()
    assert errors == [], f"the browser reported errors (CSP violations included): {errors}"
