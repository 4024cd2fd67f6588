"""Admin accounts: creation and password checks (argon2id through argon2-cffi)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic_core import PydanticCustomError
from sqlalchemy import select
from sqlmodel import Session, col

from ..errors import Conflict, Invalid
from ..inputs.emails import check_email
from ..models import Admin
from ..stores import audit

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
MIN_PASSWORD = 12


def normalize_email(email: str) -> str:
    """The one email rule (inputs/emails.py), as a domain error."""
    try:
        return check_email(email)
    except PydanticCustomError as exc:
        raise Invalid(exc.message()) from None


def check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise Invalid(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > 1024:
        raise Invalid("a password is at most 1024 characters")


def by_email(session: Session, email: str) -> Admin | None:
    return session.scalars(select(Admin).where(col(Admin.email) == email)).first()


def create_admin(session: Session, email: str, password: str, *, actor: str) -> Admin:
    address = normalize_email(email)
    check_password_strength(password)
    if by_email(session, address) is not None:
        raise Conflict(f"an admin {address} already exists")
    admin = Admin(email=address, password_hash=_hasher.hash(password))
    session.add(admin)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="admin.create",
        entity="admin",
        entity_id=address,
        after={"email": address},
    )
    return admin


def verify_password(admin: Admin, password: str) -> bool:
    try:
        return _hasher.verify(admin.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(admin: Admin) -> bool:
    return bool(_hasher.check_needs_rehash(admin.password_hash))


def rehash(admin: Admin, password: str) -> None:
    admin.password_hash = _hasher.hash(password)
