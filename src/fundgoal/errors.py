"""Domain errors carry their HTTP status; web/ maps them in one handler, cli/ to one line.

A 500 is therefore always a bug: anything a person can cause is one of these.
"""

from __future__ import annotations


class DomainError(Exception):
    status = 400
    code = "invalid"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Invalid(DomainError, ValueError):
    status = 400
    code = "invalid"


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class TooManyRequests(DomainError):
    status = 429
    code = "too_many_requests"


class Unavailable(DomainError):
    """A dependency (the database, Stripe) failed: the client should retry later."""

    status = 503
    code = "unavailable"
