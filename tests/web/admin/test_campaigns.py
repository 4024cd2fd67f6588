"""Campaign pages: create, edit, close/reopen/archive, totals repair; bad input saves nothing."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, select, update
from sqlmodel import Session
from starlette.testclient import TestClient

from fundgoal import db
from fundgoal.models import AuditLog, Campaign
from fundgoal.money import Money
from fundgoal.services import gifts
from tests.factories import make_campaign

Client = tuple[TestClient, str]


def form(csrf: str, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "csrf": csrf,
        "slug": "spring-appeal",
        "title": "Spring appeal",
        "description": "Help us",
        "currency": "usd",
        "ms_amount": ["2,500", "5000", "7500", ""],
        "ms_label": ["Halfway", "Goal", "Stretch", ""],
        "ms_kind": ["goal", "goal", "stretch", "goal"],
        "deadline": "2026-12-31",
        "policy": "stretch",
        "presets": "10, 25, 50",
        "min_amount": "5",
        "max_amount": "5000",
        "donor_wall": "on",
        "locale": "fr",
        "theme": "dark",
        "accent": "#AA3300",
    }
    data.update(overrides)
    return data


def campaign(engine: Engine, slug: str) -> Campaign | None:
    with Session(engine) as s:
        return s.scalars(select(Campaign).where(Campaign.slug == slug)).first()


def snapshot(engine: Engine) -> tuple[list[dict[str, Any]], int]:
    with Session(engine) as s:
        rows = [c.model_dump() for c in s.scalars(select(Campaign).order_by(Campaign.id))]
        audits = len(s.scalars(select(AuditLog.id)).all())
    return rows, audits


def test_create_a_campaign_with_milestones(signed_in: Client, engine: Engine) -> None:
    client, csrf = signed_in
    answer = client.post("/admin/campaigns/new", data=form(csrf), follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/admin/campaigns/spring-appeal?saved=1"
    c = campaign(engine, "spring-appeal")
    assert c is not None
    assert c.currency == "USD"
    assert c.milestones == [
        {"amount": 250_000, "label": "Halfway", "stretch": False},
        {"amount": 500_000, "label": "Goal", "stretch": False},
        {"amount": 750_000, "label": "Stretch", "stretch": True},
    ]
    assert c.over_goal_policy == "stretch"
    assert str(c.deadline) == "2026-12-31"
    assert c.preset_amounts == [1000, 2500, 5000]
    assert (c.min_amount, c.max_amount) == (500, 500_000)
    assert c.theme == {"locale": "fr", "theme": "dark", "accent": "#aa3300", "compact": False}
    page = client.get(answer.headers["location"])
    assert "Saved." in page.text
    assert 'value="2500"' in page.text
    assert "campaign.create" in page.text  # its history, with who did it
    assert "editor@example.org" in page.text
    # The widget answers for it at once.
    assert client.get("/api/campaigns/spring-appeal").json()["goal"] == 500_000


BAD_INPUTS = [
    ({"ms_amount": ["5000", "2500"]}, "milestone amounts must increase"),
    ({"ms_amount": ["-5", ""]}, "more than zero"),
    ({"ms_amount": ["", "", ""], "ms_label": ["", "", ""]}, "add at least one"),
    ({"ms_kind": ["stretch", "stretch", "stretch"]}, "at least one milestone must be a goal"),
    ({"ms_kind": ["goal", "stretch", "goal"]}, "stretch milestones must come after the goal"),
    ({"slug": "Not A Slug!"}, "a slug is"),
    ({"title": ""}, "Title: this field is required"),
    ({"currency": "XYZ"}, "unknown currency"),
    ({"deadline": "31/12/2026"}, "Deadline"),
    ({"policy": "explode"}, "Over-goal policy"),
    ({"min_amount": "100", "max_amount": "10"}, "minimum gift"),
    ({"presets": "1, abc"}, "Preset amounts"),
    ({"presets": "10000"}, "between the minimum and maximum"),
    ({"accent": "red"}, "hex colour"),
    ({"locale": "not a locale"}, "locale"),
    ({"ms_amount": ["2500.123", "5000"]}, "at most 2 decimal places"),
]


@pytest.mark.parametrize(("overrides", "message"), BAD_INPUTS)
def test_bad_input_is_refused_with_a_clear_message_and_nothing_saved(
    signed_in: Client, engine: Engine, overrides: dict[str, Any], message: str
) -> None:
    client, csrf = signed_in
    before = snapshot(engine)
    answer = client.post("/admin/campaigns/new", data=form(csrf, **overrides))
    assert answer.status_code == 400
    assert "Nothing was saved." in answer.text
    assert message.lower() in answer.text.lower()
    assert snapshot(engine) == before
    # What was typed is shown again.
    assert 'value="Spring appeal"' in answer.text or overrides.get("title") == ""


def test_a_duplicate_slug_is_refused(signed_in: Client, engine: Engine) -> None:
    client, csrf = signed_in
    with db.transaction(engine) as s:
        make_campaign(s, slug="spring-appeal")
    before = snapshot(engine)
    answer = client.post("/admin/campaigns/new", data=form(csrf))
    assert answer.status_code == 409
    assert "already exists" in answer.text
    assert snapshot(engine) == before


def test_edit_bumps_the_version_and_is_audited(signed_in: Client, engine: Engine) -> None:
    client, csrf = signed_in
    with db.transaction(engine) as s:
        make_campaign(s, slug="spring-appeal")
    version = campaign(engine, "spring-appeal").version  # type: ignore[union-attr]
    answer = client.post(
        "/admin/campaigns/spring-appeal",
        data=form(csrf, title="Spring appeal 2026", reason="new year"),
        follow_redirects=False,
    )
    assert answer.status_code == 303
    c = campaign(engine, "spring-appeal")
    assert c is not None
    assert c.title == "Spring appeal 2026"
    assert c.version == version + 1
    assert c.milestones[-1] == {"amount": 750_000, "label": "Stretch", "stretch": True}
    with Session(engine) as s:
        entry = s.scalars(select(AuditLog).where(AuditLog.action == "campaign.edit")).one()
    assert entry.actor == "editor@example.org"
    assert entry.admin_id is not None
    assert entry.reason == "new year"
    assert entry.before is not None
    assert entry.after is not None
    assert entry.after["title"] == "Spring appeal 2026"
    assert entry.before["title"] != entry.after["title"]
    assert client.get("/api/campaigns/spring-appeal").json()["title"] == "Spring appeal 2026"


def test_saving_without_changes_does_not_bump_the_version(
    signed_in: Client, engine: Engine
) -> None:
    client, csrf = signed_in
    client.post("/admin/campaigns/new", data=form(csrf))
    version = campaign(engine, "spring-appeal").version  # type: ignore[union-attr]
    client.post("/admin/campaigns/spring-appeal", data=form(csrf))
    assert campaign(engine, "spring-appeal").version == version  # type: ignore[union-attr]


def test_the_slug_never_changes_on_edit(signed_in: Client, engine: Engine) -> None:
    client, csrf = signed_in
    client.post("/admin/campaigns/new", data=form(csrf))
    client.post("/admin/campaigns/spring-appeal", data=form(csrf, slug="renamed"))
    assert campaign(engine, "renamed") is None
    assert campaign(engine, "spring-appeal") is not None


def test_currency_is_fixed_once_a_gift_exists(signed_in: Client, engine: Engine) -> None:
    client, csrf = signed_in
    with db.transaction(engine) as s:
        c = make_campaign(s, slug="spring-appeal")
    assert (
        client.post(
            "/admin/campaigns/spring-appeal",
            data=form(csrf, currency="eur"),
            follow_redirects=False,
        ).status_code
        == 303
    )
    assert campaign(engine, "spring-appeal").currency == "EUR"  # type: ignore[union-attr]
    with db.transaction(engine) as s:
        c = s.get(Campaign, c.id)
        assert c is not None
        gifts.record_offline_gift(s, c, Money(1000, "EUR"), actor="test")
    page = client.get("/admin/campaigns/spring-appeal")
    assert "Fixed: the campaign already has donations." in page.text
    before = snapshot(engine)
    answer = client.post("/admin/campaigns/spring-appeal", data=form(csrf, currency="usd"))
    assert answer.status_code == 409
    assert "the currency stays EUR" in answer.text
    assert snapshot(engine) == before


def test_close_reopen_archive(signed_in: Client, engine: Engine) -> None:
    client, csrf = signed_in
    with db.transaction(engine) as s:
        make_campaign(s, slug="spring-appeal")

    def act(action: str, reason: str = "") -> int:
        answer = client.post(
            "/admin/campaigns/spring-appeal/status",
            data={"csrf": csrf, "action": action, "reason": reason},
            follow_redirects=False,
        )
        return answer.status_code

    version = campaign(engine, "spring-appeal").version  # type: ignore[union-attr]
    assert act("close", "paused for the holidays") == 303
    assert campaign(engine, "spring-appeal").status == "closed"  # type: ignore[union-attr]
    assert client.get("/api/campaigns/spring-appeal").json()["status"] == "closed"
    assert act("close") == 409
    assert act("reopen") == 303
    assert campaign(engine, "spring-appeal").status == "active"  # type: ignore[union-attr]
    assert act("explode") == 400
    assert act("archive") == 303
    c = campaign(engine, "spring-appeal")
    assert c is not None
    assert c.status == "archived"
    assert c.version == version + 3
    assert act("reopen") == 409
    before = snapshot(engine)
    assert client.post("/admin/campaigns/spring-appeal", data=form(csrf)).status_code == 409
    assert snapshot(engine) == before
    with Session(engine) as s:
        actions = [a.action for a in s.scalars(select(AuditLog).order_by(AuditLog.id))]
        reasons = [a.reason for a in s.scalars(select(AuditLog).order_by(AuditLog.id))]
    assert actions[-3:] == ["campaign.closed", "campaign.active", "campaign.archived"]
    assert "paused for the holidays" in reasons


def test_unknown_campaign_is_a_404(signed_in: Client) -> None:
    client, csrf = signed_in
    page = client.get("/admin/campaigns/nope")
    assert page.status_code == 404
    assert "no campaign called &#39;nope&#39;" in page.text
    assert "unsafe-inline" not in page.headers["content-security-policy"]
    assert "Sign out everywhere" in page.text  # the dashboard's own layout
    assert client.get("/admin/campaigns/nope/reports").status_code == 404
    assert client.get("/admin/campaigns/nope/embed").status_code == 404
    assert client.post("/admin/campaigns/nope", data=form(csrf)).status_code == 404


def test_overview_shows_bars_and_repairs_drift(signed_in: Client, engine: Engine) -> None:
    client, csrf = signed_in
    with db.transaction(engine) as s:
        c = make_campaign(s, slug="spring-appeal", milestones=(100_000,))
        gifts.record_offline_gift(
            s, c, Money(25_000, "USD"), actor="test", donor_email="a@example.org"
        )
    page = client.get("/admin")
    assert "$250" in page.text
    assert "$1,000" in page.text
    assert 'width="25.0"' in page.text  # the bar, drawn by the server
    assert "Totals disagree" not in page.text
    with db.transaction(engine) as s:
        s.execute(update(Campaign).values(raised=99, donors=7))
    page = client.get("/admin")
    assert "Totals disagree with the ledger." in page.text
    answer = client.post(
        "/admin/campaigns/spring-appeal/repair", data={"csrf": csrf}, follow_redirects=False
    )
    assert answer.status_code == 303
    c2 = campaign(engine, "spring-appeal")
    assert c2 is not None
    assert (c2.raised, c2.donors) == (25_000, 1)
    assert "Totals disagree" not in client.get("/admin").text
    with Session(engine) as s:
        entry = s.scalars(select(AuditLog).where(AuditLog.action == "campaign.repair_totals")).one()
    assert entry.before == {"raised": 99, "donors": 7}
    assert entry.after == {"raised": 25_000, "donors": 1}


def test_campaign_list(signed_in: Client, engine: Engine) -> None:
    client, _ = signed_in
    with db.transaction(engine) as s:
        make_campaign(s, slug="alpha", title="Alpha <script>")
    page = client.get("/admin/campaigns")
    assert "Alpha &lt;script&gt;" in page.text
    assert "/admin/campaigns/alpha" in page.text
