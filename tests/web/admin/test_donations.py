"""Donations: the keyset list and its filters, the detail page, CSV export, offline gifts."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session
from starlette.testclient import TestClient

from fundgoal import db, ledger
from fundgoal.config import Secret, Settings
from fundgoal.models import AuditLog, Campaign, LedgerEntry
from fundgoal.money import Money
from fundgoal.services import gifts
from fundgoal.web.admin.views import stripe_links
from fundgoal.web.app import create_app
from tests.factories import make_campaign

from .conftest import sign_in

Client = tuple[TestClient, str]
START = datetime(2026, 3, 1, 12, tzinfo=UTC)


def seed(engine: Engine, n: int = 7) -> None:
    with db.transaction(engine) as s:
        a = make_campaign(s, slug="alpha")
        b = make_campaign(s, slug="beta", currency="EUR")
        for i in range(n):
            gifts.record_offline_gift(
                s,
                a if i % 2 == 0 else b,
                Money(1000 * (i + 1), "USD" if i % 2 == 0 else "EUR"),
                actor="test",
                source="cash" if i % 3 == 0 else "cheque",
                donor_name=f"Donor {i}",
                donor_email=f"donor{i}@example.org",
                occurred_at=START + timedelta(days=i),
            )
        ledger.apply(
            s,
            ledger.Fact(
                provider="stripe",
                ref="pi_123",
                campaign_id=a.id,
                kind="one_time",
                source="stripe",
                currency="USD",
                amount=5000,
                amount_refunded=1500,
                status="succeeded",
                donor_name="Card Donor",
                donor_email="card@example.org",
                payment_intent_id="pi_123",
                charge_id="ch_123",
                customer_id="cus_123",
                occurred_at=START + timedelta(days=100),
            ),
        )


def names(html: str) -> list[str]:
    return re.findall(r"<td>(Donor \d|Card Donor)", html)


def test_list_shows_amounts_newest_first(signed_in: Client, engine: Engine) -> None:
    client, _ = signed_in
    seed(engine)
    page = client.get("/admin/donations")
    assert page.status_code == 200
    assert names(page.text) == ["Card Donor", *[f"Donor {i}" for i in range(6, -1, -1)]]
    # gross, refunded and counted, right-aligned and formatted by Babel
    assert '<td class="num">$50</td>' in page.text
    assert '<td class="num">$15</td>' in page.text
    assert '<td class="num"><strong>$35</strong></td>' in page.text
    assert "€20" in page.text


def test_keyset_pages_walk_forward_and_back(signed_in: Client, engine: Engine) -> None:
    client, _ = signed_in
    seed(engine)
    from fundgoal.web.admin import views

    seen: list[str] = []
    url = "/admin/donations?source=cheque"
    original = views.donation_store.page

    def small_page(*args: Any, **kwargs: Any) -> Any:
        kwargs["size"] = 2
        return original(*args, **kwargs)

    views.donation_store.page = small_page  # type: ignore[assignment]
    try:
        pages = []
        while url:
            html = client.get(url).text
            pages.append(names(html))
            seen += names(html)
            found = re.search(r'href="([^"]+)" rel="next"', html)
            url = found.group(1).replace("&amp;", "&") if found else ""
        assert seen == ["Donor 5", "Donor 4", "Donor 2", "Donor 1"]
        assert pages == [["Donor 5", "Donor 4"], ["Donor 2", "Donor 1"]]
        back = re.search(r'href="([^"]+)" rel="prev"', html)
        assert back is not None
        assert names(client.get(back.group(1).replace("&amp;", "&")).text) == [
            "Donor 5",
            "Donor 4",
        ]
    finally:
        views.donation_store.page = original  # type: ignore[assignment]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("campaign=beta", ["Donor 5", "Donor 3", "Donor 1"]),
        ("source=stripe", ["Card Donor"]),
        ("status=void", []),
        ("since=2026-03-03&until=2026-03-04", ["Donor 3", "Donor 2"]),
        ("q=donor4@example.org", ["Donor 4"]),
        ("q=DONOR 6", ["Donor 6"]),
        ("q=card@", ["Card Donor"]),
        ("q=100%25", []),
        ("campaign=alpha&source=cash", ["Donor 6", "Donor 0"]),
    ],
)
def test_filters(signed_in: Client, engine: Engine, query: str, expected: list[str]) -> None:
    client, _ = signed_in
    seed(engine)
    page = client.get(f"/admin/donations?{query}")
    assert page.status_code == 200
    assert names(page.text) == expected


def test_bad_filters_are_explained_not_fatal(signed_in: Client, engine: Engine) -> None:
    client, _ = signed_in
    seed(engine)
    page = client.get("/admin/donations?since=yesterday&campaign=nope&after=garbage")
    assert page.status_code == 200
    assert "is not a date" in page.text
    assert "no campaign &#39;nope&#39;" in page.text


def test_detail_links_to_the_stripe_dashboard(signed_in: Client, engine: Engine) -> None:
    client, _ = signed_in
    seed(engine)
    with Session(engine) as s:
        entry = s.scalars(select(LedgerEntry).where(LedgerEntry.provider == "stripe")).one()
    page = client.get(f"/admin/donations/{entry.id}")
    assert page.status_code == 200
    assert "https://dashboard.stripe.com/test/payments/pi_123" in page.text
    assert "https://dashboard.stripe.com/test/customers/cus_123" in page.text
    assert "Edit" not in page.text.split("<main")[1].split("</header>")[0]
    assert client.get(f"/admin/donations/{entry.id}/edit").status_code == 404
    assert client.get("/admin/donations/999999").status_code == 404


def test_stripe_links_drop_test_for_live_keys() -> None:
    entry = LedgerEntry(
        campaign_id=1,
        provider="stripe",
        provider_ref="pi_1",
        kind="one_time",
        source="stripe",
        currency="USD",
        payment_intent_id="pi_1",
        subscription_id="sub_1",
        invoice_id="in_1",
    )
    live = {label: url for label, _, url in stripe_links(entry, "sk_live_abc")}
    assert live["Payment"] == "https://dashboard.stripe.com/payments/pi_1"
    assert live["Subscription"] == "https://dashboard.stripe.com/subscriptions/sub_1"
    assert live["Invoice"] == "https://dashboard.stripe.com/invoices/in_1"
    test = {label: url for label, _, url in stripe_links(entry, "sk_test_abc")}
    assert test["Payment"] == "https://dashboard.stripe.com/test/payments/pi_1"
    assert stripe_links(entry, "")[0][2].startswith("https://dashboard.stripe.com/test/")


def test_live_key_links_in_the_page(database_url: str, engine: Engine) -> None:
    from .conftest import make_admin

    make_admin(engine)
    seed(engine)
    settings = Settings(
        database_url=database_url,
        env="test",
        public_url="http://testserver",
        stripe_secret_key=Secret("sk_live_x"),
        snapshot_check_seconds=3600,
    )
    with TestClient(create_app(settings, engine=engine)) as client:
        sign_in(client)
        with Session(engine) as s:
            entry = s.scalars(select(LedgerEntry).where(LedgerEntry.provider == "stripe")).one()
        page = client.get(f"/admin/donations/{entry.id}")
    assert "https://dashboard.stripe.com/payments/pi_123" in page.text


def read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_export_follows_the_filters(signed_in: Client, engine: Engine) -> None:
    client, _ = signed_in
    seed(engine)
    answer = client.get("/admin/donations/export.csv?campaign=alpha")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert answer.headers["content-disposition"].startswith('attachment; filename="donations-')
    rows = read_csv(answer.text)
    assert [r["donor_name"] for r in rows] == [
        "Card Donor",
        "Donor 6",
        "Donor 4",
        "Donor 2",
        "Donor 0",
    ]
    card = rows[0]
    assert (card["amount"], card["refunded"], card["counted"]) == ("50.00", "15.00", "35.00")
    assert card["payment_intent_id"] == "pi_123"
    assert card["campaign"] == "alpha"
    everything = read_csv(client.get("/admin/donations/export.csv").text)
    assert len(everything) == 8


def test_export_streams_in_batches(signed_in: Client, engine: Engine) -> None:
    from fundgoal.services import exports

    seed(engine)
    with Session(engine) as s:
        from fundgoal.stores.donations import DonationFilter

        chunks = list(exports.csv_chunks(s, DonationFilter(), batch=3))
    assert len(chunks) == 1 + 3  # the header, then 8 rows in batches of 3
    assert sum(len(read_csv(chunks[0] + c)) for c in chunks[1:]) == 8


@pytest.mark.parametrize("evil", ["=1+1", "+SUM(A1)", "-2+3", "@cmd", "\tx", "\rx"])
def test_export_defuses_formula_injection(signed_in: Client, engine: Engine, evil: str) -> None:
    client, _ = signed_in
    with db.transaction(engine) as s:
        c = make_campaign(s, slug="alpha")
        # Straight into the ledger, as rows written before the input rules (which refuse a
        # tab or CR in a name now) may be: the export must defuse whatever is stored.
        ledger.apply(
            s,
            ledger.Fact(
                provider="offline",
                ref="off_evil",
                campaign_id=c.id,
                kind="offline",
                source="cash",
                currency="USD",
                amount=100,
                amount_refunded=0,
                status="succeeded",
                donor_name=evil,
                note=f'say "{evil}", ok',
                authoritative=True,
            ),
        )
    rows = read_csv(client.get("/admin/donations/export.csv").text)
    assert rows[0]["donor_name"] == "'" + evil
    assert rows[0]["note"] == f'say "{evil}", ok'  # quoted by the csv module, not altered


def gift_form(csrf: str, **overrides: str) -> dict[str, str]:
    data = {
        "csrf": csrf,
        "campaign": "alpha",
        "amount": "1,250.50",
        "date": "2026-11-01",
        "source": "bank_transfer",
        "donor_name": "Ada Lovelace",
        "donor_email": "ada@example.org",
        "note": "Ref 2026-11",
    }
    data.update(overrides)
    return data


def totals(engine: Engine) -> tuple[int, int, int, int]:
    with Session(engine) as s:
        c = s.scalars(select(Campaign).where(Campaign.slug == "alpha")).one()
        entries = len(s.scalars(select(LedgerEntry.id)).all())
        audits = len(s.scalars(select(AuditLog.id)).all())
        return c.raised, c.version, entries, audits


def test_record_edit_and_void_an_offline_gift(signed_in: Client, engine: Engine) -> None:
    client, csrf = signed_in
    with db.transaction(engine) as s:
        make_campaign(s, slug="alpha")
    answer = client.post("/admin/gifts/new", data=gift_form(csrf), follow_redirects=False)
    assert answer.status_code == 303
    assert totals(engine)[0] == 125_050
    assert client.get("/api/campaigns/alpha").json()["raised"] == 125_050
    detail = client.get(answer.headers["location"])
    assert "Saved." in detail.text
    assert "gift.record" in detail.text
    entry_id = int(answer.headers["location"].split("/")[3].split("?")[0])

    edit = client.get(f"/admin/donations/{entry_id}/edit")
    assert 'value="1250.5"' in edit.text
    # an edit needs a reason
    before = totals(engine)
    refused = client.post(f"/admin/donations/{entry_id}/edit", data=gift_form(csrf, amount="99"))
    assert refused.status_code == 400
    assert "say why" in refused.text
    assert totals(engine) == before
    answer = client.post(
        f"/admin/donations/{entry_id}/edit",
        data=gift_form(csrf, amount="1000", reason="typo in the amount"),
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert totals(engine)[0] == 100_000
    with Session(engine) as s:
        edit_log = s.scalars(select(AuditLog).where(AuditLog.action == "gift.edit")).one()
    assert edit_log.actor == "editor@example.org"
    assert edit_log.before is not None
    assert edit_log.after is not None
    assert (edit_log.before["amount"], edit_log.after["amount"]) == (125_050, 100_000)
    assert edit_log.reason == "typo in the amount"

    assert (
        client.post(
            f"/admin/donations/{entry_id}/void", data={"csrf": csrf, "reason": ""}
        ).status_code
        == 400
    )
    answer = client.post(
        f"/admin/donations/{entry_id}/void",
        data={"csrf": csrf, "reason": "cheque bounced"},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert totals(engine)[0] == 0
    assert client.get("/api/campaigns/alpha").json()["raised"] == 0
    page = client.get(f"/admin/donations/{entry_id}")
    assert "cheque bounced" in page.text
    assert "gift.void" in page.text
    assert (
        client.post(
            f"/admin/donations/{entry_id}/void", data={"csrf": csrf, "reason": "again"}
        ).status_code
        == 409
    )
    refused = client.post(
        f"/admin/donations/{entry_id}/edit", data=gift_form(csrf, reason="revive it")
    )
    assert refused.status_code == 409
    assert "the gift is void" in refused.text
    assert totals(engine)[0] == 0


def test_a_gift_received_in_another_currency(signed_in: Client, engine: Engine) -> None:
    client, csrf = signed_in
    with db.transaction(engine) as s:
        make_campaign(s, slug="alpha")
    answer = client.post(
        "/admin/gifts/new",
        data=gift_form(
            csrf,
            amount="108",
            original_amount="100",
            original_currency="eur",
            exchange_rate="1.08",
        ),
        follow_redirects=False,
    )
    assert answer.status_code == 303
    with Session(engine) as s:
        entry = s.scalars(select(LedgerEntry)).one()
    assert (entry.amount, entry.original_amount, entry.original_currency, entry.exchange_rate) == (
        10_800,
        10_000,
        "EUR",
        "1.08",
    )
    assert "€100" in client.get(answer.headers["location"]).text


BAD_GIFTS = [
    ({"amount": "abc"}, "Amount"),
    ({"amount": "0"}, "more than zero"),
    ({"amount": "-5"}, "more than zero"),
    ({"date": "yesterday"}, "Date"),
    ({"date": "2999-01-01"}, "in the future"),
    ({"campaign": "nope"}, "no campaign"),
    ({"source": "gold bars"}, "source must be one of"),
    ({"donor_email": "not-an-email"}, "Donor email"),
    ({"original_amount": "100", "original_currency": "EUR"}, "Exchange rate"),
    (
        {"original_amount": "100", "original_currency": "EUR", "exchange_rate": "-1"},
        "exchange rate must be a positive",
    ),
    ({"original_amount": "100"}, "Currency received"),
]


@pytest.mark.parametrize(("overrides", "message"), BAD_GIFTS)
def test_bad_gifts_are_refused_and_nothing_is_saved(
    signed_in: Client, engine: Engine, overrides: dict[str, str], message: str
) -> None:
    client, csrf = signed_in
    with db.transaction(engine) as s:
        make_campaign(s, slug="alpha")
    before = totals(engine)
    answer = client.post("/admin/gifts/new", data=gift_form(csrf, **overrides))
    assert answer.status_code in (400, 404)
    assert message.lower() in answer.text.lower()
    assert totals(engine) == before
    if answer.status_code == 400:
        assert 'value="Ada Lovelace"' in answer.text  # what was typed comes back


def test_gifts_cannot_go_to_an_archived_campaign(signed_in: Client, engine: Engine) -> None:
    client, csrf = signed_in
    with db.transaction(engine) as s:
        make_campaign(s, slug="alpha")
    client.post("/admin/campaigns/alpha/status", data={"csrf": csrf, "action": "archive"})
    before = totals(engine)
    answer = client.post("/admin/gifts/new", data=gift_form(csrf))
    assert answer.status_code == 400
    assert "archived" in answer.text
    assert totals(engine) == before
    assert (
        "alpha" not in client.get("/admin/gifts/new").text.split("<select")[1].split("</select>")[0]
    )
