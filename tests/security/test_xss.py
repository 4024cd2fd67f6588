"""Markup in everything people type (admins: campaign title, description, milestone labels;
donors: name and message) renders as text everywhere it is shown: the donation page and its
donor wall, the thanks page, the embed page, the SVG badge, the progress JSON, every admin page
and the CSV export. The browser half (the loader, dialogs) is tests/browser/test_security.py."""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import Engine, select
from sqlmodel import Session
from starlette.testclient import TestClient

from fundgoal.config import Secret, Settings
from fundgoal.models import LedgerEntry
from fundgoal.services import admins
from fundgoal.web.app import create_app
from tests.conftest import TEST_SECRET_KEY
from tests.web.admin.conftest import make_admin, sign_in
from tests.web.admin.test_campaigns import form as campaign_form

PAYLOADS = {
    "script": "<script>alert(1)</script>",
    "attribute_break": '"><img src=x onerror=alert(1)>',
    "javascript_url": "javascript:alert(1)//",
    "style_break": "</style><script>alert(1)</script>",
    # (milestone labels are at most 80 characters)
    "svg_foreign_object": "<svg><foreignObject><img src=x onerror=alert(1)></foreignObject></svg>",
}
SLUG = "xss-appeal"


class Tags(HTMLParser):
    """Every start tag with its attributes, and every script's source."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.scripts: list[str] = []
        self.text: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._in_script:
            self.scripts.append(data)


def assert_inert(page: str, payload: str, where: str, *, shown: bool = True) -> None:
    """No element, handler or URL came from the payload; it is there, as text."""
    parser = Tags()
    parser.feed(page)
    for tag, attrs in parser.tags:
        assert tag != "foreignobject", f"{where}: <{tag}> injected"
        assert not (tag == "img" and ("src", "x") in attrs), f"{where}: <img src=x> injected"
        for name, value in attrs:
            assert not name.startswith("on"), f"{where}: <{tag} {name}=…> injected"
            if name in {"href", "src", "action", "formaction", "xlink:href"} and value:
                assert not value.strip().lower().startswith("javascript:"), (
                    f"{where}: {name}={value!r}"
                )
    assert not any("alert(1)" in s for s in parser.scripts), f"{where}: script injected"
    text = "".join(parser.text) + " ".join(v or "" for _, a in parser.tags for _, v in a)
    assert not shown or payload in text, f"{where}: the payload is not shown"


def shown_count(page: str, payload: str) -> int:
    parser = Tags()
    parser.feed(page)
    return "".join(parser.text).count(payload)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        env="test",
        public_url="http://testserver",
        secret_key=Secret(TEST_SECRET_KEY),
        snapshot_check_seconds=3600,
    )


@pytest.fixture
def site(
    settings: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch, request: Any
) -> Iterator[tuple[TestClient, str, str, str]]:
    """A campaign made through the admin form and a gift made through the donation form and
    the test checkout, all with the payload: (client, csrf, payload, thanks URL)."""
    payload = PAYLOADS[request.param]
    monkeypatch.setattr(admins, "_hasher", PasswordHasher(time_cost=1, memory_cost=64))
    make_admin(engine)
    with TestClient(create_app(settings, engine=engine)) as client:
        token = sign_in(client)
        made = client.post(
            "/admin/campaigns/new",
            data=campaign_form(
                token,
                slug=SLUG,
                title=payload,
                description=payload,
                ms_label=[payload, payload, payload, ""],
                min_amount="1",
            ),
            follow_redirects=False,
        )
        assert made.status_code == 303, made.text
        page = client.get(f"/donate/{SLUG}")
        donate_token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert donate_token
        answer = client.post(
            f"/donate/{SLUG}",
            data={
                "csrf_token": donate_token.group(1),
                "amount": "3000",
                "frequency": "once",
                "name": payload,
                "message": payload,
            },
            follow_redirects=False,
        )
        assert answer.status_code == 303, answer.text
        paid = client.post(
            answer.headers["location"],
            data={"csrf_token": donate_token.group(1), "action": "pay"},
            follow_redirects=False,
        )
        assert paid.status_code == 303
        yield client, token, payload, paid.headers["location"]


def entry_id(engine: Engine) -> int:
    with Session(engine) as s:
        entry = s.scalars(select(LedgerEntry)).one()
        assert entry.id is not None
        return entry.id


ALL = pytest.mark.parametrize("site", sorted(PAYLOADS), indirect=True)


@ALL
def test_public_pages_show_the_payload_as_text(site: tuple[TestClient, str, str, str]) -> None:
    client, _, payload, thanks = site
    for url in (f"/donate/{SLUG}", thanks, f"/embed/{SLUG}", f"/embed/{SLUG}?compact=1"):
        answer = client.get(url)
        assert answer.status_code == 200, url
        assert_inert(answer.text, payload, url)
    # title, description, and the donor's name and message on the wall
    assert shown_count(client.get(f"/donate/{SLUG}").text, payload) >= 4


@ALL
def test_the_badge_is_an_svg_without_active_content(
    site: tuple[TestClient, str, str, str],
) -> None:
    client, _, payload, _ = site
    answer = client.get(f"/campaigns/{SLUG}/badge.svg")
    assert answer.headers["content-type"].startswith("image/svg+xml")
    root = ET.fromstring(answer.text)  # well-formed: the payload did not break out
    texts = []
    for element in root.iter():
        local = element.tag.rsplit("}", 1)[-1].lower()
        assert local not in {"script", "foreignobject", "iframe", "a", "use", "image"}, local
        for name, value in element.attrib.items():
            assert not name.rsplit("}", 1)[-1].lower().startswith("on"), name
            assert "javascript:" not in value.lower() or name.endswith("label"), (name, value)
        texts.extend(t for t in (element.text, element.get("aria-label")) if t)
    assert any(payload in t for t in texts), "the title is not in the badge"


@ALL
def test_the_json_carries_the_payload_as_data(site: tuple[TestClient, str, str, str]) -> None:
    client, _, payload, _ = site
    answer = client.get(f"/api/campaigns/{SLUG}")
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.headers["x-content-type-options"] == "nosniff"
    body = answer.json()
    assert body["title"] == payload
    assert payload in {m["label"] for m in body["milestones"]}
    assert "<" not in answer.text.split('"title"')[0]  # nothing before the data is markup


@ALL
def test_admin_pages_show_the_payload_as_text(
    site: tuple[TestClient, str, str, str], engine: Engine
) -> None:
    client, _, payload, _ = site
    gift = entry_id(engine)
    for url in (
        "/admin",
        "/admin/campaigns",
        f"/admin/campaigns/{SLUG}",
        f"/admin/campaigns/{SLUG}/reports",
        f"/admin/campaigns/{SLUG}/embed",
        "/admin/donations",
        f"/admin/donations/{gift}",
        "/admin/audit",
    ):
        answer = client.get(url)
        assert answer.status_code == 200, url
        assert_inert(answer.text, payload, url)


FORMULAS = [
    '=HYPERLINK("http://evil.example","x")',
    "+1+1",
    "-2+3",
    "@SUM(A1)",
    "=cmd|' /C calc'!A0",
]


@pytest.mark.parametrize("formula", FORMULAS)
def test_donor_typed_formulas_are_neutralised_in_the_csv_export(
    settings: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch, formula: str
) -> None:
    """The donor, not an admin, chose this name: the export must not run it in a spreadsheet."""
    monkeypatch.setattr(admins, "_hasher", PasswordHasher(time_cost=1, memory_cost=64))
    make_admin(engine)
    with TestClient(create_app(settings, engine=engine)) as client:
        token = sign_in(client)
        client.post(
            "/admin/campaigns/new",
            data=campaign_form(token, slug=SLUG, min_amount="1"),
            follow_redirects=False,
        )
        page = client.get(f"/donate/{SLUG}")
        donate_token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert donate_token
        answer = client.post(
            f"/donate/{SLUG}",
            data={
                "csrf_token": donate_token.group(1),
                "amount": "20",
                "frequency": "once",
                "name": formula,
                "message": formula,
            },
            follow_redirects=False,
        )
        client.post(
            answer.headers["location"], data={"csrf_token": donate_token.group(1), "action": "pay"}
        )
        export = client.get("/admin/donations/export.csv")
        assert export.status_code == 200
        rows = list(csv.DictReader(io.StringIO(export.text)))
        assert rows, "the gift is not in the export"
        for row in rows:
            for column, value in row.items():
                assert not (value or "").startswith(("=", "+", "-", "@", "\t", "\r")), (
                    column,
                    value,
                )
        assert rows[0]["donor_name"] == "'" + formula
