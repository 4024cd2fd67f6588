"""Security in real Chromium: markup typed by admins and donors never runs (no dialog fires) in
the loader's bar, the embed page, the donation page or the dashboard; every admin page works
under its CSP without one violation; /embed framing follows FUNDGOAL_EMBED_FRAME_ANCESTORS."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect
from sqlalchemy import Engine, select
from sqlmodel import Session
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from fundgoal import db
from fundgoal.config import Secret, Settings
from fundgoal.models import LedgerEntry
from fundgoal.services import admins
from fundgoal.web.app import create_app
from tests.conftest import TEST_SECRET_KEY
from tests.security.test_xss import PAYLOADS
from tests.web.admin.conftest import EMAIL, PASSWORD, make_admin, sign_in
from tests.web.admin.test_campaigns import form as campaign_form

pytestmark = pytest.mark.browser

SLUG = "xss-appeal"
# Registers a listener before any page script: every CSP violation the page reports.
WATCH_CSP = """
window.__csp = [];
document.addEventListener('securitypolicyviolation',
  e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI), true);
"""


@dataclass
class Site:
    url: str
    engine: Engine
    settings: Settings
    payload: str
    thanks_path: str


@pytest.fixture
def site(
    request: pytest.FixtureRequest,
    serve: Callable[[Any], str],
    tmp_path: Path,
    sqlite_template: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Site]:
    """A campaign made in the dashboard and a gift made on the donation form, both carrying the
    payload; then the real app under uvicorn."""
    payload = PAYLOADS[getattr(request, "param", "attribute_break")]
    monkeypatch.setattr(admins, "_hasher", admins.PasswordHasher(time_cost=1, memory_cost=64))
    path = tmp_path / "security.db"
    shutil.copy(sqlite_template, path)
    settings = Settings(
        database_url=f"sqlite:///{path}",
        env="test",
        public_url="http://testserver",
        secret_key=Secret(TEST_SECRET_KEY),
        snapshot_check_seconds=0.2,
    )
    engine = db.make_engine(settings.database_url)
    make_admin(engine)
    with TestClient(create_app(replace(settings, snapshot_check_seconds=3600), engine=engine)) as c:
        token = sign_in(c)
        made = c.post(
            "/admin/campaigns/new",
            data=campaign_form(
                token,
                slug=SLUG,
                title=payload,
                description=payload,
                ms_label=[payload, payload, payload, ""],
                min_amount="1",
                locale="en",
                theme="light",
            ),
            follow_redirects=False,
        )
        assert made.status_code == 303, made.text
        page = c.get(f"/donate/{SLUG}")
        found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert found
        answer = c.post(
            f"/donate/{SLUG}",
            data={
                "csrf_token": found.group(1),
                "amount": "3000",
                "frequency": "once",
                "name": payload,
                "message": payload,
            },
            follow_redirects=False,
        )
        paid = c.post(
            answer.headers["location"],
            data={"csrf_token": found.group(1), "action": "pay"},
            follow_redirects=False,
        )
        thanks = paid.headers["location"].removeprefix("http://testserver")
    url = serve_late(serve, settings, engine)
    yield Site(url, engine, replace(settings, public_url=url), payload, thanks)
    engine.dispose()


def serve_late(serve: Callable[[Any], str], settings: Settings, engine: Engine) -> str:
    """Serve the app with public_url set to where it really listens (the loader names it):
    uvicorn needs the app before the port is known, so it is built on the first request."""
    holder: dict[str, str] = {}

    class Late:
        app: Any = None

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "lifespan":
                return  # the real app's startup runs below, on the first request
            if self.app is None:
                real = replace(settings, public_url=holder["url"], snapshot_check_seconds=3600)
                self.app = create_app(real, engine=engine)
                self.app.state.ctx.snapshots.refresh()
            await self.app(scope, receive, send)

    holder["url"] = serve(Late())
    return holder["url"]


@pytest.fixture
def watched(new_context: Callable[..., BrowserContext]) -> tuple[Page, list[str]]:
    """A page that records dialogs (alert, confirm…), script errors and CSP violations."""
    context = new_context()
    context.add_init_script(WATCH_CSP)
    page = context.new_page()
    problems: list[str] = []

    def dialog(d: Any) -> None:
        problems.append(f"dialog: {d.message}")
        d.dismiss()

    page.on("dialog", dialog)
    page.on("pageerror", lambda exc: problems.append(f"error: {exc}"))
    page.on(
        "console",
        lambda m: problems.append(f"console: {m.text}") if "Refused" in m.text else None,
    )
    return page, problems


def _violations(page: Page) -> list[str]:
    return list(page.evaluate("window.__csp || []"))


def _host_page(serve: Callable[[Any], str], body: str) -> str:
    """An article on another origin (another port)."""

    async def article(_request: Any) -> HTMLResponse:
        return HTMLResponse(f"<!doctype html><html lang=en><body>{body}</body></html>")

    return serve(Starlette(routes=[Route("/", article)]))


@pytest.mark.parametrize("site", sorted(PAYLOADS), indirect=True)
def test_payloads_render_as_text_and_never_run(
    site: Site, watched: tuple[Page, list[str]], serve: Callable[[Any], str]
) -> None:
    page, problems = watched
    payload = site.payload
    host = _host_page(
        serve,
        f'<div data-fundgoal="{SLUG}" data-locale="en" style="min-height:160px">'
        f'<a href="{site.url}/donate/{SLUG}">Support us</a></div>'
        f'<script async src="{site.url}/widget.js"></script>'
        f'<iframe src="{site.url}/embed/{SLUG}" title="bar" width="600" height="160"></iframe>'
        f'<img src="{site.url}/campaigns/{SLUG}/badge.svg" alt="badge">',
    )
    page.goto(host)
    bar = page.locator("[data-fundgoal] [role=progressbar]")  # pierces the open shadow root
    expect(bar).to_have_attribute("aria-label", payload)
    # The milestone labels are text (title) and the page holds no element from the payload.
    assert page.locator("[data-fundgoal] img[src=x], [data-fundgoal] foreignObject").count() == 0
    frame = page.frame_locator("iframe")
    expect(frame.locator("[role=progressbar]")).to_have_attribute("aria-label", payload)
    for path in (f"/donate/{SLUG}", site.thanks_path, f"/embed/{SLUG}"):
        page.goto(site.url + path)
        expect(page.get_by_text(payload).first).to_be_visible()
        assert page.locator("img[src=x], foreignObject").count() == 0, path
        assert _violations(page) == [], path
    page.goto(f"{site.url}/campaigns/{SLUG}/badge.svg")
    assert page.locator("script, foreignObject").count() == 0
    page.wait_for_timeout(200)  # a late onerror would fire by now
    assert problems == []


def _sign_in(page: Page, url: str) -> None:
    page.goto(f"{url}/admin/login")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()


def test_every_admin_page_works_under_its_csp_without_a_violation(
    site: Site, watched: tuple[Page, list[str]]
) -> None:
    page, problems = watched
    with Session(site.engine) as s:
        gift = s.scalars(select(LedgerEntry.id)).first()
    pages = [
        "/admin/login",
        "/admin",
        "/admin/campaigns",
        "/admin/campaigns/new",
        f"/admin/campaigns/{SLUG}",
        f"/admin/campaigns/{SLUG}/reports",
        f"/admin/campaigns/{SLUG}/embed",
        "/admin/donations",
        f"/admin/donations/{gift}",
        "/admin/gifts/new",
        "/admin/gifts/import",
        "/admin/audit",
    ]
    answer = page.goto(f"{site.url}/admin/login")
    assert answer is not None
    csp = answer.headers["content-security-policy"]
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    _sign_in(page, site.url)
    for path in pages[1:]:
        answer = page.goto(site.url + path)
        assert answer is not None
        assert answer.status == 200, path
        assert "unsafe-inline" not in answer.headers["content-security-policy"], path
        # The stylesheet applied (not the browser's default serif), and the page's script ran.
        font = page.evaluate("getComputedStyle(document.body).fontFamily")
        assert "Times" not in font, (path, font)
        assert _violations(page) == [], (path, _violations(page))
    # The scripted parts work under the CSP: the embed page's copy button copies.
    page.goto(f"{site.url}/admin/campaigns/{SLUG}/embed")
    assert page.locator("button").count() > 0
    assert problems == [], problems


@pytest.mark.parametrize(
    ("ancestors", "framed"),
    [("*", True), ("https://news.example.org", False), ("'none'", False), ("'self'", False)],
)
def test_embed_framing_follows_the_setting(
    site: Site,
    serve: Callable[[Any], str],
    new_context: Callable[..., BrowserContext],
    ancestors: str,
    framed: bool,
) -> None:
    url = serve_late(serve, replace(site.settings, embed_frame_ancestors=ancestors), site.engine)
    host = _host_page(serve, f'<iframe src="{url}/embed/{SLUG}" title="bar"></iframe>')
    page = new_context().new_page()
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "frame-ancestors" in m.text else None)
    page.goto(host)
    bar = page.frame_locator("iframe").locator("[role=progressbar]")
    if framed:
        expect(bar).to_have_count(1)
        assert refused == []
    else:
        page.wait_for_timeout(500)
        assert bar.count() == 0
        assert refused, "Chromium did not report the frame-ancestors refusal"


@pytest.mark.parametrize("style_src", ["'self'", "'self' 'unsafe-inline'"])
def test_a_host_page_with_a_strict_csp_gets_a_styled_bar(
    site: Site,
    serve: Callable[[Any], str],
    new_context: Callable[..., BrowserContext],
    style_src: str,
) -> None:
    """The README's directives are enough: script-src and connect-src for HOST, and no
    'unsafe-inline' for styles (the bar adopts a constructed stylesheet, which CSP allows)."""
    csp = (
        f"default-src 'self'; script-src {site.url}; connect-src {site.url}; "
        f"style-src {style_src}; img-src {site.url}; frame-src {site.url}"
    )

    async def article(_request: Any) -> HTMLResponse:
        return HTMLResponse(
            f'<!doctype html><html lang=en><body><div data-fundgoal="{SLUG}" data-locale="en">'
            f'<a href="{site.url}/donate/{SLUG}">Support us</a></div>'
            f'<script async src="{site.url}/widget.js"></script>'
            f'<iframe src="{site.url}/embed/{SLUG}" title="bar"></iframe>'
            f'<img src="{site.url}/campaigns/{SLUG}/badge.svg" alt="badge"></body></html>',
            headers={"content-security-policy": csp},
        )

    page = new_context().new_page()
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security" in m.text else None)
    page.goto(serve(Starlette(routes=[Route("/", article)])))
    bar = page.locator("[data-fundgoal] [role=progressbar]")
    expect(bar).to_have_count(1)
    # widget.css gives the track rounded ends; the browser's defaults would not.
    assert bar.evaluate("e => getComputedStyle(e).borderTopLeftRadius") != "0px"
    expect(page.frame_locator("iframe").locator("[role=progressbar]")).to_have_count(1)
    assert page.locator("img").evaluate("i => i.naturalWidth") > 0
    assert refused == []
