"""The donation form's use case: what a donor typed (`DonationForm`) and the checked gift
(`Donation`). The amount goes through money.parse_amount in the donor's locale; the campaign's
own limits (`DonationRules`) come from the caller."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, ClassVar

from pydantic import field_validator

from ..errors import Invalid
from ..models import DonationAttempt
from ..money import MAX_DONATION_MINOR, Money, MoneyError, format_money, parse_amount
from .base import InputError, InputModel, refuse
from .text import Text, column_length

NAME = column_length(DonationAttempt, "donor_name")
MESSAGE = column_length(DonationAttempt, "message")
_PRESET = re.compile(r"[0-9]{1,18}")
FREQUENCIES = ("once", "monthly")
_SPACES = re.compile(r"[ \t\r\n]+")  # runs of ordinary white space in a name are one space


class FormError(Invalid):
    """A form field is wrong; `field` says which, the message says why (shown to the donor)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class DonationForm:
    """The form as posted: strings exactly as the donor typed them."""

    amount: str = ""
    preset: str = ""
    frequency: str = "once"
    name: str = ""
    message: str = ""
    anonymous: bool = False


@dataclass(frozen=True)
class DonationRules:
    """What this campaign takes online."""

    currency: str
    min_amount: int
    max_amount: int
    presets: tuple[int, ...]


class Donation(InputModel):
    labels: ClassVar[dict[str, str]] = {
        "name": "Your name",
        "message": "Your message",
        "frequency": "Frequency",
    }

    amount: Money
    frequency: str
    name: Annotated[str | None, Text(NAME, visible=True, none_if_empty=True)] = None
    message: Annotated[str | None, Text(MESSAGE, multiline=True, none_if_empty=True)] = None
    anonymous: bool = False

    @field_validator("frequency")
    @classmethod
    def _frequency(cls, value: str) -> str:
        if value not in FREQUENCIES:
            raise refuse("choose a one-time or a monthly gift")
        return value


def _sentence(text: str) -> str:
    text = text.strip()
    return (text[:1].upper() + text[1:]).rstrip(".") + "."


def validate(form: DonationForm, rules: DonationRules, locale: str) -> Donation:
    """The checked gift, or FormError for the first wrong field (amount first)."""
    currency = rules.currency
    ceiling = min(rules.max_amount, MAX_DONATION_MINOR)
    if form.amount.strip():
        try:
            amount = parse_amount(form.amount, currency, locale, max_minor=ceiling)
        except MoneyError as exc:
            raise FormError("amount", _sentence(exc.message)) from None
    elif form.preset.strip():
        preset = form.preset.strip()
        if not _PRESET.fullmatch(preset) or int(preset) not in rules.presets:
            raise FormError("amount", "Choose one of the amounts or type your own.")
        amount = Money(int(preset), currency)
    else:
        raise FormError("amount", "Choose an amount or type your own.")
    if amount.minor < rules.min_amount:
        smallest = format_money(rules.min_amount, currency, locale)
        raise FormError("amount", f"The smallest gift is {smallest}.")
    if amount.minor > ceiling:
        largest = format_money(ceiling, currency, locale)
        raise FormError("amount", f"The largest gift we take online is {largest}.")
    if form.frequency not in FREQUENCIES:
        raise FormError("frequency", "Choose a one-time or a monthly gift.")
    try:
        return Donation(
            amount=amount,
            frequency=form.frequency,
            name=_SPACES.sub(" ", form.name) if len(form.name) <= 4 * NAME else form.name,
            message=form.message,
            anonymous=form.anonymous,
        )
    except InputError as exc:
        field, message = next(iter(exc.fields.items()))
        label = Donation.labels.get(field, field)
        raise FormError(field, _sentence(f"{label}: {message}")) from None
