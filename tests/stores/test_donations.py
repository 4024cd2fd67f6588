"""Keyset pages and period totals, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlmodel import Session

from fundgoal import ledger
from fundgoal.money import Money
from fundgoal.services import gifts
from fundgoal.stores import donations
from fundgoal.stores.donations import Cursor, DonationFilter
from tests.factories import make_campaign

MONDAY = datetime(2026, 3, 2, 10, tzinfo=UTC)  # a Monday


def _ids(rows: object) -> list[int]:
    return [r.id for r in rows]  # type: ignore[attr-defined]


def test_keyset_pages_cover_every_row_once_even_with_equal_timestamps(session: Session) -> None:
    c = make_campaign(session)
    for i in range(11):
        # pairs of gifts share a timestamp: the id breaks the tie
        gifts.record_offline_gift(
            session,
            c,
            Money(100 + i, "USD"),
            actor="t",
            occurred_at=MONDAY + timedelta(hours=i // 2),
        )
    everything = _ids(donations.page(session, DonationFilter(), size=100).rows)
    assert len(everything) == 11
    walked: list[int] = []
    cursor = None
    pages = []
    while True:
        page = donations.page(session, DonationFilter(), after=cursor, size=3)
        walked += _ids(page.rows)
        pages.append(page)
        if page.next is None:
            break
        cursor = page.next
    assert walked == everything
    assert len(pages) == 4
    # walk back from the last page with `before`
    back = donations.page(session, DonationFilter(), before=pages[-1].previous, size=3)
    assert _ids(back.rows) == _ids(pages[-2].rows)
    first = donations.page(session, DonationFilter(), before=pages[1].previous, size=3)
    assert _ids(first.rows) == _ids(pages[0].rows)
    assert first.previous is None


def test_cursor_round_trip_and_garbage() -> None:
    cursor = Cursor(datetime(2026, 3, 2, 10, 0, 0, 123456, tzinfo=UTC), 42)
    assert Cursor.decode(cursor.encode()) == cursor
    assert Cursor.decode("garbage") is None
    assert Cursor.decode("20260302T100000.000000~x") is None


def test_batches_expunge_and_cover_everything(session: Session) -> None:
    c = make_campaign(session)
    for i in range(7):
        gifts.record_offline_gift(
            session, c, Money(100, "USD"), actor="t", occurred_at=MONDAY + timedelta(minutes=i)
        )
    batches = list(donations.batches(session, DonationFilter(campaign_id=c.id), size=3))
    assert [len(b) for b in batches] == [3, 3, 1]


def test_totals_by_day_week_and_month(session: Session) -> None:
    c = make_campaign(session)
    other = make_campaign(session)
    moments = [
        (MONDAY, 1000, "cash"),
        (MONDAY + timedelta(hours=5), 500, "cheque"),
        (MONDAY + timedelta(days=6, hours=13), 200, "cash"),  # Sunday 23:00, same week
        (MONDAY + timedelta(days=7), 300, "cash"),  # next Monday
        (MONDAY + timedelta(days=30), 400, "cash"),  # April
    ]
    for when, amount, source in moments:
        gifts.record_offline_gift(
            session, c, Money(amount, "USD"), actor="t", source=source, occurred_at=when
        )
    gifts.record_offline_gift(session, other, Money(9999, "USD"), actor="t", occurred_at=MONDAY)
    void = gifts.record_offline_gift(session, c, Money(7777, "USD"), actor="t", occurred_at=MONDAY)
    gifts.void_offline_gift(session, void.provider_ref, actor="t", reason="test")
    # a refund lowers what counts
    ledger.apply(
        session,
        ledger.Fact(
            provider="stripe",
            ref="pi_1",
            campaign_id=c.id,
            currency="USD",
            amount=1000,
            amount_refunded=400,
            status="succeeded",
            source="card",
            occurred_at=MONDAY,
        ),
    )
    assert c.id is not None
    by_day = {
        (t.period, t.source): (t.amount, t.gifts)
        for t in donations.totals_by_period(session, c.id, "day")
    }
    assert by_day == {
        (date(2026, 3, 2), "card"): (600, 1),
        (date(2026, 3, 2), "cash"): (1000, 1),
        (date(2026, 3, 2), "cheque"): (500, 1),
        (date(2026, 3, 8), "cash"): (200, 1),
        (date(2026, 3, 9), "cash"): (300, 1),
        (date(2026, 4, 1), "cash"): (400, 1),
    }
    by_week = {
        (t.period, t.source): t.amount for t in donations.totals_by_period(session, c.id, "week")
    }
    assert by_week == {
        (date(2026, 3, 2), "card"): 600,
        (date(2026, 3, 2), "cash"): 1200,
        (date(2026, 3, 2), "cheque"): 500,
        (date(2026, 3, 9), "cash"): 300,
        (date(2026, 3, 30), "cash"): 400,
    }
    by_month = {
        (t.period, t.source): t.amount for t in donations.totals_by_period(session, c.id, "month")
    }
    assert by_month == {
        (date(2026, 3, 1), "card"): 600,
        (date(2026, 3, 1), "cash"): 1500,
        (date(2026, 3, 1), "cheque"): 500,
        (date(2026, 4, 1), "cash"): 400,
    }
