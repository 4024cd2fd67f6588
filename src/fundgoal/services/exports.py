"""CSV export of donations: the dashboard's filters, streamed batch by batch in constant memory.

Cells a spreadsheet would read as a formula (starting with = + - @, a tab or a carriage return)
get a leading single quote: a donor named `=HYPERLINK(…)` must not run in the treasurer's Excel.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Row
from sqlmodel import Session

from ..models import LedgerEntry
from ..money import exponent
from ..stores import campaigns as campaign_store
from ..stores import donations

HEADER = (
    "id",
    "occurred_at",
    "campaign",
    "provider",
    "provider_ref",
    "kind",
    "source",
    "status",
    "currency",
    "amount",
    "refunded",
    "disputed",
    "counted",
    "donor_name",
    "donor_email",
    "anonymous",
    "message",
    "note",
    "original_amount",
    "original_currency",
    "exchange_rate",
    "payment_intent_id",
    "charge_id",
    "invoice_id",
    "subscription_id",
    "customer_id",
    "flag",
)
_DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """The cell as text, defused against CSV formula injection."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    if text.startswith(_DANGEROUS):
        return "'" + text
    return text


def major(minor: int | None, currency: str | None) -> str:
    if minor is None or not currency:
        return ""
    return str(Decimal(minor).scaleb(-exponent(currency)))


def _stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def row_cells(entry: LedgerEntry | Row[Any], slug: str) -> list[str]:
    c = entry.currency
    # Only the free-text cells can carry a formula: ids, amounts and dates are ours.
    return [
        str(entry.id),
        _stamp(entry.occurred_at),
        slug,
        entry.provider,
        safe_cell(entry.provider_ref),
        entry.kind,
        safe_cell(entry.source),
        entry.status,
        c,
        major(entry.amount, c),
        major(entry.amount_refunded, c),
        major(entry.amount_disputed, c),
        major(entry.counted, c),
        safe_cell(entry.donor_name),
        safe_cell(entry.donor_email),
        "yes" if entry.anonymous else "no",
        safe_cell(entry.message),
        safe_cell(entry.note),
        major(entry.original_amount, entry.original_currency),
        entry.original_currency or "",
        safe_cell(entry.exchange_rate),
        safe_cell(entry.payment_intent_id),
        safe_cell(entry.charge_id),
        safe_cell(entry.invoice_id),
        safe_cell(entry.subscription_id),
        safe_cell(entry.customer_id),
        safe_cell(entry.flag),
    ]


def csv_chunks(
    session: Session, filters: donations.DonationFilter, *, batch: int = 1000
) -> Iterator[str]:
    """The header, then one chunk of CSV text per keyset batch."""
    slugs = {c.id: c.slug for c in campaign_store.all_campaigns(session)}
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    writer.writerow(HEADER)
    yield buffer.getvalue()
    for rows in donations.batches(session, filters, size=batch):
        buffer.seek(0)
        buffer.truncate()
        writer.writerows(row_cells(e, slugs.get(e.campaign_id, "")) for e in rows)
        yield buffer.getvalue()
