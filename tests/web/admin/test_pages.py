"""Reports, the embed code page and the audit log."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from starlette.testclient import TestClient

from fundgoal import db
from fundgoal.money import Money
from fundgoal.services import gifts
from tests.factories import make_campaign

Client = tuple[TestClient, str]


def test_reports_draw_svg_charts_and_tables(signed_in: Client, engine: Engine) -> None:
    client, _ = signed_in
    with db.transaction(engine) as s:
        c = make_campaign(s, slug="alpha")
        start = datetime(2026, 3, 2, 12, tzinfo=UTC)
        for i, source in enumerate(["cash", "cheque", "cash", "bank_transfer"]):
            gifts.record_offline_gift(
                s,
                c,
                Money(10_000 * (i + 1), "USD"),
                actor="t",
                source=source,
                occurred_at=start + timedelta(days=3 * i),
            )
    for bucket in ("day", "week", "month"):
        page = client.get(f"/admin/campaigns/alpha/reports?by={bucket}")
        assert page.status_code == 200
        assert page.text.count('<svg class="chart"') == 2
        assert "<polyline" in page.text
        assert "Goal $5,000" in page.text
        assert "$1,000 counted from 4 gifts" in page.text
        assert "<script" not in page.text.split("</head>")[1]
    daily = client.get("/admin/campaigns/alpha/reports?by=day").text
    assert "2026-03-11" in daily
    monthly = client.get("/admin/campaigns/alpha/reports?by=month").text
    assert "2026-03-01" in monthly
    assert client.get("/admin/campaigns/alpha/reports?by=century").status_code == 200


def test_reports_without_gifts(signed_in: Client, engine: Engine) -> None:
    client, _ = signed_in
    with db.transaction(engine) as s:
        make_campaign(s, slug="alpha")
    assert "No counted gifts yet." in client.get("/admin/campaigns/alpha/reports").text


def snippets(page: str) -> dict[str, str]:
    found = re.findall(r'<textarea id="snippet-(\w+)"[^>]*>(.*?)</textarea>', page, re.S)
    return {k: html.unescape(v) for k, v in found}


def test_embed_code_page(signed_in: Client, engine: Engine) -> None:
    client, _ = signed_in
    with db.transaction(engine) as s:
        make_campaign(s, slug="alpha", title='Say "hi" & <b>')
    page = client.get("/admin/campaigns/alpha/embed").text
    code = snippets(page)
    assert code["script"] == (
        '<div data-fundgoal="alpha" data-locale="en" data-theme="auto" data-accent="#0b6e4f">'
        '<a href="http://testserver/donate/alpha">Support us</a></div>\n'
        '<script async src="http://testserver/widget.js"></script>'
    )
    assert code["iframe"].startswith(
        '<iframe src="http://testserver/embed/alpha?locale=en&theme=auto&accent=%230b6e4f"'
    )
    assert 'title="Say &quot;hi&quot; &amp; &lt;b&gt;: fundraising progress"' in code["iframe"]
    assert code["image"].startswith(
        '<img src="http://testserver/campaigns/alpha/badge.svg?locale=en" alt="Say &quot;hi'
    )
    assert 'src="/embed/alpha?locale=en&amp;theme=auto&amp;accent=%230b6e4f"' in page
    assert 'data-copy="snippet-script"' in page
    assert '<script src="/static/admin/admin.js" defer></script>' in page
    # options change the snippets and the preview
    chosen = client.get(
        "/admin/campaigns/alpha/embed?locale=fr&theme=dark&accent=%23AA0000&compact=1"
    ).text
    code = snippets(chosen)
    assert (
        'data-locale="fr" data-theme="dark" data-accent="#aa0000" data-compact>' in code["script"]
    )
    assert "locale=fr&theme=dark&accent=%23aa0000&compact=1" in code["iframe"]
    assert (
        'src="/embed/alpha?locale=fr&amp;theme=dark&amp;accent=%23aa0000&amp;compact=1"' in chosen
    )
    # the preview URL is one the widget's embed route accepts
    client.app.state.ctx.snapshots.refresh()  # type: ignore[attr-defined]
    preview = client.get("/embed/alpha?locale=fr&theme=dark&accent=%23aa0000&compact=1")
    assert preview.status_code == 200
    bad = client.get("/admin/campaigns/alpha/embed?accent=javascript:alert(1)")
    assert bad.status_code == 200
    assert "hex colour" in bad.text
    assert "javascript:" not in snippets(bad.text)["script"]


def test_campaign_theme_defaults_feed_the_embed_page(signed_in: Client, engine: Engine) -> None:
    client, _ = signed_in
    with db.transaction(engine) as s:
        c = make_campaign(s, slug="alpha")
        c.theme = {"locale": "de", "theme": "light", "accent": "#123456", "compact": True}
        s.add(c)
    code = snippets(client.get("/admin/campaigns/alpha/embed").text)
    assert (
        'data-locale="de" data-theme="light" data-accent="#123456" data-compact' in code["script"]
    )


def test_audit_log_pages(signed_in: Client, engine: Engine) -> None:
    client, _ = signed_in
    with db.transaction(engine) as s:
        c = make_campaign(s, slug="alpha")
        for _ in range(55):
            gifts.record_offline_gift(s, c, Money(100, "USD"), actor="cli")
    page = client.get("/admin/audit")
    assert page.status_code == 200
    assert page.text.count("<code>gift.record</code>") == 50
    older = re.search(r'href="(/admin/audit\?before=\d+)"', page.text)
    assert older is not None
    rest = client.get(older.group(1)).text
    assert "campaign.create" in rest
    overview = client.get("/admin").text
    assert "Recent changes" in overview
    assert "gift.record" in overview
