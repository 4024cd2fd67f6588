"""Donation attempts: what donors asked for on our form, before the provider confirms it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlmodel import Session, col

from ..models import DonationAttempt


def add(session: Session, attempt: DonationAttempt) -> DonationAttempt:
    session.add(attempt)
    session.flush()
    return attempt


def get(session: Session, attempt_id: str) -> DonationAttempt | None:
    return session.get(DonationAttempt, attempt_id)


def get_for_update(session: Session, attempt_id: str) -> DonationAttempt | None:
    """The attempt, re-read and row-locked (PostgreSQL) for a read-modify-write."""
    return session.get(DonationAttempt, attempt_id, with_for_update=True, populate_existing=True)


def by_checkout_session(session: Session, checkout_session_id: str) -> DonationAttempt | None:
    return session.scalars(
        select(DonationAttempt).where(
            col(DonationAttempt.checkout_session_id) == checkout_session_id
        )
    ).first()


def by_subscription(session: Session, subscription_id: str) -> Sequence[DonationAttempt]:
    return session.scalars(
        select(DonationAttempt).where(col(DonationAttempt.subscription_id) == subscription_id)
    ).all()


def count_since(session: Session, client_hash: str, since: datetime) -> int:
    return int(
        session.execute(
            select(func.count()).where(
                col(DonationAttempt.client_hash) == client_hash,
                col(DonationAttempt.created_at) >= since,
            )
        ).scalar_one()
    )
