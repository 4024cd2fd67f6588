"""Campaign queries."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlmodel import Session, col

from ..inputs.text import is_slug
from ..models import Campaign


def by_slug(session: Session, slug: str) -> Campaign | None:
    if not is_slug(slug):
        return None  # no campaign has another shape; '\x00' must not reach PostgreSQL
    return session.scalars(select(Campaign).where(col(Campaign.slug) == slug)).first()


def by_id(session: Session, campaign_id: int) -> Campaign | None:
    return session.get(Campaign, campaign_id)


def all_campaigns(session: Session) -> Sequence[Campaign]:
    return session.scalars(
        select(Campaign).order_by(col(Campaign.created_at), col(Campaign.id))
    ).all()


def add(session: Session, campaign: Campaign) -> Campaign:
    session.add(campaign)
    session.flush()
    return campaign


def fingerprint(session: Session) -> tuple[int, int]:
    """(count, sum of versions): changes whenever any campaign changes, is added or removed.

    The cheap question each worker asks once in a while to know whether its in-memory snapshot
    is stale; one index-only aggregate over a table of at most a few thousand rows.
    """
    row = session.execute(
        select(func.count(col(Campaign.id)), func.coalesce(func.sum(col(Campaign.version)), 0))
    ).one()
    return int(row[0]), int(row[1])


def by_ids(session: Session, ids: set[int]) -> dict[int, Campaign]:
    if not ids:
        return {}
    rows = session.scalars(select(Campaign).where(col(Campaign.id).in_(ids))).all()
    return {c.id: c for c in rows if c.id is not None}
