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
from datetime import datetime

from sqlmodel import Session

from ..errors import Conflict, Invalid
from ..inputs import InputError
from ..inputs.gift import CSV_LABELS, GiftText
from ..inputs.text import is_slug
from ..models import Campaign, CampaignStatus
from ..money import Money, format_money
from ..stores import campaigns as campaign_store
from . import gifts

MAX_BYTES = 2 * 1024 * 1024
MAX_ROWS = 5000
MAX_CELL = 128 * 1024  # csv's own field limit; no column holds more than 2,000 characters
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
    csv.field_size_limit(MAX_CELL)  # the default, set so a change elsewhere cannot raise it
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        names = reader.fieldnames or []
    except csv.Error as exc:
        result.errors.append(f"the header row cannot be read ({exc})")
        return result
    header = [h.strip().lower()[:64] for h in names]
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
    rows = enumerate(reader, start=2)
    while True:
        try:
            number, raw = next(rows)
        except StopIteration:
            break
        except csv.Error as exc:
            # A cell past csv's field limit (MAX_CELL), or a line the reader cannot split.
            row = ImportRow(reader.line_num, "")
            reason = "a cell is longer than 128 KB" if "field limit" in str(exc) else str(exc)
            row.errors.append(f"line {reader.line_num}: {reason}; nothing after it was read")
            result.rows.append(row)
            break
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
    row = ImportRow(number, slug if is_slug(slug) else "")
    if slug not in known:
        known[slug] = campaign_store.by_slug(session, slug) if is_slug(slug) else None
    campaign = known[slug]
    if campaign is None:
        row.errors.append(f"no campaign {slug[:64]!r}" if slug else "campaign is empty")
    elif campaign.status == CampaignStatus.ARCHIVED:
        row.errors.append(f"campaign {slug!r} is archived")
    # The same rules as the dashboard's gift form (inputs/gift.py), named by column.
    text = GiftText(**{k: v for k, v in cells.items() if k != "campaign"})
    try:
        gift = text.gift(campaign.currency if campaign else "USD", CSV_LABELS)
    except InputError as exc:
        # Without a campaign the amount cannot be read in its currency; the rest still can.
        row.errors.extend(
            f"{name}: {message}"
            for name, message in exc.fields.items()
            if campaign is not None or name != "amount"
        )
        return row
    if campaign is not None:
        row.amount = gift.amount
    row.occurred_at = gift.occurred_at
    row.donor_name, row.donor_email = gift.donor_name, gift.donor_email
    row.source, row.note = gift.source, gift.note
    row.original, row.exchange_rate = gift.original, gift.exchange_rate
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
