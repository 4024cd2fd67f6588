"""Donation (ledger entry) queries for the dashboard: keyset pages, export batches, reports.

Lists are ordered newest first on (occurred_at, id) and paged by keyset, never OFFSET, so page
10,000 costs what page 1 costs: each filter combination walks one of the ledger's composite
indexes (ix_ledger_occurred, ix_ledger_campaign_occurred, ix_ledger_campaign_status) backwards
from the cursor and stops after one page.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Row, Select, and_, func, literal_column, or_, select
from sqlmodel import Session, col

from ..inputs.numbers import parse_id
from ..models import LedgerEntry

MAX_PAGE = 200
_FULL_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@dataclass(frozen=True)
class Cursor:
    """A position in the newest-first order: the (occurred_at, id) of a row."""

    occurred_at: datetime
    id: int

    def encode(self) -> str:
        return f"{self.occurred_at.astimezone(UTC).strftime('%Y%m%dT%H%M%S.%f')}~{self.id}"

    @classmethod
    def decode(cls, text: str) -> Cursor | None:
        """None for anything malformed: a bad cursor means the first page, not an error."""
        stamp, _, ident = text.partition("~")
        row_id = parse_id(ident)  # ASCII digits within the id column, not int('٣')
        if row_id is None or len(stamp) > 32:
            return None
        try:
            moment = datetime.strptime(stamp, "%Y%m%dT%H%M%S.%f").replace(tzinfo=UTC)
            return cls(moment, row_id)
        except ValueError:
            return None


@dataclass(frozen=True)
class DonationFilter:
    campaign_id: int | None = None
    status: str | None = None
    source: str | None = None
    provider: str | None = None
    since: date | None = None  # inclusive
    until: date | None = None  # inclusive
    search: str | None = None  # donor name or email

    def apply(self, query: Select[Any]) -> Select[Any]:
        occurred = col(LedgerEntry.occurred_at)
        if self.campaign_id is not None:
            query = query.where(col(LedgerEntry.campaign_id) == self.campaign_id)
        if self.status:
            query = query.where(col(LedgerEntry.status) == self.status)
        if self.source:
            query = query.where(col(LedgerEntry.source) == self.source)
        if self.provider:
            query = query.where(col(LedgerEntry.provider) == self.provider)
        if self.since:
            query = query.where(occurred >= datetime.combine(self.since, time(), UTC))
        if self.until:
            end = datetime.combine(self.until + timedelta(days=1), time(), UTC)
            query = query.where(occurred < end)
        if self.search:
            term = self.search.strip()
            if _FULL_EMAIL.fullmatch(term):
                # An address: an exact match on the indexed column, not a scan.
                query = query.where(col(LedgerEntry.donor_email).in_({term, term.lower()}))
            else:
                pattern = "%" + term.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")
                pattern += "%"
                query = query.where(
                    or_(
                        col(LedgerEntry.donor_name).ilike(pattern, escape="\\"),
                        col(LedgerEntry.donor_email).ilike(pattern, escape="\\"),
                    )
                )
        return query


@dataclass(frozen=True)
class Page:
    rows: Sequence[LedgerEntry]
    next: Cursor | None  # older rows exist after the last one shown
    previous: Cursor | None  # newer rows exist before the first one shown


def _older_than(cursor: Cursor) -> Any:
    occurred, ident = col(LedgerEntry.occurred_at), col(LedgerEntry.id)
    # Written as a range plus a tie-break so both databases use the (…, occurred_at, id) index.
    return and_(
        occurred <= cursor.occurred_at,
        or_(occurred < cursor.occurred_at, ident < cursor.id),
    )


def _newer_than(cursor: Cursor) -> Any:
    occurred, ident = col(LedgerEntry.occurred_at), col(LedgerEntry.id)
    return and_(
        occurred >= cursor.occurred_at,
        or_(occurred > cursor.occurred_at, ident > cursor.id),
    )


def page(
    session: Session,
    filters: DonationFilter,
    *,
    after: Cursor | None = None,
    before: Cursor | None = None,
    size: int = 50,
    cap: int = MAX_PAGE,
) -> Page:
    """One page, newest first. `after`: rows older than the cursor; `before`: rows newer."""
    size = max(1, min(size, cap))
    occurred, ident = col(LedgerEntry.occurred_at), col(LedgerEntry.id)
    query = filters.apply(select(LedgerEntry))
    if before is not None and after is None:
        query = query.where(_newer_than(before)).order_by(occurred.asc(), ident.asc())
        found = list(session.scalars(query.limit(size + 1)).all())
        more_newer = len(found) > size
        rows = list(reversed(found[:size]))
        return Page(
            rows=rows,
            next=_cursor(rows[-1]) if rows else None,
            previous=_cursor(rows[0]) if rows and more_newer else None,
        )
    if after is not None:
        query = query.where(_older_than(after))
    query = query.order_by(occurred.desc(), ident.desc())
    found = list(session.scalars(query.limit(size + 1)).all())
    rows = found[:size]
    return Page(
        rows=rows,
        next=_cursor(rows[-1]) if len(found) > size else None,
        previous=_cursor(rows[0]) if rows and after is not None else None,
    )


def _cursor(entry: LedgerEntry) -> Cursor:
    assert entry.id is not None
    return Cursor(entry.occurred_at, entry.id)


def batches(
    session: Session, filters: DonationFilter, *, size: int = 1000
) -> Iterator[Sequence[Row[Any]]]:
    """Every matching row, newest first, one keyset page at a time (constant memory).

    Plain rows (attribute access by column name), not ORM objects: nothing accumulates in the
    session's identity map, and an export runs several times faster.
    """
    occurred, ident = col(LedgerEntry.occurred_at), col(LedgerEntry.id)
    columns = select(*LedgerEntry.__table__.columns)  # type: ignore[attr-defined]
    base = filters.apply(columns).order_by(occurred.desc(), ident.desc()).limit(size)
    cursor: Cursor | None = None
    while True:
        query = base if cursor is None else base.where(_older_than(cursor))
        rows = session.execute(query).all()
        if not rows:
            return
        yield rows
        if len(rows) < size:
            return
        cursor = Cursor(rows[-1].occurred_at, rows[-1].id)


def by_id(session: Session, entry_id: int) -> LedgerEntry | None:
    return session.get(LedgerEntry, entry_id)


def has_entries(session: Session, campaign_id: int) -> bool:
    found = session.execute(
        select(col(LedgerEntry.id)).where(col(LedgerEntry.campaign_id) == campaign_id).limit(1)
    ).first()
    return found is not None


# --- reports ---------------------------------------------------------------------------------

BUCKETS = ("day", "week", "month")


def _period(session: Session, bucket: str) -> Any:
    """A 'YYYY-MM-DD' (the period's first day) expression; the only dialect switch here."""
    if bucket not in BUCKETS:
        raise ValueError(f"bucket must be one of {BUCKETS}")
    occurred = col(LedgerEntry.occurred_at)
    if session.get_bind().dialect.name == "postgresql":
        truncated = func.date_trunc(bucket, occurred.op("AT TIME ZONE")(literal_column("'UTC'")))
        return func.to_char(truncated, "YYYY-MM-DD")
    # SQLite keeps UTC as 'YYYY-MM-DD HH:MM:SS.ffffff' text; weeks start on Monday as in
    # PostgreSQL's date_trunc ('weekday 0' moves to the coming Sunday, then back six days).
    if bucket == "day":
        return func.strftime("%Y-%m-%d", occurred)
    if bucket == "week":
        return func.date(occurred, "weekday 0", "-6 days")
    return func.strftime("%Y-%m-01", occurred)


@dataclass(frozen=True)
class PeriodTotal:
    period: date
    source: str
    amount: int  # counted minor units
    gifts: int


def totals_by_period(session: Session, campaign_id: int, bucket: str) -> list[PeriodTotal]:
    """Counted money per period and source (only entries that count toward the total)."""
    period = _period(session, bucket).label("period")
    query = (
        select(
            period,
            col(LedgerEntry.source),
            func.sum(col(LedgerEntry.counted)),
            func.count(),
        )
        .where(col(LedgerEntry.campaign_id) == campaign_id, col(LedgerEntry.counted) > 0)
        .group_by(period, col(LedgerEntry.source))
        .order_by(period, col(LedgerEntry.source))
    )
    return [
        PeriodTotal(date.fromisoformat(str(p)), str(source), int(amount), int(gifts))
        for p, source, amount, gifts in session.execute(query).all()
    ]
