"""Offline and external gifts (bank transfer, cheque, cash, another platform), written by admins.

They go through the ledger like Stripe's facts, but authoritatively: an admin's edit replaces
the entry's state, and every change is written to the audit log with its reason.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal, InvalidOperation

from sqlmodel import Session

from .. import ledger
from ..errors import Conflict, Invalid, NotFound
from ..models import Campaign, EntryKind, EntryStatus, LedgerEntry
from ..money import Money
from ..stores import audit

OFFLINE_SOURCES = ("bank_transfer", "cheque", "cash", "other_platform", "other")


def _entry_summary(entry: LedgerEntry) -> dict[str, object]:
    return entry.model_dump(
        mode="json",
        include={
            "provider_ref",
            "amount",
            "currency",
            "status",
            "source",
            "donor_name",
            "donor_email",
            "occurred_at",
            "note",
            "original_amount",
            "original_currency",
            "exchange_rate",
        },
    )


def record_offline_gift(
    session: Session,
    campaign: Campaign,
    amount: Money,
    *,
    actor: str,
    source: str = "bank_transfer",
    donor_name: str | None = None,
    donor_email: str | None = None,
    occurred_at: datetime | None = None,
    note: str | None = None,
    original: Money | None = None,
    exchange_rate: str | None = None,
    admin_id: int | None = None,
    ref: str | None = None,
    reason: str | None = None,
    new_ref: str | None = None,
) -> LedgerEntry:
    """Add (or, with `ref`, replace) an offline gift in the campaign's currency.

    `new_ref` names a new entry deterministically (a CSV import's rows), so importing the same
    file twice is refused instead of counting its gifts twice.
    """
    assert campaign.id is not None
    if source not in OFFLINE_SOURCES:
        raise Invalid(f"source must be one of {', '.join(OFFLINE_SOURCES)}")
    if amount.currency != campaign.currency:
        raise Invalid(
            f"record the gift in {campaign.currency}; give the original amount and rate "
            "when it was received in another currency"
        )
    if amount.minor <= 0:
        raise Invalid("the amount must be more than zero")
    if original is not None:
        if original.currency == campaign.currency:
            original, exchange_rate = None, None
        elif not exchange_rate:
            raise Invalid("give the exchange rate used for a gift in another currency")
        else:
            try:
                if Decimal(exchange_rate) <= 0:
                    raise InvalidOperation
            except InvalidOperation:
                raise Invalid("the exchange rate must be a positive number") from None
    if note is not None and len(note) > 2000:
        raise Invalid("a note is at most 2,000 characters")
    if donor_name is not None and len(donor_name) > 200:
        raise Invalid("a donor name is at most 200 characters")
    before = None
    if new_ref is not None and ledger.find_entry(session, "offline", new_ref) is not None:
        raise Conflict(f"the gift {new_ref} is already recorded")
    if ref is not None:
        existing = ledger.find_entry(session, "offline", ref)
        if existing is None or existing.campaign_id != campaign.id:
            raise NotFound(f"no offline gift {ref!r} in this campaign")
        before = _entry_summary(existing)
    fact = ledger.Fact(
        provider="offline",
        ref=ref or new_ref or "off_" + uuid.uuid4().hex,
        campaign_id=campaign.id,
        kind=EntryKind.OFFLINE.value,
        source=source,
        currency=amount.currency,
        amount=amount.minor,
        amount_refunded=0,
        status=EntryStatus.SUCCEEDED.value,
        donor_key=ledger.donor_key_for(email=donor_email),
        donor_name=donor_name,
        donor_email=donor_email,
        note=note,
        original_amount=original.minor if original else None,
        original_currency=original.currency if original else None,
        exchange_rate=exchange_rate if original else None,
        occurred_at=occurred_at,
        authoritative=True,
    )
    entry = ledger.apply(session, fact).entry
    audit.record(
        session,
        actor=actor,
        admin_id=admin_id,
        action="gift.edit" if before else "gift.record",
        entity="ledger_entry",
        entity_id=entry.provider_ref,
        before=before,
        after=_entry_summary(entry),
        reason=reason,
    )
    return entry


def void_offline_gift(
    session: Session, ref: str, *, actor: str, reason: str, admin_id: int | None = None
) -> LedgerEntry:
    entry = ledger.find_entry(session, "offline", ref)
    if entry is None:
        raise NotFound(f"no offline gift {ref!r}")
    if not reason.strip():
        raise Invalid("say why the gift is voided")
    before = _entry_summary(entry)
    applied = ledger.apply(
        session,
        ledger.Fact(provider="offline", ref=ref, status=EntryStatus.VOID.value, authoritative=True),
    )
    audit.record(
        session,
        actor=actor,
        admin_id=admin_id,
        action="gift.void",
        entity="ledger_entry",
        entity_id=ref,
        before=before,
        after=_entry_summary(applied.entry),
        reason=reason,
    )
    return applied.entry
