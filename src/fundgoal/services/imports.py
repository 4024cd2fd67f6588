"""CSV import of offline gifts: parse and check every row first, then write all or nothing.

The preview and the import run the same checks; the import writes inside the caller's single
transaction, so one bad row (or a crash half-way) leaves the ledger untouched. Each row's entry
id derives from the file's digest and the row number: importing the same file twice is refused.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation

from sqlmodel import Session

from ..errors import Conflict, Invalid
from ..models import Campaign, CampaignStatus
from ..money import MAX_MINOR, Money, MoneyError, format_money, parse_amount
from ..stores import campaigns as campaign_store
from . import gifts
from .admins import EMAIL_RE

MAX_BYTES = 2 * 1024 * 1024
MAX_ROWS = 5000
COLUMNS = (
    "campaign",
    "amount",
    "date",
    "donor_name",
    "donor_email",
    "source",
    "note",
    "original_amount",
    "original_currency",
    "exchange_rate",
)
REQUIRED = ("campaign", "amount", "date")


@dataclass
class ImportRow:
    line: int  # the line in the file (the header is line 1)
    campaign_slug: str
    amount: Money | None = None
    occurred_at: datetime | None = None
    donor_name: str | None = None
    donor_email: str | None = None
    source: str = "bank_transfer"
    note: str | None = None
    original: Money | None = None
    exchange_rate: str | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def formatted(self) -> str:
        return format_money(self.amount.minor, self.amount.currency) if self.amount else ""


@dataclass
class ImportPlan:
    digest: str
    rows: list[ImportRow]
    errors: list[str]  # file-level problems

    @property
    def valid(self) -> bool:
        return not self.errors and all(not r.errors for r in self.rows)

    @property
    def error_count(self) -> int:
        return len(self.errors) + sum(len(r.errors) for r in self.rows)

    def totals(self) -> dict[str, str]:
        sums: dict[str, int] = {}
        currencies: dict[str, str] = {}
        for row in self.rows:
            if row.amount is not None:
                sums[row.campaign_slug] = sums.get(row.campaign_slug, 0) + row.amount.minor
                currencies[row.campaign_slug] = row.amount.currency
        return {slug: format_money(m, currencies[slug]) for slug, m in sums.items()}


def _date(text: str) -> datetime:
    text = text.strip()
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(12), UTC)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise Invalid(f"date {text!r} is not like 2026-11-24 or 2026-11-24T10:30+01:00") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def plan(session: Session, data: bytes) -> ImportPlan:
    """Read and check the whole file; nothing is written."""
    digest = hashlib.sha256(data).hexdigest()[:20]
    result = ImportPlan(digest, [], [])
    if len(data) > MAX_BYTES:
        result.errors.append(f"the file is larger than {MAX_BYTES // (1024 * 1024)} MB")
        return result
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        result.errors.append("the file is not UTF-8 text; save it as CSV UTF-8")
        return result
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        result.errors.append(f"the header row lacks the column(s): {', '.join(missing)}")
        return result
    unknown = [h for h in header if h and h not in COLUMNS]
    if unknown:
        result.errors.append(f"unknown column(s): {', '.join(unknown)}")
        return result
    reader.fieldnames = header
    known: dict[str, Campaign | None] = {}
    for number, raw in enumerate(reader, start=2):
        if len(result.rows) >= MAX_ROWS:
            result.errors.append(f"at most {MAX_ROWS} rows per file")
            break
        if None in raw:
            row = ImportRow(number, "")
            row.errors.append("more cells than columns")
            result.rows.append(row)
            continue
        cells = {k: (v or "").strip() for k, v in raw.items()}
        if not any(cells.values()):
            continue  # blank line
        result.rows.append(_check_row(session, number, cells, known))
    if not result.rows and not result.errors:
        result.errors.append("the file has no rows")
    return result


def _check_row(
    session: Session, number: int, cells: dict[str, str], known: dict[str, Campaign | None]
) -> ImportRow:
    slug = cells.get("campaign", "")
    row = ImportRow(number, slug)
    if slug not in known:
        known[slug] = campaign_store.by_slug(session, slug) if slug else None
    campaign = known[slug]
    if campaign is None:
        row.errors.append(f"no campaign {slug!r}" if slug else "campaign is empty")
    elif campaign.status == CampaignStatus.ARCHIVED:
        row.errors.append(f"campaign {slug!r} is archived")
    if campaign is not None:
        try:
            row.amount = parse_amount(
                cells.get("amount", ""), campaign.currency, max_minor=MAX_MINOR
            )
        except MoneyError as exc:
            row.errors.append(f"amount: {exc.message}")
    try:
        row.occurred_at = _date(cells.get("date", ""))
    except Invalid as exc:
        row.errors.append(exc.message)
    row.donor_name = cells.get("donor_name") or None
    if row.donor_name and len(row.donor_name) > 200:
        row.errors.append("donor_name is longer than 200 characters")
    email = cells.get("donor_email") or None
    if email and not EMAIL_RE.fullmatch(email.lower()):
        row.errors.append(f"donor_email {email!r} is not an email address")
    row.donor_email = email
    row.source = cells.get("source") or "bank_transfer"
    if row.source not in gifts.OFFLINE_SOURCES:
        row.errors.append(f"source must be one of {', '.join(gifts.OFFLINE_SOURCES)}")
    row.note = cells.get("note") or None
    if row.note and len(row.note) > 2000:
        row.errors.append("note is longer than 2,000 characters")
    original_amount = cells.get("original_amount", "")
    original_currency = cells.get("original_currency", "")
    rate = cells.get("exchange_rate", "")
    if original_amount or original_currency or rate:
        if not (original_amount and original_currency and rate):
            row.errors.append(
                "a gift in another currency needs original_amount, original_currency "
                "and exchange_rate"
            )
        else:
            try:
                row.original = parse_amount(original_amount, original_currency, max_minor=MAX_MINOR)
            except MoneyError as exc:
                row.errors.append(f"original_amount: {exc.message}")
            try:
                if Decimal(rate) <= 0:
                    raise InvalidOperation
                row.exchange_rate = rate
            except InvalidOperation:
                row.errors.append(f"exchange_rate {rate!r} is not a positive number")
    return row


def apply(session: Session, data: bytes, *, actor: str, admin_id: int | None = None) -> ImportPlan:
    """Check the file again and record every row; raise (writing nothing) if anything fails."""
    result = plan(session, data)
    if not result.valid:
        raise Invalid(f"the file has {result.error_count} error(s); nothing was imported")
    for row in result.rows:
        campaign = campaign_store.by_slug(session, row.campaign_slug)
        assert campaign is not None
        assert row.amount is not None
        try:
            gifts.record_offline_gift(
                session,
                campaign,
                row.amount,
                actor=actor,
                admin_id=admin_id,
                source=row.source,
                donor_name=row.donor_name,
                donor_email=row.donor_email,
                occurred_at=row.occurred_at,
                note=row.note,
                original=row.original,
                exchange_rate=row.exchange_rate,
                new_ref=f"imp_{result.digest}_{row.line}",
                reason="CSV import",
            )
        except Conflict:
            raise Conflict("this file was imported already; nothing was imported again") from None
    return result
