"""The dashboard in real Chromium: sign-in, a campaign with milestones, an offline gift moving
the public total, CSV export and copying the embed code (all under the admin CSP)."""

from __future__ import annotations

import csv
import io
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, ConsoleMessage, Page, expect
from sqlalchemy import Engine, select
from sqlmodel import Session

from fundgoal import db
from fundgoal.config import Settings
from fundgoal.models import Campaign
from fundgoal.services import admins
from fundgoal.web.app import create_app
from tests.factories import make_campaign

PUBLIC_URL = "https://fund.example.org"  # what the snippets name; the browser uses the live URL


@dataclass
class LiveServer:
    url: str
    engine: Engine


@pytest.fixture
def live_admin_server(
    serve: Callable[[Any], str], tmp_path: Path, sqlite_template: Path
) -> Iterator[LiveServer]:
    """The real app under uvicorn on a fresh migrated SQLite database."""
    path = tmp_path / "browser.db"
    shutil.copy(sqlite_template, path)
    settings = Settings(database_url=f"sqlite:///{path}", env="test", public_url=PUBLIC_URL)
    engine = db.make_engine(settings.database_url)
    yield LiveServer(serve(create_app(settings, engine=engine)), engine)
    engine.dispose()


@pytest.fixture
def admin_page(
    new_context: Callable[..., BrowserContext], live_admin_server: LiveServer
) -> Iterator[Page]:
    """A page on the live app with clipboard access; fails the test on any script error or CSP
    violation the browser reports."""
    context = new_context(
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
    assert errors == [], f"the browser reported errors (CSP violations included): {errors}"


EMAIL = "editor@example.org"
PASSWORD = "correct horse battery staple"


def create_admin(server: LiveServer) -> None:
    with db.transaction(server.engine) as s:
        admins.create_admin(s, EMAIL, PASSWORD, actor="test")


def sign_in(page: Page, server: LiveServer) -> None:
    create_admin(server)
    page.goto("/admin")
    expect(page).to_have_url(f"{server.url}/admin/login?next=%2Fadmin")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()


def test_sign_in_and_out(admin_page: Page, live_admin_server: LiveServer) -> None:
    create_admin(live_admin_server)
    page = admin_page
    page.goto("/admin/login")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill("wrong password!!")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.locator(".whoami strong")).to_have_text(EMAIL)
    page.get_by_role("button", name="Sign out everywhere").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    page.goto("/admin/donations")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()


def test_create_a_campaign_with_milestones(admin_page: Page, live_admin_server: LiveServer) -> None:
    page = admin_page
    sign_in(page, live_admin_server)
    page.get_by_role("link", name="New campaign").first.click()
    page.get_by_label("Slug").fill("winter-appeal")
    page.get_by_label("Title").fill("Winter appeal")
    page.get_by_label("Currency").fill("EUR")
    amounts = page.get_by_label("Milestone amount")
    labels = page.get_by_label("Milestone label")
    # Typed out of order, then put right with the row tools (admin.js).
    amounts.nth(0).fill("5000")
    labels.nth(0).fill("The goal")
    amounts.nth(1).fill("2500")
    labels.nth(1).fill("Halfway")
    page.get_by_role("button", name="Move up").nth(1).click()
    page.get_by_role("button", name="Add milestone").click()
    expect(amounts).to_have_count(4)
    amounts.nth(3).fill("8000")
    labels.nth(3).fill("A second reporter")
    page.get_by_label("Milestone kind").nth(3).select_option("stretch")
    page.get_by_role("button", name="Remove milestone").nth(2).click()  # the empty spare row
    page.get_by_role("button", name="Create campaign").click()
    expect(page.get_by_role("status")).to_have_text("Saved.")
    with Session(live_admin_server.engine) as s:
        campaign = s.scalars(select(Campaign).where(Campaign.slug == "winter-appeal")).one()
    assert campaign.currency == "EUR"
    assert campaign.milestones == [
        {"amount": 250_000, "label": "Halfway", "stretch": False},
        {"amount": 500_000, "label": "The goal", "stretch": False},
        {"amount": 800_000, "label": "A second reporter", "stretch": True},
    ]
    # A refused edit shows the reason and keeps what was typed.
    page.get_by_label("Milestone amount").nth(0).fill("9000")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("alert")).to_contain_text("milestone amounts must increase")
    expect(page.get_by_label("Milestone amount").nth(0)).to_have_value("9000")


def test_an_offline_gift_moves_the_public_total(
    admin_page: Page, live_admin_server: LiveServer
) -> None:
    page = admin_page
    with db.transaction(live_admin_server.engine) as s:
        make_campaign(s, slug="spring", title="Spring")
    sign_in(page, live_admin_server)
    before = page.request.get("/api/campaigns/spring").json()
    assert before["raised"] == 0
    page.get_by_role("link", name="Record a gift").first.click()
    page.locator("select[name=campaign]").select_option("spring")
    page.get_by_label("Amount (campaign currency)").fill("1,460")
    page.get_by_label("Source").select_option("cheque")
    page.get_by_label("Donor name").fill("Grace Hopper")
    page.get_by_role("button", name="Record gift").click()
    expect(page.get_by_role("status")).to_have_text("Saved.")
    expect(page.get_by_role("heading", level=1)).to_contain_text("$1,460")
    after = page.request.get("/api/campaigns/spring").json()
    assert after["raised"] == 146_000
    assert after["donors"] == 1
    page.get_by_role("link", name="Overview").click()
    expect(page.locator(".card", has_text="Spring")).to_contain_text("$1,460")


def read_csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))


def test_export_csv(admin_page: Page, live_admin_server: LiveServer) -> None:
    page = admin_page
    with db.transaction(live_admin_server.engine) as s:
        from fundgoal.money import Money
        from fundgoal.services import gifts

        c = make_campaign(s, slug="spring")
        gifts.record_offline_gift(s, c, Money(2500, "USD"), actor="t", donor_name="=cmd|calc")
        gifts.record_offline_gift(s, c, Money(1000, "USD"), actor="t", donor_name="Ada")
    sign_in(page, live_admin_server)
    page.get_by_role("navigation").get_by_role("link", name="Donations").click()
    page.get_by_label("Donor").fill("ada")
    page.get_by_role("button", name="Filter").click()
    with page.expect_download() as info:
        page.get_by_role("link", name="Export CSV").click()
    download = info.value
    assert download.suggested_filename.startswith("donations-")
    rows = read_csv(download.path())
    assert [r["donor_name"] for r in rows] == ["Ada"]
    with page.expect_download() as info:
        page.goto("/admin/donations")
        page.get_by_role("link", name="Export CSV").click()
    rows = read_csv(info.value.path())
    assert sorted(r["donor_name"] for r in rows) == ["'=cmd|calc", "Ada"]


def test_copy_the_embed_code(admin_page: Page, live_admin_server: LiveServer) -> None:
    page = admin_page
    with db.transaction(live_admin_server.engine) as s:
        make_campaign(s, slug="spring", title="Spring")
    sign_in(page, live_admin_server)
    page.goto("/admin/campaigns/spring/embed")
    preview = page.locator("#embed-preview")
    expect(preview).to_have_attribute("src", "/embed/spring?locale=en&theme=auto&accent=%230b6e4f")
    page.get_by_label("Theme").select_option("dark")
    page.get_by_label("Compact").check()
    expect(preview).to_have_attribute(
        "src", "/embed/spring?locale=en&theme=dark&accent=%230b6e4f&compact=1"
    )
    expect(page.frame_locator("#embed-preview").locator("body")).to_contain_text("Spring")
    page.get_by_role("button", name="Copy").first.click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    copied = page.evaluate("navigator.clipboard.readText()")
    base = PUBLIC_URL
    assert copied == (
        '<div data-fundgoal="spring" data-locale="en" data-theme="dark" data-accent="#0b6e4f"'
        f' data-compact><a href="{base}/donate/spring">Support us</a></div>\n'
        f'<script async src="{base}/widget.js"></script>'
    )
    page.locator('[data-copy="snippet-iframe"]').click()
    iframe_code = page.evaluate("navigator.clipboard.readText()")
    assert iframe_code.startswith(
        f'<iframe src="{base}/embed/spring?locale=en&theme=dark&accent=%230b6e4f&compact=1"'
    )
