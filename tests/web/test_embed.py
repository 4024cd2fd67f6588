"""The widget's HTTP surface: bodies, every header, 304s, errors, freshness across workers."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from xml.etree import ElementTree

import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient

from fundgoal import db
from fundgoal.config import Settings
from fundgoal.money import Money
from fundgoal.services import gifts
from fundgoal.services.demo import seed_demo
from fundgoal.stores import campaigns
from fundgoal.web.app import create_app
from fundgoal.web.embed import PATHS
from fundgoal.widget_build import built
from tests.factories import make_campaign


@pytest.fixture
def demo(engine: Engine) -> None:
    with db.transaction(engine) as s:
        seed_demo(s)


@pytest.fixture
def client(settings: Settings, engine: Engine, demo: None) -> Iterator[TestClient]:
    with TestClient(create_app(settings, engine=engine)) as c:
        yield c


def give(engine: Engine, slug: str, dollars: int) -> None:
    with db.transaction(engine) as s:
        c = campaigns.by_slug(s, slug)
        assert c is not None
        gifts.record_offline_gift(s, c, Money.from_major(dollars, c.currency), actor="test")


def test_progress_json_is_the_contract(client: TestClient) -> None:
    r = client.get("/api/campaigns/demo")
    assert r.status_code == 200
    v = r.json()
    assert v["slug"] == "demo"
    assert v["currency"] == "USD"
    assert v["raised"] == 146_000  # 1,460 USD from the demo's five offline gifts
    assert v["goal"] == 500_000
    assert [m["amount"] for m in v["milestones"]] == [250_000, 500_000]
    assert v["milestones"][0]["label"].startswith("Halfway")
    assert v["percent"] == 29.2
    assert v["donors"] == 5
    assert v["formatted"]["raised"] == "$1,460"
    assert v["formatted"]["valuetext"] == "$1,460 raised of $5,000"
    assert v["donate_url"] == "http://testserver/donate/demo"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", v["updated_at"])


def test_locales_are_babels(client: TestClient) -> None:
    fr = client.get("/api/campaigns/demo?locale=fr").json()
    assert fr["formatted"]["raised"] == "1\u202f460\xa0$US"
    assert fr["dir"] == "ltr"
    ar = client.get("/api/campaigns/demo?locale=ar").json()
    assert ar["dir"] == "rtl"
    assert "US$" in ar["formatted"]["raised"]
    # an unknown but well-formed locale falls back to the default
    assert client.get("/api/campaigns/demo?locale=xx").json()["locale"] == "en"


def test_every_header(client: TestClient) -> None:
    r = client.get("/api/campaigns/demo")
    h = r.headers
    assert h["content-type"] == "application/json"
    assert h["cache-control"] == "public, max-age=15, stale-while-revalidate=60"
    assert h["access-control-allow-origin"] == "*"
    assert h["cross-origin-resource-policy"] == "cross-origin"
    assert h["x-content-type-options"] == "nosniff"
    assert re.fullmatch(r'"[0-9a-f]{24}"', h["etag"])
    assert int(h["content-length"]) == len(r.content)
    assert "set-cookie" not in h


def test_cache_lifetime_is_configurable(engine: Engine, demo: None, settings: Settings) -> None:
    from dataclasses import replace

    custom = replace(settings, widget_cache_seconds=30, widget_stale_seconds=5)
    with TestClient(create_app(custom, engine=engine)) as c:
        assert c.get("/api/campaigns/demo").headers["cache-control"] == (
            "public, max-age=30, stale-while-revalidate=5"
        )


def test_304_on_if_none_match(client: TestClient) -> None:
    first = client.get("/api/campaigns/demo")
    etag = first.headers["etag"]
    again = client.get("/api/campaigns/demo", headers={"if-none-match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert again.headers["access-control-allow-origin"] == "*"
    weak = client.get("/api/campaigns/demo", headers={"if-none-match": f'"nope", W/{etag}'})
    assert weak.status_code == 304
    other = client.get("/api/campaigns/demo", headers={"if-none-match": '"other"'})
    assert other.status_code == 200


def test_etag_changes_with_the_total(client: TestClient, engine: Engine) -> None:
    before = client.get("/api/campaigns/demo").headers["etag"]
    give(engine, "demo", 40)
    client.app.state.ctx.snapshots.refresh()  # type: ignore[attr-defined]
    after = client.get("/api/campaigns/demo")
    assert after.json()["raised"] == 150_000
    assert after.headers["etag"] != before
    assert client.get("/api/campaigns/demo", headers={"if-none-match": before}).status_code == 200


def test_batch_answers_several_campaigns_in_one_request(client: TestClient, engine: Engine) -> None:
    with db.transaction(engine) as s:
        make_campaign(s, slug="second", currency="EUR")
    client.app.state.ctx.snapshots.refresh()  # type: ignore[attr-defined]
    r = client.get("/api/campaigns?c=demo:en,second:fr,demo:fr,missing:en")
    assert r.status_code == 200
    items = r.json()["items"]
    assert set(items) == {"demo:en", "second:fr", "demo:fr", "missing:en"}
    assert items["demo:en"]["formatted"]["raised"] == "$1,460"
    assert items["second:fr"]["currency"] == "EUR"
    assert items["missing:en"] == {"error": "not_found"}
    assert r.headers["access-control-allow-origin"] == "*"
    assert (
        client.get(
            "/api/campaigns?c=demo:en", headers={"if-none-match": r.headers["etag"]}
        ).status_code
        == 200
    )
    same = client.get(
        "/api/campaigns?c=demo:en,second:fr,demo:fr,missing:en",
        headers={"if-none-match": r.headers["etag"]},
    )
    assert same.status_code == 304


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/api/campaigns/nope", 404),
        ("/api/campaigns/Bad_Slug", 400),
        ("/api/campaigns/..%2F..%2Fetc%2Fpasswd", 400),
        ("/api/campaigns/demo?locale=../../etc", 400),
        ("/api/campaigns/demo?locale=en%0d%0aSet-Cookie:x", 400),
        ("/api/campaigns/demo?locale=" + "a" * 200, 400),
        ("/api/campaigns?c=", 400),
        ("/api/campaigns?c=" + ",".join(f"s{i}:en" for i in range(30)), 400),
        ("/api/campaigns?c=BAD:en", 400),
        ("/campaigns/nope/badge.svg", 404),
        ("/campaigns/%00/badge.svg", 400),
        ("/embed/nope", 404),
        ("/embed/demo?theme=neon", 400),
        ("/embed/demo?accent=red;background:url(x)", 400),
    ],
)
def test_bad_requests_are_4xx_with_a_message(client: TestClient, url: str, status: int) -> None:
    r = client.get(url)
    assert r.status_code == status
    assert r.json()["error"]
    assert r.json()["message"]


def test_badge_svg(client: TestClient) -> None:
    r = client.get("/campaigns/demo/badge.svg")
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/svg+xml; charset=utf-8"
    assert r.headers["access-control-allow-origin"] == "*"
    root = ElementTree.fromstring(r.content)  # well-formed XML
    assert root.get("role") == "img"
    assert "$1,460 raised of $5,000" in (root.get("aria-label") or "")
    text = r.text
    for label in ("$0", "$2,500", "$5,000", "$1,460", "5 donors"):
        assert label in text
    assert "<script" not in text


def test_embed_page(client: TestClient) -> None:
    r = client.get("/embed/demo?theme=dark&accent=%23aa3355&compact=1&locale=fr")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    csp = r.headers["content-security-policy"]
    assert "frame-ancestors *" in csp
    assert "script-src" not in csp
    assert "default-src 'none'" in csp
    assert 'role="progressbar"' in r.text
    assert 'aria-valuenow="146000"' in r.text
    assert "1\u202f460\xa0$US" in r.text
    assert "<script" not in r.text


def test_embed_frame_ancestors_are_configurable(
    engine: Engine, demo: None, settings: Settings
) -> None:
    from dataclasses import replace

    strict = replace(settings, embed_frame_ancestors="https://news.example.org")
    with TestClient(create_app(strict, engine=engine)) as c:
        csp = c.get("/embed/demo").headers["content-security-policy"]
    assert "frame-ancestors https://news.example.org" in csp


def test_widget_js_is_the_script_itself(client: TestClient) -> None:
    """One request, not a stub that loads the script: a short cache, revalidated by ETag."""
    served = built().script
    plain = client.get("/widget.js", headers={"accept-encoding": "identity"})
    assert plain.status_code == 200
    assert plain.content == served
    assert plain.headers["content-type"] == "text/javascript; charset=utf-8"
    assert plain.headers["cache-control"] == "public, max-age=300, stale-while-revalidate=86400"
    assert plain.headers["access-control-allow-origin"] == "*"
    assert plain.headers["vary"] == "accept-encoding"
    assert "content-encoding" not in plain.headers
    assert re.fullmatch(r'"[0-9a-f]{12}"', plain.headers["etag"])

    zipped = client.get("/widget.js", headers={"accept-encoding": "gzip, br"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.content == served  # httpx decoded it
    # Strong tags name exact bytes: the gzip form has its own.
    assert zipped.headers["etag"] == plain.headers["etag"][:-1] + '-gz"'
    for response, encoding in ((plain, "identity"), (zipped, "gzip")):
        again = client.get(
            "/widget.js",
            headers={"if-none-match": response.headers["etag"], "accept-encoding": encoding},
        )
        assert again.status_code == 304
        assert again.content == b""
        assert again.headers["etag"] == response.headers["etag"]
        assert again.headers["cache-control"] == response.headers["cache-control"]
    stale = client.get("/widget.js", headers={"if-none-match": '"0123456789ab"'})
    assert stale.status_code == 200


def test_the_hashed_script_stays_for_those_who_pin_it(client: TestClient) -> None:
    pinned = client.get("/widget.js").headers["content-location"]
    assert re.fullmatch(r"/widget\.[0-9a-f]{12}\.js", pinned)
    script = client.get(pinned)
    assert script.status_code == 200
    assert script.content == built().script
    assert script.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert script.headers["access-control-allow-origin"] == "*"
    assert client.get(pinned, headers={"if-none-match": script.headers["etag"]}).status_code == 304
    old = client.get("/widget.0123456789ab.js", follow_redirects=False)
    assert old.status_code == 307
    assert old.headers["location"] == pinned


def test_every_fast_path_route_is_answered_before_routing(client: TestClient) -> None:
    digest = client.get("/widget.js").headers["content-location"].split(".")[1]
    for path, methods in PATHS:
        url = path.format(slug="demo", hash=digest) + (
            "?c=demo:en" if path == "/api/campaigns" else ""
        )
        assert methods == ("GET",)
        answer = client.get(url)
        assert answer.status_code == 200, url
        assert answer.headers["access-control-allow-origin"] == "*", url  # the fast path's


def test_embed_page_inlines_the_minified_stylesheet(client: TestClient) -> None:
    page = client.get("/embed/demo").text
    assert built().stylesheet in page
    assert "legend" not in page  # widget.css's comments stay in the source


def test_archived_campaign_keeps_its_final_state(client: TestClient, engine: Engine) -> None:
    from fundgoal.models import CampaignStatus
    from fundgoal.services import campaigns as service

    with db.transaction(engine) as s:
        service.set_status(s, "demo", CampaignStatus.ARCHIVED, actor="test")
    client.app.state.ctx.snapshots.refresh()  # type: ignore[attr-defined]
    v = client.get("/api/campaigns/demo").json()
    assert v["status"] == "archived"
    assert v["raised"] == 146_000


def test_no_database_work_per_request(client: TestClient, engine: Engine) -> None:
    from sqlalchemy import event

    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", count)
    try:
        for _ in range(20):
            assert client.get("/api/campaigns/demo?locale=de").status_code == 200
            assert client.get("/api/campaigns?c=demo:en").status_code == 200
            assert client.get("/campaigns/demo/badge.svg").status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert [s for s in statements if "campaign" in s.lower() and "count" not in s.lower()] == []


def test_another_worker_sees_a_gift_within_a_second(
    settings: Settings, engine: Engine, demo: None
) -> None:
    """Two app instances (two workers) on one database: a write through either shows in both."""
    from dataclasses import replace

    fast = replace(settings, snapshot_check_seconds=0.2)
    with TestClient(create_app(fast)) as one, TestClient(create_app(fast)) as two:
        assert one.get("/api/campaigns/demo").json()["raised"] == 146_000
        assert two.get("/api/campaigns/demo").json()["raised"] == 146_000
        give(engine, "demo", 25)  # committed by "another process"
        deadline = time.monotonic() + 1.0
        seen = {}
        while time.monotonic() < deadline and len(seen) < 2:
            for name, c in (("one", one), ("two", two)):
                if c.get("/api/campaigns/demo").json()["raised"] == 148_500:
                    seen[name] = time.monotonic()
            time.sleep(0.05)
        assert set(seen) == {"one", "two"}, "a worker did not see the gift within one second"


def test_widget_keeps_answering_when_the_database_goes_away(
    client: TestClient, engine: Engine
) -> None:
    keeper = client.app.state.ctx.snapshots  # type: ignore[attr-defined]
    good = client.get("/api/campaigns/demo").json()
    keeper._engine = db.make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    assert keeper.refresh() is False
    assert client.get("/api/campaigns/demo").json() == good
    health = client.get("/healthz").json()
    assert health["widget"]["healthy"] is False
    keeper._engine = engine
    keeper.refresh()
    assert client.get("/healthz").json()["widget"]["healthy"] is True


def test_writers_share_a_refresh_that_began_after_their_commit(
    client: TestClient, engine: Engine
) -> None:
    keeper = client.app.state.ctx.snapshots  # type: ignore[attr-defined]
    give(engine, "demo", 25)
    committed = time.monotonic()
    keeper.refresh(since=committed)  # (the app's poller may have got there first)
    assert client.get("/api/campaigns/demo").json()["raised"] == 148_500
    # A writer that committed before a refresh began reading does not ask again...
    rebuilds = keeper.rebuilds
    assert keeper.refresh(since=committed) is False
    assert keeper.rebuilds == rebuilds
    # ...and one that committed later still sees its own gift at once.
    give(engine, "demo", 25)
    keeper.refresh(since=time.monotonic())
    assert client.get("/api/campaigns/demo").json()["raised"] == 151_000
