"""SQLModel tables. Amounts are BIGINT minor units; timestamps are aware UTC datetimes.

SQLModel's UTCDateTime stores them as UTC on both databases and hands them back aware, so
SQLite and PostgreSQL behave identically. `utcnow()` is the one clock.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class CampaignStatus(StrEnum):
    ACTIVE = "active"
    CLOSED = "closed"  # visible, takes no payment; can be reopened
    ARCHIVED = "archived"  # the final state, frozen; still served to old articles


class EntryStatus(StrEnum):
    PENDING = "pending"  # checkout completed, money not yet confirmed (async methods)
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    EXPIRED = "expired"
    VOID = "void"  # an offline entry an admin withdrew


class EntryKind(StrEnum):
    ONE_TIME = "one_time"
    MONTHLY = "monthly"  # one row per paid invoice
    OFFLINE = "offline"


class Campaign(SQLModel, table=True):
    __tablename__ = "campaign"

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=64, unique=True, index=True)
    title: str = Field(max_length=200)
    description: str = Field(default="", max_length=5000)
    currency: str = Field(max_length=3)
    # [{"amount": minor, "label": str|None, "stretch": bool}], increasing; see progress.py
    milestones: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    over_goal_policy: str = Field(default="fill", max_length=16)
    deadline: date | None = None
    status: str = Field(default=CampaignStatus.ACTIVE.value, max_length=16)
    preset_amounts: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    min_amount: int = Field(default=100, sa_type=BigInteger)
    max_amount: int = Field(default=1_000_000, sa_type=BigInteger)
    donor_wall: bool = True
    # widget defaults: {"theme": "auto", "accent": "#0b6e4f", "compact": false, "locale": "en"}
    theme: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # Kept current by ledger.py in the same transaction as every ledger write, and always
    # recomputable from the ledger (ledger.recompute).
    raised: int = Field(default=0, sa_type=BigInteger)
    donors: int = 0
    last_gift_at: datetime | None = None
    # Bumped on every change that a bar could show; workers compare it to rebuild snapshots.
    version: int = Field(default=1, sa_type=BigInteger)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class LedgerEntry(SQLModel, table=True):
    """One gift as its provider sees it now: absolute state, never a delta.

    Keyed by (provider, provider_ref): a Stripe PaymentIntent id for one-time gifts, an invoice
    id for each month of a recurring gift, an offline entry id for manual entries.
    """

    __tablename__ = "ledger_entry"
    __table_args__ = (
        UniqueConstraint("provider", "provider_ref", name="uq_ledger_provider_ref"),
        Index("ix_ledger_campaign_occurred", "campaign_id", "occurred_at", "id"),
        Index("ix_ledger_occurred", "occurred_at", "id"),
        Index("ix_ledger_campaign_donor", "campaign_id", "donor_key"),
        Index("ix_ledger_campaign_status", "campaign_id", "status", "occurred_at", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id")
    provider: str = Field(max_length=16)  # stripe | testmode | offline
    provider_ref: str = Field(max_length=255)
    kind: str = Field(max_length=16)
    source: str = Field(max_length=32)  # card/stripe, bank_transfer, cheque, cash, other_platform
    currency: str = Field(max_length=3)
    amount: int = Field(default=0, sa_type=BigInteger)
    amount_refunded: int = Field(default=0, sa_type=BigInteger)
    amount_disputed: int = Field(default=0, sa_type=BigInteger)
    dispute_status: str | None = Field(default=None, max_length=32)
    status: str = Field(default=EntryStatus.PENDING.value, max_length=16)
    # amount - refunded - disputed while succeeded, else 0: stored so totals are one SUM.
    counted: int = Field(default=0, sa_type=BigInteger)
    donor_key: str | None = Field(default=None, max_length=255)
    donor_name: str | None = Field(default=None, max_length=200)
    donor_email: str | None = Field(default=None, max_length=320, index=True)
    message: str | None = Field(default=None, max_length=1000)
    anonymous: bool = False
    attempt_id: str | None = Field(default=None, max_length=64, index=True)
    checkout_session_id: str | None = Field(default=None, max_length=255, index=True)
    payment_intent_id: str | None = Field(default=None, max_length=255, index=True)
    charge_id: str | None = Field(default=None, max_length=255, index=True)
    invoice_id: str | None = Field(default=None, max_length=255)
    subscription_id: str | None = Field(default=None, max_length=255, index=True)
    customer_id: str | None = Field(default=None, max_length=255)
    # Offline gifts in another currency: what was received and the rate used.
    original_amount: int | None = Field(default=None, sa_type=BigInteger)
    original_currency: str | None = Field(default=None, max_length=3)
    exchange_rate: str | None = Field(default=None, max_length=32)
    note: str | None = Field(default=None, max_length=2000)
    # Set when a provider's object disagrees with what we asked for (amount tampering).
    flag: str | None = Field(default=None, max_length=255)
    occurred_at: datetime = Field(default_factory=utcnow)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class ProcessedEvent(SQLModel, table=True):
    """Provider event ids already applied: inserted with on-conflict-do-nothing, then acted on."""

    __tablename__ = "processed_event"

    id: str = Field(primary_key=True, max_length=255)
    provider: str = Field(max_length=16)
    type: str = Field(max_length=100)
    received_at: datetime = Field(default_factory=utcnow)
    # What the event did: applied | unchanged | ignored | unresolved (logged with the reason in
    # detail, and left for `fundgoal stripe reconcile` to retry).
    outcome: str | None = Field(default=None, max_length=32)
    detail: str | None = Field(default=None, max_length=255)


class DonationAttempt(SQLModel, table=True):
    """What a donor asked for on our form, before the provider confirms anything."""

    __tablename__ = "donation_attempt"

    id: str = Field(primary_key=True, max_length=64)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    amount: int = Field(sa_type=BigInteger)
    currency: str = Field(max_length=3)
    frequency: str = Field(max_length=16)  # once | monthly
    donor_name: str | None = Field(default=None, max_length=200)
    message: str | None = Field(default=None, max_length=1000)
    anonymous: bool = False
    checkout_session_id: str | None = Field(default=None, max_length=255, index=True)
    # created | redirected | failed (Checkout could not be opened) | completed | expired
    status: str = Field(default="created", max_length=16)
    client_hash: str | None = Field(default=None, max_length=64, index=True)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    # Monthly gifts: the Stripe subscription, and when it ended (cancelled or unpaid).
    subscription_id: str | None = Field(default=None, max_length=255, index=True)
    ended_at: datetime | None = None


class Admin(SQLModel, table=True):
    __tablename__ = "admin"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, unique=True, index=True)
    password_hash: str = Field(max_length=255)
    # Bumped on sign-out and password change: every session cookie carrying an older epoch dies.
    session_epoch: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    last_login_at: datetime | None = None


class AuditLog(SQLModel, table=True):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_entity", "entity", "entity_id"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    actor: str = Field(max_length=320)  # an admin's email, or "cli"
    admin_id: int | None = Field(default=None, foreign_key="admin.id")
    action: str = Field(max_length=64)
    entity: str = Field(max_length=32)
    entity_id: str = Field(max_length=255)
    before: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    after: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    reason: str | None = Field(default=None, max_length=1000)


class LoginAttempt(SQLModel, table=True):
    """Failed sign-ins, per account and per address, for throttling (shared by all workers)."""

    __tablename__ = "login_attempt"
    __table_args__ = (
        Index("ix_login_email_at", "email", "at"),
        Index("ix_login_addr_at", "address", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320)
    address: str = Field(max_length=64)
    at: datetime = Field(default_factory=utcnow)
