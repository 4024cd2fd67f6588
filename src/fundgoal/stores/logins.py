"""Failed sign-in attempts (the LoginAttempt table), shared by every worker for throttling."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select
from sqlmodel import Session, col

from ..models import LoginAttempt


def record_failure(session: Session, *, email: str, address: str, at: datetime) -> None:
    session.add(LoginAttempt(email=email, address=address, at=at))
    session.flush()


def failures_for_email(session: Session, email: str, since: datetime) -> int:
    query = select(func.count()).where(
        col(LoginAttempt.email) == email, col(LoginAttempt.at) >= since
    )
    return int(session.execute(query).scalar_one())


def failures_for_address(session: Session, address: str, since: datetime) -> int:
    query = select(func.count()).where(
        col(LoginAttempt.address) == address, col(LoginAttempt.at) >= since
    )
    return int(session.execute(query).scalar_one())


def forget_email(session: Session, email: str) -> None:
    """A successful sign-in clears the account's failures (not the address's)."""
    session.execute(delete(LoginAttempt).where(col(LoginAttempt.email) == email))


def prune(session: Session, before: datetime) -> None:
    """Attempts older than the throttling window say nothing; drop them."""
    session.execute(delete(LoginAttempt).where(col(LoginAttempt.at) < before))
