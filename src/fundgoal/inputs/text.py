"""Text rules: what a person may put into a field we store and later show.

- Length: at most the column's own length (read from models.py, never repeated here), counted
  in characters as PostgreSQL's varchar counts them; a far longer value is refused before any
  other work looks at it.
- Characters: no NUL or other control character (PostgreSQL refuses NUL in text; the others
  are terminal escapes and invisible junk), no lone surrogate, no line or paragraph separator.
  Multi-line fields (a description, a message, a note, a reason) keep line breaks and tabs;
  their CR LF from browsers becomes LF.
- Direction: no Unicode bidirectional overrides or isolates (U+202A-U+202E, U+2066-U+2069),
  which make text display in a different order than it is stored ("Trojan source").
- Titles and names must show something: text made only of spaces, zero-width and other
  format characters or combining marks is refused.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from pydantic_core import CoreSchema, PydanticCustomError, core_schema
from sqlmodel import SQLModel

from ..errors import Invalid
from ..models import AuditLog
from .base import refuse

BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_REFUSED_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})
_INVISIBLE_CATEGORIES = frozenset({"Cf", "Mn", "Me", "Zs", "Cc"})
_MULTILINE_KEEPS = frozenset("\n\t")
# A cheap first pass: only text holding a character outside printable ASCII needs the
# per-character Unicode look-ups below.
_PLAIN_ASCII = re.compile(r"[\x20-\x7e]*")


def column_length(model: type[SQLModel], name: str) -> int:
    """The declared length of a string column: the one number a field's limit comes from."""
    length = model.__table__.c[name].type.length  # type: ignore[attr-defined]
    assert isinstance(length, int), f"{model.__name__}.{name} has no length"
    return length


def forbidden_character(text: str, *, multiline: bool = False) -> str | None:
    """A description of the first character that may not be stored, or None."""
    if _PLAIN_ASCII.fullmatch(text):
        return None
    for ch in text:
        if multiline and ch in _MULTILINE_KEEPS:
            continue
        if ch in BIDI_CONTROLS:
            return f"a text direction control (U+{ord(ch):04X})"
        category = unicodedata.category(ch)
        if category in _REFUSED_CATEGORIES:
            if ch == "\x00":
                return "a NUL character"
            if ch in "\n\r":
                return "a line break"
            return f"a control character (U+{ord(ch):04X})"
    return None


def has_visible(text: str) -> bool:
    """Whether anything but spaces, format characters (zero-width ones among them) and
    combining marks is left: what a reader would actually see."""
    return any(unicodedata.category(ch) not in _INVISIBLE_CATEGORIES for ch in text)


def check_text(
    value: str,
    *,
    max_length: int,
    multiline: bool = False,
    visible: bool = False,
    required: bool = False,
) -> str:
    """The cleaned text (stripped; CR LF -> LF when multi-line), or PydanticCustomError."""
    if len(value) > 4 * max_length + 64:  # before any per-character work
        raise refuse(f"at most {max_length:,} characters")
    if multiline:
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    # Before stripping: str.strip() also removes some control characters (U+001C-U+001F,
    # U+0085, U+2028), and a value that held one was not typed by a person.
    bad = forbidden_character(value, multiline=multiline)
    if bad:
        raise refuse(f"contains {bad}, which is not allowed here")
    text = value.strip()
    if not text:
        if required:
            raise refuse("this field is required")
        return ""
    if len(text) > max_length:
        raise refuse(f"at most {max_length:,} characters (this has {len(text):,})")
    if visible and not has_visible(text):
        raise refuse("only invisible characters: type some visible text")
    return text


@dataclass(frozen=True)
class Text:
    """Field metadata: `Annotated[str, Text(200, visible=True)]` checks with check_text.

    With `none_if_empty`, empty text becomes None (an optional column left NULL)."""

    max_length: int
    multiline: bool = False
    visible: bool = False
    required: bool = False
    none_if_empty: bool = False

    def check(self, value: Any) -> str | None:
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise refuse("must be text")
        text = check_text(
            value,
            max_length=self.max_length,
            multiline=self.multiline,
            visible=self.visible,
            required=self.required,
        )
        return (text or None) if self.none_if_empty else text

    def __get_pydantic_core_schema__(self, _source: Any, _handler: Any) -> CoreSchema:
        return core_schema.no_info_plain_validator_function(self.check)


def single_line(value: str, max_length: int, label: str) -> str:
    """Check a one-line value outside a model (a query filter); raises Invalid."""
    try:
        return check_text(value, max_length=max_length)
    except PydanticCustomError as exc:
        raise Invalid(f"{label}: {exc.message()}") from None


REASON_LENGTH = column_length(AuditLog, "reason")


def check_reason(value: str, label: str = "Why") -> str | None:
    """Why an admin changed something, as the audit log keeps it; raises Invalid."""
    try:
        return check_text(value, max_length=REASON_LENGTH, multiline=True) or None
    except PydanticCustomError as exc:
        raise Invalid(f"{label}: {exc.message()}") from None


def shown(text: str) -> str:
    """Stored text made safe for a terminal or a log line: control characters, direction
    controls and line separators written as escapes (old rows may hold them)."""
    if _PLAIN_ASCII.fullmatch(text):
        return text
    out = []
    for ch in text:
        if ch in BIDI_CONTROLS or unicodedata.category(ch) in _REFUSED_CATEGORIES:
            out.append(ch.encode("unicode_escape").decode("ascii"))
        else:
            out.append(ch)
    return "".join(out)


def displayable(text: str) -> str:
    """Stored text made safe for a page or a JSON answer: control characters (NUL among
    them), lone surrogates and direction controls dropped. Line breaks and tabs stay."""
    if _PLAIN_ASCII.fullmatch(text):
        return text
    return "".join(
        ch
        for ch in text
        if ch in _MULTILINE_KEEPS
        or (ch not in BIDI_CONTROLS and unicodedata.category(ch) not in ("Cc", "Cs"))
    )


SLUG_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?")


def is_slug(text: str) -> bool:
    """1-64 lower-case ASCII letters, digits and inner hyphens: the only slugs that exist."""
    return len(text) <= 64 and SLUG_RE.fullmatch(text) is not None
