"""What the outsider of issue 10 found, each on SQLite and PostgreSQL: NUL, oversized and
odd-digit values in public and dashboard fields, URLs and files are a clean 4xx (or a row
error), never a 500 and never stored. The class-wide version is test_fuzz_routes.py."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, update
from sqlmodel import Session, col
from starlette.testclient import TestClient

from fundgoal import db
from fundgoal.config import Secret, Settings
from fundgoal.models import AuditLog, Campaign, DonationAttempt, LedgerEntry, LoginAttempt
from fundgoal.services.demo import seed_demo
from fundgoal.web.app import create_app
from tests.conftest import TEST_SECRET_KEY
from tests.web.admin.conftest import csrf_of

Client = tuple[TestClient, str]
DONATE_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def counts(engine: Engine) -> tuple[int, ...]:
    with Session(engine) as s:
        return tuple(
            s.scalar(select(func.count()).select_from(table)) or 0
            for table in (Campaign, LedgerEntry, DonationAttempt, AuditLog, LoginAttempt)
        )


@pytest.fixture
def demo(engine: Engine) -> None:
    with db.transaction(engine) as s:
        seed_demo(s)


# -- public routes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "/donate/demo%00",
        "/donate/de%00mo/thanks?session_id=cs_test_x",
        "/donate/demo/thanks?session_id=%00",
        "/donate/demo/thanks?session_id=cs_%1b%5b31m",
        "/test-checkout/cs_test_%00",
        "/donate/" + "a" * 5000,
    ],
)
def test_hostile_public_urls_are_404(anon: TestClient, demo: None, target: str) -> None:
    answer = anon.get(target)
    assert answer.status_code == 404, answer.text[:300]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "Ada\x00Lovelace", "NUL"),
        ("message", "thanks\x00", "NUL"),
        ("name", "\u202eAda", "direction"),
        ("name", "\u200b\u200b", "invisible"),
        ("message", "x\x1b[31m", "control character"),
        ("amount", "1e600000", "not an amount"),
        ("amount", "1e1000000", "not an amount"),
        ("amount", "\uff15", "digits 0 to 9"),
        ("amount", "\u0665", "digits 0 to 9"),
        ("amount", "1_0", "not an amount"),
        ("amount", "+5", "sign"),
        ("amount", "Infinity", "not an amount"),
    ],
)
def test_hostile_donation_fields_are_refused_with_a_message(
    anon: TestClient, engine: Engine, demo: None, field: str, value: str, message: str
) -> None:
    page = anon.get("/donate/demo")
    token = DONATE_CSRF.search(page.text)
    assert token is not None
    before = counts(engine)
    data = {"csrf_token": token.group(1), "amount": "25", "frequency": "once", field: value}
    answer = anon.post("/donate/demo", data=data, follow_redirects=False)
    assert answer.status_code == 400, answer.text[:300]
    assert message.lower() in answer.text.lower()
    assert counts(engine) == before


def test_a_nul_in_the_sign_in_email_is_400_and_not_stored(
    anon: TestClient, engine: Engine, admin: str
) -> None:
    page = anon.get("/admin/login")
    before = counts(engine)
    answer = anon.post(
        "/admin/login",
        data={"email": "editor\x00@example.org", "password": "x", "csrf": csrf_of(page.text)},
    )
    assert answer.status_code == 400
    assert "NUL" in answer.text
    assert counts(engine) == before


# -- the dashboard ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target", ["/admin/donations/99999999999999999999999", "/admin/donations/2147483648"]
)
def test_huge_ids_in_admin_urls_are_404(signed_in: Client, demo: None, target: str) -> None:
    client, _ = signed_in
    assert client.get(target).status_code == 404
    assert client.get(target + "/edit").status_code == 404


@pytest.mark.parametrize("before", ["\u00b2", "\u0663", "99999999999", "-1", "1e3"])
def test_odd_numbers_in_admin_queries_are_400(signed_in: Client, before: str) -> None:
    client, _ = signed_in
    answer = client.get("/admin/audit", params={"before": before})
    assert answer.status_code == 400
    assert "before must be a number" in answer.text


@pytest.mark.parametrize(
    "params",
    [
        {"q": "a\x00b"},
        {"campaign": "de\x00mo"},
        {"source": "cash\x00"},
        {"since": "9999-12-31"},
        {"until": "9999-12-31"},
        {"after": "20260101T000000.000000~\u0663"},
        {"after": "20260101T000000.000000~99999999999999"},
    ],
)
def test_hostile_donation_filters_are_shown_errors_not_500(
    signed_in: Client, demo: None, params: dict[str, str]
) -> None:
    client, _ = signed_in
    for path in ("/admin/donations", "/admin/donations/export.csv"):
        answer = client.get(path, params=params)
        assert answer.status_code == 200, (path, answer.text[:300])


def gift(csrf: str, **overrides: str) -> dict[str, str]:
    base = {
        "csrf": csrf,
        "campaign": "demo",
        "amount": "50",
        "date": "2026-01-05",
        "donor_name": "Ada",
        "donor_email": "ada@example.org",
        "source": "cheque",
    }
    return {**base, **overrides}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"donor_name": "A\x00da"}, "NUL"),
        ({"note": "n\x00"}, "NUL"),
        ({"donor_email": "a" * 320 + "@example.org"}, "at most 320"),
        ({"donor_email": "ada\x00@example.org"}, "NUL"),
        (
            {"original_amount": "5", "original_currency": "EUR", "exchange_rate": "1" * 35},
            "at most 32",
        ),
        (
            {"original_amount": "5", "original_currency": "EUR", "exchange_rate": "Infinity"},
            "exchange rate",
        ),
        ({"date": "9999-12-31"}, "too far in the future"),
        ({"amount": "1e1000000"}, "not an amount"),
        ({"donor_name": "\u202eevil"}, "direction"),
    ],
)
def test_hostile_gift_fields_are_400(
    signed_in: Client, engine: Engine, demo: None, overrides: dict[str, str], message: str
) -> None:
    client, csrf = signed_in
    before = counts(engine)
    answer = client.post("/admin/gifts/new", data=gift(csrf, **overrides))
    assert answer.status_code == 400, answer.text[:500]
    assert message in answer.text
    assert counts(engine) == before


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"title": "Spring\x00"}, "NUL"),
        ({"title": "\x1b[31mRed"}, "control character"),
        ({"title": "\u202eevil"}, "direction"),
        ({"title": "\u200b\u200d\u2060"}, "invisible"),
        ({"title": "x" * 201}, "at most 200"),
        ({"ms_amount": ["1e1000000", "5000"]}, "not an amount"),
        ({"ms_amount": ["1e600000", "5000"]}, "not an amount"),
        ({"min_amount": "\uff11"}, "digits 0 to 9"),
        ({"deadline": "9999-12-31"}, "too far in the future"),
        ({"description": "d\x00"}, "NUL"),
    ],
)
def test_hostile_campaign_fields_are_400(
    signed_in: Client, engine: Engine, overrides: dict[str, object], message: str
) -> None:
    client, csrf = signed_in
    data: dict[str, object] = {
        "csrf": csrf,
        "slug": "spring",
        "title": "Spring",
        "currency": "USD",
        "ms_amount": ["2500", "5000"],
        "ms_label": ["", ""],
        "ms_kind": ["goal", "goal"],
        "policy": "fill",
        **overrides,
    }
    before = counts(engine)
    answer = client.post("/admin/campaigns/new", data=data)  # type: ignore[arg-type]
    assert answer.status_code == 400, answer.text[:500]
    assert message in answer.text
    assert counts(engine) == before


def upload(client: TestClient, csrf: str, body: bytes) -> str:
    answer = client.post(
        "/admin/gifts/import",
        data={"csrf": csrf},
        files={"file": ("gifts.csv", body, "text/csv")},
    )
    assert answer.status_code == 400, answer.text[:500]
    return answer.text


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("demo,10,2026-01-05,A\x00da,,cash,", "NUL"),
        ("demo,10,9999-12-31T23:00-05:00,,,cash,", "too far in the future"),
        ("demo,10,2026-01-05,," + "a" * 330 + "@example.org,cash,", "at most 320"),
        ("demo,1e1000000,2026-01-05,,,cash,", "not an amount"),
        ("demo,\u0665,2026-01-05,,,cash,", "digits 0 to 9"),
        ("de\x00mo,10,2026-01-05,,,cash,", "no campaign"),
        ("demo,10,2026-01-05,,,cash," + "n" * 140_000, "longer than 128 KB"),
        ("demo,10,2026-01-05,,,cash," + "n" * 2001, "at most 2,000"),
    ],
)
def test_hostile_csv_cells_are_row_errors(
    signed_in: Client, engine: Engine, demo: None, row: str, message: str
) -> None:
    client, csrf = signed_in
    before = counts(engine)
    html = upload(
        client, csrf, f"campaign,amount,date,donor_name,donor_email,source,note\n{row}\n".encode()
    )
    assert message in html
    assert counts(engine) == before


def test_stored_control_characters_never_reach_the_widget_or_a_page(
    sqlite_template: Path, tmp_path: Path
) -> None:
    """SQLite stores a NUL (PostgreSQL refuses it): rows written before the input rules, or by
    hand, must still not put a NUL, an escape or a direction override into the widget's JSON,
    its SVG and HTML forms, or the donation page."""
    path = tmp_path / "old.db"
    shutil.copy(sqlite_template, path)
    settings = Settings(
        database_url=f"sqlite:///{path}",
        env="test",
        public_url="http://testserver",
        secret_key=Secret(TEST_SECRET_KEY),
        snapshot_check_seconds=3600,
    )
    engine = db.make_engine(settings.database_url)
    with db.transaction(engine) as s:
        seed_demo(s)
        s.execute(
            update(Campaign)
            .where(col(Campaign.slug) == "demo")
            .values(
                title="De\x00mo\x1b[2J\u202e",
                description="a\x00b",
                milestones=[
                    {"amount": 250_000, "label": "Half\x00way\x07", "stretch": False},
                    {"amount": 500_000, "label": None, "stretch": False},
                ],
            )
        )
    bad = ("\x00", "\x1b", "\x07", "\u202e")
    with TestClient(create_app(settings, engine=engine)) as client:
        data = client.get("/api/campaigns/demo").json()
        assert data["title"] == "Demo[2J"
        assert data["milestones"][0]["label"] == "Halfway"
        for url in (
            "/api/campaigns/demo",
            "/embed/demo",
            "/campaigns/demo/badge.svg",
            "/donate/demo",
        ):
            body = client.get(url).text
            assert not any(ch in body for ch in bad), url
            assert "\\u0000" not in body
    engine.dispose()
