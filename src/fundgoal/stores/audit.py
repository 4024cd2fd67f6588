"""The audit log: who changed what, when, from what to what, and why."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from ..models import AuditLog


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    entity: str,
    entity_id: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str | None = None,
    admin_id: int | None = None,
) -> AuditLog:
    row = AuditLog(
        actor=actor,
        admin_id=admin_id,
        action=action,
        entity=entity,
        entity_id=entity_id,
        before=before,
        after=after,
        reason=reason,
    )
    session.add(row)
    session.flush()
    return row


def recent(
    session: Session, *, limit: int = 100, entity: str | None = None, entity_id: str | None = None
) -> Sequence[AuditLog]:
    query = select(AuditLog)
    if entity is not None:
        query = query.where(col(AuditLog.entity) == entity)
    if entity_id is not None:
        query = query.where(col(AuditLog.entity_id) == entity_id)
    return session.scalars(query.order_by(col(AuditLog.id).desc()).limit(limit)).all()


def page(
    session: Session,
    *,
    before_id: int | None = None,
    limit: int = 50,
    entity: str | None = None,
    entity_id: str | None = None,
    actor: str | None = None,
) -> Sequence[AuditLog]:
    """Newest first, keyset on id: `before_id` is the last id of the previous page."""
    query = select(AuditLog)
    if before_id is not None:
        query = query.where(col(AuditLog.id) < before_id)
    if entity:
        query = query.where(col(AuditLog.entity) == entity)
    if entity_id:
        query = query.where(col(AuditLog.entity_id) == entity_id)
    if actor:
        query = query.where(col(AuditLog.actor) == actor)
    return session.scalars(query.order_by(col(AuditLog.id).desc()).limit(limit)).all()
