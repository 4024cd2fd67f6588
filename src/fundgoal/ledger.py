"""The ledger: the one place totals change.

A provider tells us facts about a gift ("PaymentIntent pi_1 of 2,500 USD succeeded", "charge
ch_1 has 1,000 refunded in total", "dispute dp_1 is lost"). Each fact carries absolute state,
never a delta, and `apply` merges it into the gift's entry with rules that only move forward
(a join: status by rank, refunds by maximum, disputes by stage). So the same facts applied in any
order, any number of times, give the same entry; and the campaign's stored totals move by the
difference between the entry's counted amount before and after, in the same transaction.

Concurrency: every write first locks the campaign row (`UPDATE campaign SET id = id`), which
serialises writers per campaign on PostgreSQL (row lock) and SQLite (the write lock), so the
incremental totals and donor count cannot race. `recompute` derives the totals from the entries
alone; `fundgoal campaign show` compares the two.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select, update
from sqlmodel import Session, col

from .errors import Invalid
from .models import Campaign, EntryKind, EntryStatus, LedgerEntry, utcnow

# Later states win whatever order facts arrive in. A PaymentIntent that succeeded cannot
# un-succeed (refunds and disputes are separate facts); an invoice that failed and was then paid
# on retry is paid. VOID is reachable only through an authoritative (offline) write.
STATUS_RANK = {
    EntryStatus.PENDING: 0,
    EntryStatus.EXPIRED: 1,
    EntryStatus.FAILED: 2,
    EntryStatus.SUCCEEDED: 3,
    EntryStatus.VOID: 4,
}

# Stripe dispute stages. Funds leave the balance at needs_response/under_review and stay gone
# when lost; they come back when won. warning_* are inquiries: no money moved.
DISPUTE_RANK = {
    "warning_needs_response": 1,
    "warning_under_review": 1,
    "needs_response": 2,
    "under_review": 2,
    "warning_closed": 3,
    "won": 3,
    "lost": 3,
    "prevented": 3,
}
DISPUTE_WITHHOLDS = {"needs_response", "under_review", "lost"}

# Donor keys say who gave, so one donor giving monthly counts once. Better evidence wins.
_KEY_RANK = {"email": 3, "customer": 2, "sub": 1}


class LedgerError(Invalid):
    """A fact that cannot be applied (unknown campaign, no amount for a new entry, …)."""


@dataclass(frozen=True)
class Fact:
    """What a provider (or an admin) says about one gift now. None means "not said here"."""

    provider: str
    ref: str
    campaign_id: int | None = None
    kind: str | None = None
    source: str | None = None
    currency: str | None = None
    amount: int | None = None
    amount_refunded: int | None = None  # cumulative, as Stripe reports it
    dispute_status: str | None = None
    dispute_amount: int | None = None
    status: str | None = None
    donor_key: str | None = None
    donor_name: str | None = None
    donor_email: str | None = None
    message: str | None = None
    anonymous: bool | None = None
    attempt_id: str | None = None
    checkout_session_id: str | None = None
    payment_intent_id: str | None = None
    charge_id: str | None = None
    invoice_id: str | None = None
    subscription_id: str | None = None
    customer_id: str | None = None
    original_amount: int | None = None
    original_currency: str | None = None
    exchange_rate: str | None = None
    note: str | None = None
    flag: str | None = None
    occurred_at: datetime | None = None
    # An admin's write (offline entries) replaces the entry's state instead of merging it,
    # and so can lower an amount, void an entry or clear a flag.
    authoritative: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Applied:
    entry: LedgerEntry
    changed: bool
    raised_delta: int
    donors_delta: int


@dataclass(frozen=True)
class Totals:
    raised: int
    donors: int
    last_gift_at: datetime | None


def counted_amount(entry: LedgerEntry, campaign_currency: str) -> int:
    """What an entry adds to its campaign's total: its net amount while it succeeded."""
    if entry.status != EntryStatus.SUCCEEDED or entry.flag:
        return 0
    if entry.currency != campaign_currency:
        return 0  # never mixed: a foreign-currency entry is flagged on the way in
    return max(entry.amount - entry.amount_refunded - entry.amount_disputed, 0)


def donor_key_for(
    *, email: str | None = None, customer: str | None = None, subscription: str | None = None
) -> str | None:
    if email:
        return "email:" + email.strip().lower()
    if customer:
        return "customer:" + customer
    if subscription:
        return "sub:" + subscription
    return None


def _key_rank(key: str | None) -> int:
    if not key:
        return -1
    return _KEY_RANK.get(key.split(":", 1)[0], 0)


def _better_key(old: str | None, new: str | None) -> str | None:
    if _key_rank(new) > _key_rank(old):
        return new
    if _key_rank(new) == _key_rank(old) and old and new:
        return min(old, new)  # deterministic, whichever order the two arrive in
    return old


_SCALAR_FIRST_WINS = (
    "kind",
    "source",
    "donor_name",
    "donor_email",
    "message",
    "attempt_id",
    "checkout_session_id",
    "payment_intent_id",
    "charge_id",
    "invoice_id",
    "subscription_id",
    "customer_id",
    "original_amount",
    "original_currency",
    "exchange_rate",
    "note",
)


def _merge(entry: LedgerEntry, fact: Fact) -> None:
    """Fold a fact into an entry, order-independently (see the module docstring)."""
    if fact.authoritative:
        _overwrite(entry, fact)
        return
    for name in _SCALAR_FIRST_WINS:
        value = getattr(fact, name)
        if value is not None and getattr(entry, name) is None:
            setattr(entry, name, value)
    if fact.anonymous:
        entry.anonymous = True  # a donor's wish to stay anonymous, once said, holds
    if fact.currency and not entry.currency:
        entry.currency = fact.currency
    if fact.amount is not None:
        entry.amount = max(entry.amount, fact.amount)
    if fact.amount_refunded is not None:
        entry.amount_refunded = max(entry.amount_refunded, fact.amount_refunded)
    if fact.status is not None:
        new_status = EntryStatus(fact.status)
        if STATUS_RANK[new_status] > STATUS_RANK[EntryStatus(entry.status)]:
            entry.status = new_status.value
    if fact.dispute_status is not None:
        old_rank = DISPUTE_RANK.get(entry.dispute_status or "", 0)
        if DISPUTE_RANK.get(fact.dispute_status, 0) >= old_rank:
            # Equal ranks (won vs lost) cannot both happen for one dispute; take the fact.
            entry.dispute_status = fact.dispute_status
        if fact.dispute_amount is not None and entry.dispute_status == fact.dispute_status:
            entry.amount_disputed = (
                fact.dispute_amount if fact.dispute_status in DISPUTE_WITHHOLDS else 0
            )
    if fact.flag and not entry.flag:
        entry.flag = fact.flag
    entry.donor_key = _better_key(entry.donor_key, fact.donor_key)
    if fact.occurred_at is not None:
        entry.occurred_at = min(entry.occurred_at, fact.occurred_at)


def _overwrite(entry: LedgerEntry, fact: Fact) -> None:
    for f in fields(fact):
        if f.name in {"provider", "ref", "campaign_id", "authoritative", "extra"}:
            continue
        value = getattr(fact, f.name)
        if f.name == "dispute_amount":
            continue
        if f.name == "flag" or value is not None:
            setattr(entry, f.name, value)
    if fact.dispute_amount is not None:
        entry.amount_disputed = fact.dispute_amount


def _lock_campaign(session: Session, campaign_id: int) -> Campaign:
    # Two writers to one campaign must queue instead of racing: the lock comes before anything
    # is read. PostgreSQL: lock and read the row in one round trip (this runs inside the
    # campaign's critical section on every webhook). FOR NO KEY UPDATE, like an UPDATE, leaves
    # inserts that reference the campaign (their FOR KEY SHARE checks) unblocked.
    if session.get_bind().dialect.name == "postgresql":
        locked = session.scalars(
            select(Campaign)
            .where(col(Campaign.id) == campaign_id)
            .with_for_update(key_share=True)
            .execution_options(populate_existing=True)
        ).first()
        if locked is None:
            raise LedgerError(f"campaign {campaign_id} does not exist")
        return locked
    # SQLite has no row locks: a no-op UPDATE takes the database write lock.
    result = session.execute(
        update(Campaign).where(col(Campaign.id) == campaign_id).values(id=Campaign.id)
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise LedgerError(f"campaign {campaign_id} does not exist")
    campaign = session.get(Campaign, campaign_id, populate_existing=True)
    assert campaign is not None
    return campaign


def find_entry(session: Session, provider: str, ref: str) -> LedgerEntry | None:
    # populate_existing: an entry read into this session earlier (before the campaign lock)
    # must be re-read, or a concurrent writer's committed state would be merged over stale data.
    return session.scalars(
        select(LedgerEntry)
        .where(and_(col(LedgerEntry.provider) == provider, col(LedgerEntry.provider_ref) == ref))
        .execution_options(populate_existing=True)
    ).first()


def _donor_has_other(session: Session, campaign_id: int, key: str, entry_id: int | None) -> bool:
    query = select(col(LedgerEntry.id)).where(
        col(LedgerEntry.campaign_id) == campaign_id,
        col(LedgerEntry.donor_key) == key,
        col(LedgerEntry.counted) > 0,
    )
    if entry_id is not None:
        query = query.where(col(LedgerEntry.id) != entry_id)
    return session.execute(query.limit(1)).first() is not None


def apply(session: Session, fact: Fact, *, now: datetime | None = None) -> Applied:
    """Merge one fact into the ledger and move the campaign's totals by what changed.

    The caller owns the transaction (it commits, or rolls back on error).
    """
    moment = now or utcnow()
    campaign_id = fact.campaign_id
    if campaign_id is None:
        existing = find_entry(session, fact.provider, fact.ref)
        if existing is None:
            raise LedgerError(f"no campaign known for {fact.provider}:{fact.ref}")
        campaign_id = existing.campaign_id
    campaign = _lock_campaign(session, campaign_id)
    entry = find_entry(session, fact.provider, fact.ref)
    if entry is not None and entry.campaign_id != campaign_id:
        raise LedgerError(f"{fact.provider}:{fact.ref} belongs to another campaign")
    if entry is None:
        if not fact.currency:
            raise LedgerError(f"a new entry {fact.provider}:{fact.ref} needs a currency")
        entry = LedgerEntry(
            campaign_id=campaign_id,
            provider=fact.provider,
            provider_ref=fact.ref,
            kind=fact.kind or EntryKind.ONE_TIME.value,
            source=fact.source or fact.provider,
            currency=fact.currency,
            occurred_at=fact.occurred_at or moment,
            created_at=moment,
            updated_at=moment,
        )
        before_counted, before_key = 0, None
        snapshot_before: dict[str, Any] | None = None
    else:
        before_counted, before_key = entry.counted, entry.donor_key
        snapshot_before = entry.model_dump()
    _merge(entry, fact)
    if entry.currency != campaign.currency and not entry.flag:
        entry.flag = f"currency {entry.currency} differs from the campaign's {campaign.currency}"
    if entry.donor_key is None:
        entry.donor_key = f"{entry.provider}:{entry.provider_ref}"
    entry.counted = counted_amount(entry, campaign.currency)
    changed = snapshot_before is None or _differs(snapshot_before, entry.model_dump())
    if not changed:
        return Applied(entry, False, 0, 0)
    entry.updated_at = moment
    session.add(entry)
    session.flush()

    donors_delta = 0
    if before_counted > 0 and before_key and (entry.counted == 0 or before_key != entry.donor_key):
        if not _donor_has_other(session, campaign_id, before_key, entry.id):
            donors_delta -= 1
    if (
        entry.counted > 0
        and entry.donor_key
        and (before_counted == 0 or before_key != entry.donor_key)
    ):
        if not _donor_has_other(session, campaign_id, entry.donor_key, entry.id):
            donors_delta += 1
    raised_delta = entry.counted - before_counted
    campaign.raised += raised_delta
    campaign.donors += donors_delta
    if entry.counted > 0 and (
        campaign.last_gift_at is None or entry.occurred_at > campaign.last_gift_at
    ):
        campaign.last_gift_at = entry.occurred_at
    campaign.version += 1
    campaign.updated_at = moment
    session.add(campaign)
    session.flush()
    return Applied(entry, True, raised_delta, donors_delta)


def _differs(before: dict[str, Any], after: dict[str, Any]) -> bool:
    ignore = {"updated_at"}
    return any(before.get(k) != v for k, v in after.items() if k not in ignore)


def recompute(session: Session, campaign_id: int) -> Totals:
    """The campaign's totals derived from its entries alone."""
    row = session.execute(
        select(
            func.coalesce(func.sum(LedgerEntry.counted), 0),
            func.count(func.distinct(LedgerEntry.donor_key)),
            func.max(LedgerEntry.occurred_at),
        ).where(col(LedgerEntry.campaign_id) == campaign_id, col(LedgerEntry.counted) > 0)
    ).one()
    return Totals(raised=int(row[0]), donors=int(row[1]), last_gift_at=row[2])


def stored(campaign: Campaign) -> Totals:
    return Totals(campaign.raised, campaign.donors, campaign.last_gift_at)


def drift(session: Session, campaign: Campaign) -> tuple[Totals, Totals] | None:
    """(stored, recomputed) when they disagree on money or donors, else None."""
    assert campaign.id is not None
    derived = recompute(session, campaign.id)
    kept = stored(campaign)
    if (kept.raised, kept.donors) != (derived.raised, derived.donors):
        return kept, derived
    return None


def repair(session: Session, campaign_id: int) -> Totals:
    """Set the stored totals to the recomputed ones (and recount every entry first)."""
    campaign = _lock_campaign(session, campaign_id)
    entries = session.scalars(
        select(LedgerEntry).where(col(LedgerEntry.campaign_id) == campaign_id)
    )
    for entry in entries:
        counted = counted_amount(entry, campaign.currency)
        if counted != entry.counted:
            entry.counted = counted
            session.add(entry)
    session.flush()
    totals = recompute(session, campaign_id)
    campaign.raised, campaign.donors = totals.raised, totals.donors
    campaign.last_gift_at = totals.last_gift_at
    campaign.version += 1
    campaign.updated_at = utcnow()
    session.add(campaign)
    session.flush()
    return totals


def with_campaign(fact: Fact, campaign_id: int) -> Fact:
    return replace(fact, campaign_id=campaign_id)
