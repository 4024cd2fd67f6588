"""The base of every input model: pydantic v2, errors turned into one domain error.

A model is built from what a person (or a file, or the command line) gave. Building it either
succeeds with every field checked, or raises `InputError`, an `Invalid` (400) whose message
names each wrong field in words fit to show that person. Web forms, CSV import, the command
line and the services all build the same models, so each rule exists once.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import PydanticCustomError

from ..errors import Invalid


class InputError(Invalid):
    """One or more fields are wrong: `fields` maps each to its message, `errors` lists them as
    'Label: message' lines (the dashboard shows them all; the CLI prints them on one line)."""

    def __init__(self, fields: dict[str, str], labels: dict[str, str] | None = None) -> None:
        names = labels or {}
        self.fields = fields
        self.errors = [
            f"{names[name]}: {message}" if names.get(name) else message
            for name, message in fields.items()
        ]
        super().__init__("; ".join(self.errors))


def refuse(message: str) -> PydanticCustomError:
    """The error a field validator raises: pydantic keeps the message as it is."""
    return PydanticCustomError("invalid", "{reason}", {"reason": message})


def _message(error: Any) -> str:
    reason = (error.get("ctx") or {}).get("reason")
    if isinstance(reason, str):
        return reason
    cause = (error.get("ctx") or {}).get("error")
    if error.get("type") == "value_error" and cause is not None:
        return str(cause)
    if error.get("type") == "missing":
        return "this field is required"
    if error.get("type") in ("string_type", "bool_type", "int_type", "literal_error"):
        return "not an acceptable value"
    return str(error.get("msg", "not acceptable"))


class InputModel(BaseModel):
    """Immutable, no unknown fields, no silent coercion of one type into another."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)
    labels: ClassVar[dict[str, str]] = {}  # field -> the words a form shows next to it

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise self.error_of(exc) from None

    @classmethod
    def error_of(cls, exc: ValidationError) -> InputError:
        fields: dict[str, str] = {}
        for error in exc.errors(include_url=False, include_input=False):
            loc = error.get("loc") or ("",)
            name = str(loc[0]) if loc else ""
            fields.setdefault(name, _message(error))
        return InputError(fields, cls.labels)

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> Self:
        try:
            return super().model_validate(obj, **kwargs)
        except ValidationError as exc:
            raise cls.error_of(exc) from None
