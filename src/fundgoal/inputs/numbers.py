"""Integers and dates from URLs, query strings and files, parsed strictly.

Python's int() and the date parsers accept more than people mean: int('٣') is 3, '²'.isdigit()
is true, and a date in year 9999 overflows as soon as an offset or a day is added. Here an
integer is 1-10 ASCII digits bounded to the column it is compared with (a 32-bit id on
PostgreSQL), and a date is YYYY-MM-DD (or an ISO date and time with an offset, for files)
between MIN_YEAR and MAX_YEAR.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time

from ..errors import Invalid, NotFound

MAX_ID = 2**31 - 1  # primary keys are INTEGER: 32-bit on PostgreSQL
MIN_YEAR = 1970
MAX_YEAR = 2200  # far past any deadline or gift, far from datetime's year 9999 edge
_DIGITS = re.compile(r"[0-9]{1,10}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# An ISO date and time as spreadsheets write it: seconds and fraction optional, then Z or an
# offset, or nothing (taken as UTC).
_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?"
    r"(?:Z|[+-][0-9]{2}:?[0-9]{2})?"
)


def parse_id(text: str) -> int | None:
    """A row id as ASCII digits within the column's range, else None."""
    if not _DIGITS.fullmatch(text):
        return None
    value = int(text)
    return value if 0 < value <= MAX_ID else None


def id_or_404(text: str, what: str = "page") -> int:
    found = parse_id(text)
    if found is None:
        raise NotFound(f"There is no such {what}.")
    return found


def query_id(text: str, name: str) -> int | None:
    """An optional id from a query string: absent -> None, malformed -> Invalid (400)."""
    if text == "":
        return None
    found = parse_id(text)
    if found is None:
        raise Invalid(f"{name} must be a number from 1 to {MAX_ID}")
    return found


def year_problem(year: int) -> str | None:
    if year > MAX_YEAR:
        return f"that date is too far in the future (use one before {MAX_YEAR + 1})"
    if year < MIN_YEAR:
        return f"that date is too long ago (use one from {MIN_YEAR} on)"
    return None


def _bounded(day: date) -> date:
    problem = year_problem(day.year)
    if problem:
        raise Invalid(problem)
    return day


def parse_date(text: str) -> date:
    """YYYY-MM-DD with ASCII digits, a real day, between MIN_YEAR and MAX_YEAR."""
    cleaned = text.strip()
    if len(cleaned) != 10 or not _DATE.fullmatch(cleaned):
        raise Invalid(f"{cleaned[:40]!r} is not a date like 2026-11-24")
    try:
        day = date.fromisoformat(cleaned)
    except ValueError:
        raise Invalid(f"{cleaned!r} is not a day of the calendar") from None
    return _bounded(day)


def parse_moment(text: str) -> datetime:
    """A date (noon UTC that day) or an ISO date and time (UTC unless an offset is given),
    bounded like parse_date before any offset is applied; an aware UTC datetime."""
    cleaned = text.strip()
    if _DATE.fullmatch(cleaned):
        return datetime.combine(parse_date(cleaned), time(12), UTC)
    if len(cleaned) > 40 or not _DATETIME.fullmatch(cleaned):
        raise Invalid(f"{cleaned[:40]!r} is not like 2026-11-24 or 2026-11-24T10:30+01:00")
    _bounded(parse_date(cleaned[:10]))
    try:
        moment = datetime.fromisoformat(cleaned.replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(f"{cleaned!r} is not a moment of the calendar") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
