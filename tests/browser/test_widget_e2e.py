"""The real app end to end in Debian's chromium: the demo article, its bar, a gift, a refresh."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect
from sqlalchemy import Engine

from fundgoal import db
from fundgoal.config import Settings
from fundgoal.money import Money
from fundgoal.services import gifts
from fundgoal.services.demo import seed_demo
from fundgoal.stores import campaigns
from fundgoal.web.app import create_app


@pytest.fixture
def site(settings: Settings, engine: Engine, serve: Callable[[Any], str]) -> str:
    """fundgoal serving the demo on 127.0.0.1; public_url is where it really listens."""
    from dataclasses import replace

    with db.transaction(engine) as s:
        seed_demo(s)
    holder: dict[str, str] = {}

    class Late:
        """uvicorn needs the app before we know its port (public_url); build it on the first
        request, and run its lifespan's exit when uvicorn shuts down."""

        app: Any = None
        lifespan: Any = None

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "lifespan":
                while True:
                    message = await receive()
                    if message["type"] == "lifespan.startup":
                        await send({"type": "lifespan.startup.complete"})
                    elif message["type"] == "lifespan.shutdown":
                        if self.lifespan is not None:
                            await self.lifespan.__aexit__(None, None, None)
                        await send({"type": "lifespan.shutdown.complete"})
                        return
            if self.app is None:
                real = replace(settings, public_url=holder["url"], snapshot_check_seconds=0.2)
                self.app = create_app(real, engine=engine)
                self.lifespan = self.app.router.lifespan_context(self.app)
                await self.lifespan.__aenter__()
            await self.app(scope, receive, send)

    late = Late()
    base = serve(late)
    holder["url"] = base
    return base


def bar(page: Page) -> Any:
    return page.locator("[data-fundgoal=demo]").locator("[role=progressbar]")


def test_demo_article_shows_the_campaign_from_the_database(site: str, page: Page) -> None:
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(f"{site}/demo")
    progress = bar(page)
    expect(progress).to_have_attribute("aria-valuenow", "146000")
    expect(progress).to_have_attribute("aria-valuemax", "500000")
    expect(progress).to_have_attribute("aria-valuetext", "$1,460 raised of $5,000")
    expect(page.locator("[data-fundgoal=demo] .mk")).to_have_text("$1,460")
    labels = page.locator("[data-fundgoal=demo] .l").all_text_contents()
    assert labels == ["$5,000", "$2,500", "$0"]
    api = [u for u in requests if "/api/campaigns" in u]
    assert len(api) == 1
    assert api[0].endswith("/api/campaigns?c=demo:en")
    assert all(u.startswith(site) for u in requests)  # no third-party requests
    assert page.context.cookies() == []


def test_a_gift_shows_when_the_tab_is_shown_again(site: str, page: Page, engine: Engine) -> None:
    page.goto(f"{site}/demo")
    expect(bar(page)).to_have_attribute("aria-valuenow", "146000")
    with db.transaction(engine) as s:
        demo = campaigns.by_slug(s, "demo")
        assert demo is not None
        gifts.record_offline_gift(s, demo, Money.from_major(1040, "USD"), actor="test")
    page.wait_for_timeout(500)  # the server's snapshot poller (0.2 s here) picks the gift up
    page.evaluate(
        """() => {
            Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => 'visible'});
            Object.defineProperty(document, 'hidden', {configurable: true, get: () => false});
            document.dispatchEvent(new Event('visibilitychange'));
        }"""
    )
    # The browser revalidates its cached answer (max-age=15 would otherwise hide the gift).
    expect(bar(page)).to_have_attribute("aria-valuenow", "250000")
    expect(page.locator("[data-fundgoal=demo] .mk")).to_have_text("$2,500")


def test_without_javascript_the_link_and_iframe_work(
    site: str, new_context: Callable[..., BrowserContext]
) -> None:
    page = new_context(java_script_enabled=False).new_page()
    page.goto(f"{site}/demo")
    expect(page.locator("[data-fundgoal=demo] a")).to_have_attribute("href", f"{site}/donate/demo")
    frame = page.frame_locator("noscript iframe, iframe[src*='/embed/demo']").first
    expect(frame.locator("[role=progressbar]")).to_have_attribute("aria-valuenow", "146000")


def test_embed_page_and_badge_render(site: str, page: Page) -> None:
    page.goto(f"{site}/embed/demo?theme=dark&locale=fr")
    progress = page.locator("[role=progressbar]")
    expect(progress).to_have_attribute(
        "aria-valuetext", "1\u202f460\xa0$US collectés sur 5\u202f000\xa0$US"
    )
    box = progress.bounding_box()
    assert box is not None
    assert box["width"] > 100
    page.goto(f"{site}/campaigns/demo/badge.svg")
    assert page.locator("svg").get_attribute("role") == "img"


def test_reserved_snippet_has_zero_layout_shift(
    site: str, page: Page, serve: Callable[[Any], str]
) -> None:
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    html = f"""<!doctype html><html lang="en"><body>
      <p>Intro paragraph.</p>
      <div data-fundgoal="demo" style="min-height:160px"><a href="{site}/donate/demo">Support us</a></div>
      <p id="after">The article goes on.</p>
      <script async src="{site}/widget.js"></script></body></html>"""
    # The news site is another origin on this machine, as it would be another site in production.
    news = serve(Starlette(routes=[Route("/article", lambda _r: HTMLResponse(html))]))
    page.goto(news.replace("127.0.0.1", "localhost") + "/article")
    expect(bar(page)).to_have_attribute("aria-valuenow", "146000")
    page.wait_for_timeout(300)
    shift = page.evaluate(
        """() => new Promise(resolve => {
            let total = 0;
            new PerformanceObserver(list => { for (const e of list.getEntries()) total += e.value; })
              .observe({type: 'layout-shift', buffered: true});
            setTimeout(() => resolve(total), 100);
        })"""
    )
    assert shift == 0
