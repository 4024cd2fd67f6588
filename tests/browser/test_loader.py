"""The embed script (widgets/widget.js) in Debian's chromium, against fixture servers.

Two servers play the two sides of a real embed, on different origins: a "news site" serving
article pages with the embed snippet, and a stub of the fundgoal server serving widget.js as the
server does (built from widgets/ by fundgoal.widget_build) and a fixture `/api/campaigns` answer
(counted, optionally delayed). So the tests prove the cross-origin path too: CORS, no
credentials, no third parties.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import BrowserContext, Page, Request, expect
from starlette.applications import Starlette
from starlette.requests import Request as HttpRequest
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from fundgoal.widget_build import Sources, built

pytestmark = pytest.mark.browser

WIDGETS = Path(__file__).resolve().parents[2] / "widgets"
SERVED = built(Sources.read(WIDGETS)).script  # the bytes the server sends, built from widgets/
FULL_HEIGHT = 160  # px, widget.css `.w` and `.p`: reserved before data, kept after
COMPACT_HEIGHT = 48

DEMO: dict[str, Any] = {
    "slug": "demo",
    "title": "Keep local news free",
    "currency": "USD",
    "locale": "en",
    "dir": "ltr",
    "raised": 146000,
    "goal": 500000,
    "scale_max": 500000,
    "percent": 29.2,
    "bar_percent": 29.2,
    "goal_reached": False,
    "status": "active",
    "donors": 37,
    "milestones": [
        {"amount": 250000, "label": "Halfway", "reached": False, "formatted": "$2,500"},
        {"amount": 500000, "label": None, "reached": False, "formatted": "$5,000"},
    ],
    "deadline": "2026-12-31",
    "donate_url": "http://127.0.0.1:9/donate/demo",
    "formatted": {
        "raised": "$1,460",
        "goal": "$5,000",
        "zero": "$0",
        "percent": "29%",
        "valuetext": "$1,460 raised of $5,000",
        "donors": "37 donors",
        "deadline": "37 days left",
        "button": "Support",
        "reached": "Goal reached!",
        "closed": "Closed",
    },
    "updated_at": "2026-11-24T16:00:00Z",
}


def campaign(slug: str, **changes: Any) -> dict[str, Any]:
    item = copy.deepcopy(DEMO)
    item.update(slug=slug, donate_url=f"http://127.0.0.1:9/donate/{slug}")
    formatted = changes.pop("formatted", {})
    item.update(changes)
    item["formatted"].update(formatted)
    return item


@dataclass
class FundgoalStub:
    """What the fixture fundgoal server answers, and what it was asked."""

    campaigns: dict[str, dict[str, Any]] = field(default_factory=dict)  # by slug
    delay: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> Starlette:
        async def script(request: HttpRequest) -> Response:
            return Response(
                SERVED,
                media_type="text/javascript",
                headers={"cache-control": "no-store"},
            )

        async def batch(request: HttpRequest) -> Response:
            query = request.query_params.get("c", "")
            self.requests.append({"c": query, "headers": dict(request.headers)})
            if self.delay:
                await asyncio.sleep(self.delay)
            items = {}
            for key in query.split(","):
                slug = key.partition(":")[0]
                items[key] = self.campaigns.get(slug, {"error": "not_found"})
            return JSONResponse(
                {"items": items},
                headers={
                    "access-control-allow-origin": "*",
                    "cache-control": "no-store",
                    # Honoured only if the loader sent credentials: it must not.
                    "set-cookie": "fundgoal_probe=1; Path=/; SameSite=Lax",
                },
            )

        return Starlette(routes=[Route("/widget.js", script), Route("/api/campaigns", batch)])


@dataclass
class Site:
    """The two origins: a news site with article pages, and the fundgoal stub."""

    news: str
    fundgoal: str
    stub: FundgoalStub
    pages: dict[str, str]

    def article(self, hosts: str, *, css: str = "", script: str | None = None) -> str:
        """Register an article page embedding `hosts`; returns its URL."""
        if script is None:
            script = f'<script async src="{self.fundgoal}/widget.js"></script>'
        name = f"article-{len(self.pages)}"
        self.pages[name] = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Article</title>
<style>body{{font:16px/1.5 Georgia,serif;margin:24px;width:560px}}{css}</style></head>
<body><article><h1>Local news</h1><p>Intro paragraph of the article.</p>
{hosts}
<p id="below">Text below the bar: it must never move.</p>
<div class="page-div">a page div</div></article>
{script}
</body></html>"""
        return f"{self.news}/{name}"

    def host(self, slug: str, *, style: str = "", **data: str) -> str:
        attributes = "".join(f' data-{k}="{v}"' for k, v in data.items())
        if style:
            attributes += f' style="{style}"'
        return (
            f'<div data-fundgoal="{slug}"{attributes}>'
            f'<a href="{self.fundgoal}/donate/{slug}">Support us</a></div>'
        )


@pytest.fixture
def site(serve: Callable[[Any], str]) -> Site:
    stub = FundgoalStub(campaigns={"demo": campaign("demo")})
    pages: dict[str, str] = {}

    async def article(request: HttpRequest) -> Response:
        name = request.path_params["name"]
        if name not in pages:
            return Response(status_code=404)
        return HTMLResponse(pages[name])

    news = serve(Starlette(routes=[Route("/{name}", article)]))
    return Site(news=news, fundgoal=serve(stub.app()), stub=stub, pages=pages)


@pytest.fixture
def calm(new_context: Callable[..., BrowserContext]) -> Page:
    """A page that prefers reduced motion, so the fill is at its final width at once."""
    return new_context(reduced_motion="reduce", viewport={"width": 800, "height": 900}).new_page()


def bars(page: Page, slug: str | None = None) -> Any:
    host = f'[data-fundgoal="{slug}"]' if slug else "[data-fundgoal]"
    return page.locator(f"{host} [role=progressbar]")  # Playwright's CSS pierces open shadows


def box(page: Page, selector: str) -> dict[str, float]:
    found = page.locator(selector).first.bounding_box()
    assert found is not None, f"{selector} has no box"
    return found


RGB = re.compile(r"rgba?\(([\d.]+),\s*([\d.]+),\s*([\d.]+)")


def luminance(css_color: str) -> float:
    match = RGB.match(css_color)
    assert match, f"not an rgb() colour: {css_color}"

    def channel(value: str) -> float:
        c = float(value) / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in match.groups())
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def shadow_styles(page: Page, slug: str, theme: str) -> dict[str, dict[str, str]]:
    """Computed colours of the bar's parts, read inside the host's shadow root."""
    return page.evaluate(
        """([slug, theme]) => {
            const host = document.querySelector(
                `[data-fundgoal="${slug}"][data-theme="${theme}"]`);
            const root = host.shadowRoot, out = {};
            for (const sel of ['.w', '.n', '.pc', '.mk', '.t', '.f', '.l', '.s', '.bt']) {
                const cs = getComputedStyle(root.querySelector(sel));
                out[sel] = {color: cs.color, background: cs.backgroundColor};
            }
            return out;
        }""",
        [slug, theme],
    )


def test_one_bar_renders_accessible_values_and_ticks(site: Site, calm: Page) -> None:
    calm.goto(site.article(site.host("demo", locale="en") + '<p class="w t bt">probe</p>'))
    bar = bars(calm, "demo")
    expect(bar).to_have_count(1)
    expect(bar).to_have_attribute("aria-valuemin", "0")
    expect(bar).to_have_attribute("aria-valuemax", "500000")
    expect(bar).to_have_attribute("aria-valuenow", "146000")
    expect(bar).to_have_attribute("aria-valuetext", "$1,460 raised of $5,000")
    expect(bar).to_have_accessible_name("Keep local news free")
    expect(calm.get_by_role("progressbar", name="Keep local news free")).to_be_visible()

    labels = calm.locator("[data-fundgoal] .l")
    assert sorted(labels.all_text_contents()) == ["$0", "$2,500", "$5,000"]
    expect(calm.locator("[data-fundgoal] .l", has_text="$2,500")).to_have_attribute(
        "title", "Halfway"
    )
    expect(calm.locator("[data-fundgoal] .x")).to_have_count(1)  # inner milestone tick only
    expect(calm.locator("[data-fundgoal] .mk")).to_have_text("$1,460")
    expect(calm.locator("[data-fundgoal] .s")).to_have_text("37 donors · 37 days left")
    button = calm.get_by_role("link", name="Support", exact=True)
    expect(button).to_have_attribute("href", "http://127.0.0.1:9/donate/demo")

    track, fill = box(calm, "[data-fundgoal] .t"), box(calm, "[data-fundgoal] .f")
    assert fill["width"] == pytest.approx(track["width"] * 0.292, abs=1)
    host = box(calm, "[data-fundgoal]")
    assert host["height"] == FULL_HEIGHT

    # The button is reachable from the keyboard and shows a focus ring.
    button.focus()
    outline = button.evaluate(
        "e => getComputedStyle(e).outlineStyle + ' ' + getComputedStyle(e).outlineWidth"
    )
    assert outline == "solid 3px"
    # The widget's CSS does not leak: a page element with the same class names is untouched.
    probe = calm.locator("p.w")
    assert probe.evaluate("e => getComputedStyle(e).backgroundColor") == "rgba(0, 0, 0, 0)"
    assert probe.evaluate("e => getComputedStyle(e).height") != f"{FULL_HEIGHT}px"


def test_three_bars_two_campaigns_one_request(site: Site, calm: Page) -> None:
    site.stub.campaigns["other"] = campaign("other", title="Fund the archive")
    hosts = site.host("other") + site.host("demo") + site.host("demo", compact="")
    calm.goto(site.article(hosts))
    expect(bars(calm)).to_have_count(3)
    expect(bars(calm, "demo")).to_have_count(2)
    expect(bars(calm, "other")).to_have_accessible_name("Fund the archive")
    calm.wait_for_timeout(200)  # room for a stray second request to show up
    assert [r["c"] for r in site.stub.requests] == ["demo:en,other:en"]  # sorted, deduplicated
    compact = box(calm, "[data-fundgoal][data-compact]")
    assert compact["height"] == COMPACT_HEIGHT


def test_hostile_page_css_cannot_break_the_bar(site: Site, calm: Page) -> None:
    hostile = "* { all: unset !important } div:not([data-fundgoal]) { display: none !important }"
    calm.goto(site.article(site.host("demo"), css=hostile))
    expect(calm.locator(".page-div")).to_be_hidden()  # the hostile CSS is in force
    bar = bars(calm, "demo")
    expect(bar).to_be_visible()
    track, fill = box(calm, "[data-fundgoal] .t"), box(calm, "[data-fundgoal] .f")
    assert track["width"] > 200
    assert track["height"] > 0
    assert fill["width"] == pytest.approx(track["width"] * 0.292, abs=1)
    expect(calm.get_by_role("link", name="Support", exact=True)).to_be_visible()
    assert box(calm, "[data-fundgoal] .w")["height"] == FULL_HEIGHT


def test_dark_theme_differs_and_keeps_contrast(site: Site, calm: Page) -> None:
    calm.goto(site.article(site.host("demo", theme="light") + site.host("demo", theme="dark")))
    expect(bars(calm)).to_have_count(2)
    light = shadow_styles(calm, "demo", "light")
    dark = shadow_styles(calm, "demo", "dark")
    assert light[".w"]["background"] != dark[".w"]["background"]
    assert light[".n"]["color"] != dark[".n"]["color"]
    for theme in (light, dark):
        background = theme[".w"]["background"]
        for text in (".n", ".pc", ".l", ".s"):
            assert contrast(theme[text]["color"], background) >= 4.5, (text, theme)
        assert contrast(theme[".mk"]["color"], theme[".mk"]["background"]) >= 4.5
        assert contrast(theme[".bt"]["color"], theme[".bt"]["background"]) >= 4.5
        # The filled part stands out from the empty track and from the card.
        assert contrast(theme[".f"]["background"], theme[".t"]["background"]) >= 3
        assert contrast(theme[".f"]["background"], background) >= 3


def test_auto_theme_follows_the_reader(
    site: Site, new_context: Callable[..., BrowserContext]
) -> None:
    url = site.article(site.host("demo", theme="auto"))
    backgrounds = []
    for scheme in ("light", "dark"):
        page = new_context(color_scheme=scheme, reduced_motion="reduce").new_page()
        page.goto(url)
        expect(bars(page)).to_have_count(1)
        backgrounds.append(shadow_styles(page, "demo", "auto")[".w"]["background"])
    assert backgrounds == ["rgb(255, 255, 255)", "rgb(17, 24, 39)"]


def test_rtl_campaign_fills_from_the_right(site: Site, calm: Page) -> None:
    site.stub.campaigns["ar"] = campaign("ar", locale="ar", dir="rtl", title="ادعموا الصحافة")
    calm.goto(site.article(site.host("ar", locale="ar")))
    expect(bars(calm, "ar")).to_have_count(1)
    track, fill = box(calm, "[data-fundgoal] .t"), box(calm, "[data-fundgoal] .f")
    assert fill["x"] + fill["width"] == pytest.approx(track["x"] + track["width"], abs=1)
    assert fill["x"] > track["x"] + track["width"] / 2
    # The raised marker sits over the fill's end, on the left of the filled part.
    marker = box(calm, "[data-fundgoal] .mk")
    assert marker["x"] <= fill["x"] <= marker["x"] + marker["width"]
    assert calm.locator("[data-fundgoal] .w").get_attribute("dir") == "rtl"


def test_without_javascript_the_fallback_link_shows(
    site: Site, new_context: Callable[..., BrowserContext]
) -> None:
    page = new_context(java_script_enabled=False).new_page()
    page.goto(site.article(site.host("demo")))
    link = page.get_by_role("link", name="Support us")
    expect(link).to_be_visible()
    expect(link).to_have_attribute("href", f"{site.fundgoal}/donate/demo")
    expect(page.get_by_role("progressbar")).to_have_count(0)
    assert site.stub.requests == []


SHIFTS = """window.__shifts = [];
new PerformanceObserver(list => {
    for (const e of list.getEntries()) window.__shifts.push([e.startTime, e.value]);
}).observe({type: 'layout-shift', buffered: true});"""

SETTLED_NOW = """() => new Promise(resolve => requestAnimationFrame(
    () => requestAnimationFrame(() => resolve(performance.now()))))"""


def test_no_layout_shift_while_data_is_slow(
    site: Site, new_context: Callable[..., BrowserContext]
) -> None:
    """From the moment the loader reserved the height, nothing on the page moves."""
    site.stub.delay = 0.3
    page = new_context(viewport={"width": 800, "height": 900}).new_page()
    page.add_init_script(SHIFTS)
    page.goto(site.article(site.host("demo") + site.host("demo", compact="true")))
    page.wait_for_function("document.querySelector('[data-fundgoal]').shadowRoot !== null")
    reserved_at = page.evaluate(SETTLED_NOW)
    waiting = [box(page, "[data-fundgoal]"), box(page, "[data-fundgoal][data-compact]")]
    below_before = box(page, "#below")
    assert [b["height"] for b in waiting] == [FULL_HEIGHT, COMPACT_HEIGHT]
    assert bars(page).count() == 0, "the answer should still be delayed"
    expect(bars(page)).to_have_count(2)
    page.wait_for_timeout(800)  # past the fill's transition
    rendered = [box(page, "[data-fundgoal]"), box(page, "[data-fundgoal][data-compact]")]
    assert [b["height"] for b in rendered] == [FULL_HEIGHT, COMPACT_HEIGHT]
    assert box(page, "#below") == below_before
    page.evaluate(SETTLED_NOW)
    shifts = page.evaluate("window.__shifts")
    assert sum(value for at, value in shifts if at > reserved_at) == 0


def test_cumulative_layout_shift_is_zero_when_the_page_reserves_the_height(
    site: Site, new_context: Callable[..., BrowserContext]
) -> None:
    """An async script runs after first paint, so only the page itself can reserve the space
    before any script runs: with the documented min-height on the host, CLS is exactly 0."""
    site.stub.delay = 0.3
    page = new_context(viewport={"width": 800, "height": 900}).new_page()
    page.add_init_script(SHIFTS)
    hosts = site.host("demo", style=f"min-height:{FULL_HEIGHT}px") + site.host(
        "demo", compact="", style=f"min-height:{COMPACT_HEIGHT}px"
    )
    page.goto(site.article(hosts))
    expect(bars(page)).to_have_count(2)
    page.wait_for_timeout(800)
    page.evaluate(SETTLED_NOW)
    assert page.evaluate("window.__shifts") == []


def test_tab_shown_again_refetches_and_renders_new_values(site: Site, calm: Page) -> None:
    calm.goto(site.article(site.host("demo")))
    bar = bars(calm, "demo")
    expect(bar).to_have_attribute("aria-valuenow", "146000")
    assert len(site.stub.requests) == 1

    def set_visibility(state: str) -> None:
        calm.evaluate(
            """state => {
                Object.defineProperty(document, 'visibilityState',
                    {configurable: true, get: () => state});
                Object.defineProperty(document, 'hidden',
                    {configurable: true, get: () => state === 'hidden'});
                document.dispatchEvent(new Event('visibilitychange'));
            }""",
            state,
        )

    set_visibility("hidden")
    calm.wait_for_timeout(100)
    assert len(site.stub.requests) == 1  # nothing happens while hidden

    site.stub.campaigns["demo"] = campaign(
        "demo",
        raised=260000,
        bar_percent=52,
        percent=52,
        formatted={"raised": "$2,600", "valuetext": "$2,600 raised of $5,000"},
    )
    set_visibility("visible")
    expect(bar).to_have_attribute("aria-valuenow", "260000")
    expect(bar).to_have_attribute("aria-valuetext", "$2,600 raised of $5,000")
    expect(calm.locator("[data-fundgoal] .mk")).to_have_text("$2,600")
    assert len(site.stub.requests) == 2


def test_no_cookies_and_no_third_party_requests(
    site: Site, new_context: Callable[..., BrowserContext]
) -> None:
    context = new_context()
    page = context.new_page()
    seen: list[Request] = []
    page.on("request", lambda request: seen.append(request))
    page.goto(site.article(site.host("demo")))
    expect(bars(page)).to_have_count(1)
    origins = {f"{urlsplit(r.url).scheme}://{urlsplit(r.url).netloc}" for r in seen}
    assert origins == {site.news, site.fundgoal}
    api = [r for r in seen if "/api/campaigns" in r.url]
    assert len(api) == 1
    assert "cookie" not in site.stub.requests[0]["headers"]
    assert context.cookies() == []  # the API's Set-Cookie was ignored: credentials omitted
    assert page.evaluate("localStorage.length + sessionStorage.length") == 0


def test_unknown_campaign_keeps_the_fallback(site: Site, calm: Page) -> None:
    hosts = site.host("missing") + site.host("Not A Slug") + site.host("demo")
    calm.goto(site.article(hosts))
    expect(bars(calm)).to_have_count(1)
    for slug in ("missing", "Not A Slug"):
        link = calm.locator(f'[data-fundgoal="{slug}"] a')
        expect(link).to_be_visible()
        expect(link).to_have_text("Support us")
        assert box(calm, f'[data-fundgoal="{slug}"]')["height"] < 40  # no reserved space left
    assert [r["c"] for r in site.stub.requests] == ["demo:en,missing:en"]


def test_unreachable_server_keeps_the_fallback(site: Site, calm: Page) -> None:
    calm.route("**/api/campaigns*", lambda route: route.fulfill(status=503, body="down"))
    calm.goto(site.article(site.host("demo")))
    link = calm.locator('[data-fundgoal="demo"] a')
    calm.wait_for_function(
        "() => document.querySelector('[data-fundgoal]').shadowRoot?.querySelector('.p') === null"
    )
    expect(link).to_be_visible()
    assert box(calm, '[data-fundgoal="demo"]')["height"] < 40


def test_options_hide_button_and_donors(site: Site, calm: Page) -> None:
    calm.goto(site.article(site.host("demo", button="false", donors="false")))
    expect(bars(calm)).to_have_count(1)
    expect(calm.locator("[data-fundgoal] .bt")).to_have_count(0)
    expect(calm.locator("[data-fundgoal] .s")).to_have_text("37 days left")


def test_closed_campaign_has_no_button(site: Site, calm: Page) -> None:
    site.stub.campaigns["done"] = campaign(
        "done", status="closed", goal_reached=True, formatted={"deadline": None}
    )
    calm.goto(site.article(site.host("done")))
    expect(bars(calm)).to_have_count(1)
    expect(calm.locator("[data-fundgoal] .bt")).to_have_count(0)
    expect(calm.locator("[data-fundgoal] .o .s").last).to_have_text("Closed")
    expect(calm.locator("[data-fundgoal] .w")).to_have_class(re.compile(r"\bg\b"))
    expect(calm.locator("[data-fundgoal] .pc")).to_have_text("Goal reached!")


def test_accent_is_validated(site: Site, calm: Page) -> None:
    hosts = site.host("demo", theme="light", accent="#7c3aed") + site.host(
        "demo", theme="dark", accent="red;background:url(//evil.example/x)"
    )
    calm.goto(site.article(hosts))
    expect(bars(calm)).to_have_count(2)
    fills = calm.locator("[data-fundgoal] .f")
    assert fills.nth(0).evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(124, 58, 237)"
    assert fills.nth(1).evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(52, 211, 153)"


def test_markup_in_data_renders_as_text(site: Site, calm: Page) -> None:
    evil = "<img src=x onerror=alert(1)>"
    site.stub.campaigns["xss"] = campaign("xss", title=evil, formatted={"donors": evil})
    dialogs: list[str] = []
    calm.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    calm.goto(site.article(site.host("xss")))
    expect(calm.locator("[data-fundgoal] .n")).to_have_text(evil)
    expect(bars(calm)).to_have_accessible_name(evil)
    expect(calm.locator("[data-fundgoal] img")).to_have_count(0)
    calm.wait_for_timeout(100)
    assert dialogs == []


def test_loader_added_after_the_page_loaded(site: Site, calm: Page) -> None:
    """The server's /widget.js stub injects the hashed script late: it must still work."""
    late = (
        "<script>addEventListener('load', () => setTimeout(() => {"
        "const s = document.createElement('script');"
        f"s.src = {json.dumps(site.fundgoal + '/widget.js')};"
        "document.body.append(s)}, 50))</script>"
    )
    calm.goto(site.article(site.host("demo") + site.host("demo", compact=""), script=late))
    expect(bars(calm)).to_have_count(2)
    assert len(site.stub.requests) == 1


def test_loading_the_script_twice_renders_each_bar_once(site: Site, calm: Page) -> None:
    tag = f'<script async src="{site.fundgoal}/widget.js"></script>'
    calm.goto(site.article(site.host("demo") + tag, script=tag))
    expect(bars(calm)).to_have_count(1)
    calm.wait_for_timeout(200)
    assert len(site.stub.requests) == 1


def test_without_constructable_stylesheets_the_fallback_link_stays(
    site: Site, new_context: Callable[..., BrowserContext]
) -> None:
    """Safari before 16.4 cannot construct a CSSStyleSheet: the host must keep showing its
    link, not get an empty shadow root that hides it."""
    page = new_context().new_page()
    page.add_init_script(
        "window.CSSStyleSheet = function () { throw new TypeError('Illegal constructor'); };"
    )
    page.goto(site.article(site.host("demo")))
    link = page.locator('[data-fundgoal="demo"] a')
    expect(link).to_be_visible()
    expect(link).to_have_text("Support us")
    assert page.evaluate("document.querySelector('[data-fundgoal]').shadowRoot") is None
    assert site.stub.requests == []  # no bar to draw, so nothing asked
