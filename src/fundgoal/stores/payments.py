"""Provider bookkeeping: processed webhook events, and finding a gift by its provider ids."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from ..models import DonationAttempt, LedgerEntry, ProcessedEvent, utcnow


def seen(session: Session, event_id: str) -> bool:
    return session.get(ProcessedEvent, event_id) is not None


def claim(session: Session, event_id: str, provider: str, event_type: str) -> bool:
    """Insert the event id unless it is there; True when this transaction inserted it.

    On PostgreSQL a concurrent delivery of the same event waits here for the first one's
    transaction and then finds the row: exactly one of them goes on to the ledger.
    """
    values = {
        "id": event_id,
        "provider": provider,
        "type": event_type[:100],
        "received_at": utcnow(),
    }
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(ProcessedEvent).values(**values).on_conflict_do_nothing()
    result = session.execute(statement)
    return bool(result.rowcount)  # type: ignore[attr-defined]


def set_outcome(session: Session, event_id: str, outcome: str, detail: str | None) -> None:
    session.execute(
        update(ProcessedEvent)
        .where(col(ProcessedEvent.id) == event_id)
        .values(outcome=outcome, detail=(detail or None) and detail[:255])
    )


def get_event(session: Session, event_id: str) -> ProcessedEvent | None:
    return session.get(ProcessedEvent, event_id)


def entry_for_payment(
    session: Session, provider: str, payment_intent_id: str | None, charge_id: str | None
) -> LedgerEntry | None:
    """The gift a PaymentIntent or charge belongs to: a one-time gift is keyed by its
    PaymentIntent; a monthly one (keyed by invoice) carries them as columns."""
    conditions = []
    if payment_intent_id:
        conditions.append(col(LedgerEntry.provider_ref) == payment_intent_id)
        conditions.append(col(LedgerEntry.payment_intent_id) == payment_intent_id)
    if charge_id:
        conditions.append(col(LedgerEntry.charge_id) == charge_id)
    if not conditions:
        return None
    return session.scalars(
        select(LedgerEntry)
        .where(col(LedgerEntry.provider) == provider, or_(*conditions))
        .order_by(col(LedgerEntry.id))
    ).first()


def entries_for_attempt(session: Session, attempt_id: str) -> Sequence[LedgerEntry]:
    return session.scalars(
        select(LedgerEntry)
        .where(col(LedgerEntry.attempt_id) == attempt_id)
        .order_by(col(LedgerEntry.occurred_at), col(LedgerEntry.id))
    ).all()


def wall_entries(session: Session, campaign_id: int, limit: int) -> Sequence[LedgerEntry]:
    # The donor's choice is read from our attempt as well as from the entry: the ledger's
    # first-wins merge keeps a new entry's default anonymous=False over a later fact's True.
    return session.scalars(
        select(LedgerEntry)
        .outerjoin(DonationAttempt, col(DonationAttempt.id) == col(LedgerEntry.attempt_id))
        .where(
            or_(col(DonationAttempt.id).is_(None), col(DonationAttempt.anonymous).is_(False)),
            col(LedgerEntry.campaign_id) == campaign_id,
            col(LedgerEntry.counted) > 0,
            col(LedgerEntry.anonymous).is_(False),
            col(LedgerEntry.donor_name).is_not(None),
            col(LedgerEntry.kind) != "offline",
        )
        .order_by(col(LedgerEntry.occurred_at).desc(), col(LedgerEntry.id).desc())
        .limit(limit)
    ).all()
