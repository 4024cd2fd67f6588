"""Email addresses: one check for admins, donors, gifts, CSV rows and sign-in links.

Deliberately modest (no DNS, no full RFC 5321 grammar): one @, a local part of 1-64 and a
domain of 1-255 characters with at least one dot and no empty label, no spaces, control or
direction characters, and the whole within the column it fills (320). Anything stricter
refuses real addresses; anything looser stores what cannot be mailed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic_core import CoreSchema, core_schema

from ..models import Admin
from .base import refuse
from .text import check_text, column_length

MAX_EMAIL = column_length(Admin, "email")
EMAIL_RE = re.compile(r"[^@\s]{1,64}@[^@\s.]{1,63}(?:\.[^@\s.]{1,63})+")


def check_email(value: str, *, required: bool = True) -> str:
    """The address stripped and lower-cased, or PydanticCustomError with the reason."""
    text = check_text(value, max_length=MAX_EMAIL, required=required)
    if not text:
        return ""
    text = text.lower()
    if len(text.split("@", 1)[-1]) > 255 or not EMAIL_RE.fullmatch(text):
        raise refuse(f"{text!r} is not an email address")
    tld = text.rsplit(".", 1)[-1]
    if len(tld) < 2:
        raise refuse(f"{text!r} is not an email address")
    return text


@dataclass(frozen=True)
class EmailRule:
    """Field metadata: `Annotated[str, EmailRule()]`; optional ones give None when empty."""

    required: bool = True

    def check(self, value: Any) -> str | None:
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise refuse("must be text")
        return check_email(value, required=self.required) or None

    def __get_pydantic_core_schema__(self, _source: Any, _handler: Any) -> CoreSchema:
        return core_schema.no_info_plain_validator_function(self.check)
