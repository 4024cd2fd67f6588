"""Sign-in use cases: an admin's sign-in form and a donor's request for a sign-in link."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import field_validator

from ..models import LoginAttempt
from .base import InputModel, refuse
from .emails import EmailRule
from .text import Text, column_length

MAX_PASSWORD = 1024  # argon2 hashes any length; past this it is not a password people type
LOGIN_EMAIL = column_length(LoginAttempt, "email")


class SignIn(InputModel):
    """The dashboard's sign-in form. The email is not checked for shape (a typo is "wrong
    email or password"), only for what can be stored with a failed attempt."""

    labels: ClassVar[dict[str, str]] = {"email": "Email", "password": "Password"}

    email: Annotated[str, Text(LOGIN_EMAIL)]
    password: str

    @field_validator("email")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()

    @field_validator("password")
    @classmethod
    def _password(cls, value: str) -> str:
        if len(value) > MAX_PASSWORD:
            raise refuse(f"a password is at most {MAX_PASSWORD} characters")
        if "\x00" in value:
            raise refuse("a password cannot contain a NUL character")
        return value


class DonorLinkRequest(InputModel):
    """A donor asks for a sign-in link to their own page (the field `email`)."""

    labels: ClassVar[dict[str, str]] = {"email": "Email"}

    email: Annotated[str, EmailRule()]
