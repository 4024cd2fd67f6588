"""Browser fixtures: Debian's chromium driven by Playwright, and apps served by uvicorn.

No browser is ever downloaded: the tests use /usr/bin/chromium from apt. Without it the
browser tests skip with the install command, except in CI (CI=true), where they must run.

Exported fixtures:
  browser                   session-wide chromium Browser
  page                      a Page in a fresh BrowserContext, closed after the test
  new_context(**options)    more contexts (e.g. java_script_enabled=False), closed after the test
  serve(app) -> base_url    serve an ASGI app on 127.0.0.1 until the test ends
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from .serving import serve_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the browser tests but {CHROMIUM} is missing")
        pytest.skip("Debian chromium not installed: apt-get install chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


@pytest.fixture
def new_context(browser: Browser) -> Iterator[Callable[..., BrowserContext]]:
    """A factory for browser contexts (Playwright's new_context options); all closed after."""
    made: list[BrowserContext] = []

    def make(**options: Any) -> BrowserContext:
        context = browser.new_context(**options)
        made.append(context)
        return context

    yield make
    for context in made:
        context.close()


@pytest.fixture
def page(new_context: Callable[..., BrowserContext]) -> Page:
    return new_context().new_page()


@pytest.fixture
def serve() -> Iterator[Callable[[Any], str]]:
    """serve(app) -> base URL; every app served in the test stops when the test ends."""
    with ExitStack() as stack:
        yield lambda app: stack.enter_context(serve_app(app))
