"""Admin account queries."""

from __future__ import annotations

from sqlmodel import Session

from ..models import Admin


def by_id(session: Session, admin_id: int) -> Admin | None:
    return session.get(Admin, admin_id)
