"""Dashboard sign-in: password check, throttling per account and per address, sign-out.

Failures are rows in LoginAttempt, so every worker sees the same counts. The check runs before
the password is verified, so a throttled attacker learns nothing from the answer, and an
unknown email costs the same argon2 work as a known one (no account enumeration by timing).
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta
from functools import cache

from argon2.exceptions import VerificationError
from sqlmodel import Session

from ..errors import Invalid, TooManyRequests
from ..models import Admin, utcnow
from ..stores import admins as admin_store
from ..stores import audit, logins
from . import admins

WINDOW = timedelta(minutes=15)
# Five guesses per account per window stop online guessing of one password while letting a
# person who mistypes twice carry on; twenty per address let an office share one NAT address.
EMAIL_LIMIT = 5
ADDRESS_LIMIT = 20


class Throttled(TooManyRequests):
    pass


class BadCredentials(Invalid):
    pass


@cache
def _dummy_hash() -> str:
    return admins._hasher.hash("fundgoal-no-such-admin")


def check_throttle(session: Session, email: str, address: str, now: datetime) -> None:
    since = now - WINDOW
    minutes = int(WINDOW.total_seconds() // 60)
    if logins.failures_for_email(session, email, since) >= EMAIL_LIMIT:
        raise Throttled(
            f"Too many failed sign-ins for this account. Try again in {minutes} minutes."
        )
    if logins.failures_for_address(session, address, since) >= ADDRESS_LIMIT:
        raise Throttled(
            f"Too many failed sign-ins from your network. Try again in {minutes} minutes."
        )


def sign_in(
    session: Session, email: str, password: str, *, address: str, now: datetime | None = None
) -> Admin:
    """The admin, or Throttled / BadCredentials (recorded as a failure)."""
    moment = now or utcnow()
    key = email.strip().lower()[:320]
    address = address[:64]
    check_throttle(session, key, address, moment)
    admin = admins.by_email(session, key) if key else None
    if admin is None:
        _burn(password)
        ok = False
    else:
        ok = admins.verify_password(admin, password)
    if not ok or admin is None:
        logins.record_failure(session, email=key, address=address, at=moment)
        raise BadCredentials("Wrong email or password.")
    if admins.needs_rehash(admin):
        admins.rehash(admin, password)
    logins.forget_email(session, key)
    logins.prune(session, moment - WINDOW)
    admin.last_login_at = moment
    session.add(admin)
    audit.record(
        session,
        actor=admin.email,
        admin_id=admin.id,
        action="admin.sign_in",
        entity="admin",
        entity_id=admin.email,
        after={"address": address},
    )
    session.flush()
    return admin


def _burn(password: str) -> None:
    """Spend the argon2 work a real check would, for an unknown email."""
    with contextlib.suppress(VerificationError):
        admins._hasher.verify(_dummy_hash(), password)


def current(session: Session, admin_id: int, epoch: int) -> Admin | None:
    """The admin a session names, unless the account is gone or signed out since."""
    admin = admin_store.by_id(session, admin_id)
    if admin is None or admin.session_epoch != epoch:
        return None
    return admin


def sign_out_everywhere(session: Session, admin: Admin) -> None:
    """Bump the epoch: every cookie carrying the old one (on every device) stops working."""
    admin.session_epoch += 1
    session.add(admin)
    audit.record(
        session,
        actor=admin.email,
        admin_id=admin.id,
        action="admin.sign_out",
        entity="admin",
        entity_id=admin.email,
    )
    session.flush()
