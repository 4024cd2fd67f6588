"""Offline and external gifts (bank transfer, cheque, cash, another platform), written by admins.

They go through the ledger like Stripe's facts, but authoritatively: an admin's edit replaces
the entry's state, and every change is written to the audit log with its reason.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import Session

from .. import ledger
from ..errors import Conflict, Invalid, NotFound
from ..inputs.gift import OFFLINE_SOURCES, OfflineGift
from ..inputs.text import check_reason
from ..models import Campaign, EntryKind, EntryStatus, LedgerEntry
from ..money import Money
from ..stores import audit

__all__ = ["OFFLINE_SOURCES", "record_offline_gift", "void_offline_gift"]


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
    # The one set of gift rules (inputs/gift.py): the dashboard and CSV import built the same
    # model from text already; callers in code get the same checks here.
    gift = OfflineGift(
        amount=amount,
        source=source,
        donor_name=donor_name,
        donor_email=donor_email,
        occurred_at=occurred_at,
        note=note,
        original=original,
        exchange_rate=exchange_rate,
        reason=reason,
    )
    source, donor_name, donor_email = gift.source, gift.donor_name, gift.donor_email
    occurred_at, note, reason = gift.occurred_at, gift.note, gift.reason
    original, exchange_rate = gift.original, gift.exchange_rate
    if amount.currency != campaign.currency:
        raise Invalid(
            f"record the gift in {campaign.currency}; give the original amount and rate "
            "when it was received in another currency"
        )
    if original is not None and original.currency == campaign.currency:
        original, exchange_rate = None, None
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
    why = check_reason(reason)
    if why is None:
        raise Invalid("say why the gift is voided")
    reason = why
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
