"""Round trips from an article's HTML to its drawn bar, in Debian's chromium (issue 15 item 3).

The real app serves the bar on 127.0.0.1; the article comes from 127.0.0.2, another site to
the browser, as a newsroom's page would. Chromium's own network emulation (CDP
Network.emulateNetworkConditions) holds every request for one round trip: its `latency` is "from
request sent to response headers received", so latency=100 is a 100 ms round trip per request.

"Drawn" is the moment the bar's progressbar element enters its shadow root, recorded by a
MutationObserver on every shadow root the page attaches (a microtask after the script's DOM
change, so no polling interval blurs it), on the page's own clock: performance.now() and the
navigation entry's responseEnd share one time origin. Figures are the median of fresh visits.

A cold visit is a fresh browser context (empty cache, no connections); a warm visit is a second
article page in the same context soon after, as a reader who opens another story.

The round trip is 400 ms here, not the issue's 100 ms, on purpose: the browser's own work on a
visit (parsing, the script, layout) took 100-250 ms per visit on this 2-core machine under the
load of a full test run, and at 100 ms that work counts as one or two "round trips" and the
assertion measures the machine instead of the design. At 400 ms (a slow 3G link) the same work is
well under one. FUNDGOAL_TEST_ROUND_TRIP_MS=100 gives the issue's figure (README "Round trips").
The design's point is also checked without a clock: exactly one request, the script, stands
between the article and the data request (the old loader stub made it two in a row).
"""

from __future__ import annotations

import os
import shutil
import statistics
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page
from starlette.applications import Starlette
from starlette.requests import Request as HttpRequest
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from fundgoal import db
from fundgoal.config import Secret, Settings
from fundgoal.services.demo import seed_demo
from fundgoal.web.app import create_app
from tests.conftest import TEST_SECRET_KEY

from .serving import serve_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROUND_TRIP_MS = int(os.environ.get("FUNDGOAL_TEST_ROUND_TRIP_MS", "400"))
VISITS = 5
COLD_LIMIT = 3.3  # round trips: the script, then the data (the connection is free here)
WARM_LIMIT = 1.2  # round trips: everything from the browser's cache

# Installed before any page script: remembers when a progressbar first enters a shadow root.
DRAWN = """(() => {
  const attach = Element.prototype.attachShadow;
  window.__drawnAt = null;
  Element.prototype.attachShadow = function (init) {
    const root = attach.call(this, init);
    new MutationObserver(() => {
      if (window.__drawnAt === null && root.querySelector('[role=progressbar]')) {
        window.__drawnAt = performance.now();
      }
    }).observe(root, {childList: true, subtree: true});
    return root;
  };
})();"""

TIMINGS = """() => ({
  drawnAt: window.__drawnAt,
  htmlEnd: performance.getEntriesByType('navigation')[0].responseEnd,
  resources: performance.getEntriesByType('resource').map(
    e => ({url: e.name, start: e.startTime, end: e.responseEnd})),
})"""


@dataclass
class Visit:
    round_trips: float  # from the article's responseEnd to the drawn bar, in round trips
    before_data: list[str]  # fundgoal requests that had ended when the data request started


@dataclass
class Sites:
    fundgoal: str
    article: Callable[[], str]  # a new article URL on the news site


@pytest.fixture
def sites(tmp_path: Path, sqlite_template: Path) -> Iterator[Sites]:
    path = tmp_path / "fundgoal.db"
    shutil.copy(sqlite_template, path)
    settings = Settings(
        database_url=f"sqlite:///{path}",
        env="test",
        public_url="http://127.0.0.1",
        secret_key=Secret(TEST_SECRET_KEY),
    )
    engine = db.make_engine(settings.database_url)
    with db.transaction(engine) as s:
        seed_demo(s)
    with serve_app(create_app(settings, engine=engine)) as fundgoal:
        snippet = (
            f'<div data-fundgoal="demo" data-locale="en" style="min-height:160px">'
            f'<a href="{fundgoal}/donate/demo">Support us</a></div>'
            f'<script async src="{fundgoal}/widget.js"></script>'
        )

        async def article(request: HttpRequest) -> Response:
            return HTMLResponse(
                "<!doctype html><html lang=en><head><meta charset=utf-8><title>News</title>"
                f"</head><body><h1>Local news</h1><p>The story.</p>{snippet}"
                "<p>The story goes on.</p></body></html>",
                headers={"cache-control": "no-store"},
            )

        news_app = Starlette(routes=[Route("/{name}", article)])
        with serve_app(news_app, host="127.0.0.2") as news:
            count = iter(range(1_000_000))
            yield Sites(fundgoal, lambda: f"{news}/article-{next(count)}")
    engine.dispose()


def throttled_page(context: BrowserContext) -> Page:
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {
            "offline": False,
            "latency": ROUND_TRIP_MS,
            "downloadThroughput": -1,
            "uploadThroughput": -1,
        },
    )
    return page


def visit(page: Page, url: str, fundgoal: str) -> Visit:
    page.goto(url)
    page.wait_for_function("window.__drawnAt !== null", timeout=30_000)
    timings: dict[str, Any] = page.evaluate(TIMINGS)
    ours = [r for r in timings["resources"] if r["url"].startswith(fundgoal)]
    data = next(r for r in ours if "/api/campaigns" in r["url"])
    before = [r["url"].removeprefix(fundgoal) for r in ours if r["end"] <= data["start"]]
    elapsed = timings["drawnAt"] - timings["htmlEnd"]
    return Visit(elapsed / ROUND_TRIP_MS, before)


def test_the_bar_is_drawn_within_three_round_trips_cold_and_one_warm(
    browser: Browser, sites: Sites
) -> None:
    cold: list[Visit] = []
    warm: list[Visit] = []
    for _ in range(VISITS):
        context = browser.new_context()
        try:
            context.add_init_script(DRAWN)
            cold.append(visit(throttled_page(context), sites.article(), sites.fundgoal))
            warm.append(visit(throttled_page(context), sites.article(), sites.fundgoal))
        finally:
            context.close()

    cold_median = statistics.median(v.round_trips for v in cold)
    warm_median = statistics.median(v.round_trips for v in warm)
    figures = (
        f"cold {[round(v.round_trips, 2) for v in cold]} median {cold_median:.2f}; "
        f"warm {[round(v.round_trips, 2) for v in warm]} median {warm_median:.2f}"
    )
    print(f"round trips to the bar at {ROUND_TRIP_MS} ms: {figures}")
    # Whatever the machine's speed: one request, the script, before the data request.
    for v in cold:
        assert v.before_data == ["/widget.js"], v.before_data
    assert cold_median <= COLD_LIMIT, figures
    assert warm_median <= WARM_LIMIT, figures
