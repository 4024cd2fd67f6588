"""The offline gift use case, one set of rules for the dashboard's form, CSV import and the
service: `GiftText` is a gift as typed (a form or a CSV row), `OfflineGift` the checked values
that services.gifts records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, ClassVar, Self

from pydantic import field_validator, model_validator

from ..errors import Invalid
from ..models import LedgerEntry
from ..money import MAX_MINOR, Money, MoneyError, major_text, normalize_currency, parse_amount
from ..money import parse_rate as _parse_rate
from . import numbers
from .base import InputError, InputModel, refuse
from .emails import EmailRule
from .text import REASON_LENGTH, Text, column_length

OFFLINE_SOURCES = ("bank_transfer", "cheque", "cash", "other_platform", "other")
NAME = column_length(LedgerEntry, "donor_name")
NOTE = column_length(LedgerEntry, "note")
# A gift dated tomorrow in UTC may be today where the newsroom is (UTC+14 at most).
FUTURE_SLACK = timedelta(hours=14)
FOREIGN = "a gift in another currency needs the amount received, its currency and the rate"


def _now() -> datetime:
    return datetime.now(UTC)


class OfflineGift(InputModel):
    """An offline gift's checked values (the campaign and its currency are the service's)."""

    labels: ClassVar[dict[str, str]] = {
        "amount": "Amount",
        "occurred_at": "Date",
        "donor_name": "Donor name",
        "donor_email": "Donor email",
        "source": "Source",
        "note": "Note",
        "original": "Amount received",
        "exchange_rate": "Exchange rate",
        "reason": "Why",
    }

    amount: Money
    source: str = "bank_transfer"
    donor_name: Annotated[str | None, Text(NAME, visible=True, none_if_empty=True)] = None
    donor_email: Annotated[str | None, EmailRule(required=False)] = None
    occurred_at: datetime | None = None
    note: Annotated[str | None, Text(NOTE, multiline=True, none_if_empty=True)] = None
    original: Money | None = None
    exchange_rate: str | None = None
    reason: Annotated[str | None, Text(REASON_LENGTH, multiline=True, none_if_empty=True)] = None

    @field_validator("amount")
    @classmethod
    def _amount(cls, value: Money) -> Money:
        if not 0 < value.minor <= MAX_MINOR:
            raise refuse("the amount must be more than zero and within the largest we store")
        return value

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        if value not in OFFLINE_SOURCES:
            raise refuse(f"the source must be one of {', '.join(OFFLINE_SOURCES)}")
        return value

    @field_validator("occurred_at")
    @classmethod
    def _occurred(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise refuse("a gift's moment needs a time zone")
        problem = numbers.year_problem(value.year)
        if problem:
            raise refuse(problem)
        if value > _now() + FUTURE_SLACK:
            raise refuse("a gift received in the future? Check the date")
        return value

    @field_validator("exchange_rate")
    @classmethod
    def _rate(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        try:
            return _parse_rate(value)
        except MoneyError as exc:
            raise refuse(exc.message) from None

    @field_validator("original")
    @classmethod
    def _original(cls, value: Money | None) -> Money | None:
        if value is not None and not 0 < value.minor <= MAX_MINOR:
            raise refuse("the amount received must be more than zero")
        return value

    @model_validator(mode="after")
    def _foreign(self) -> OfflineGift:
        if self.original is not None and self.original.currency != self.amount.currency:
            if self.exchange_rate is None:
                raise refuse("give the exchange rate used for a gift in another currency")
        return self

    def as_kwargs(self) -> dict[str, object]:
        """services.gifts.record_offline_gift's keyword arguments (all but the amount)."""
        return {
            "source": self.source,
            "donor_name": self.donor_name,
            "donor_email": self.donor_email,
            "occurred_at": self.occurred_at,
            "note": self.note,
            "original": self.original,
            "exchange_rate": self.exchange_rate,
        }


# How a form and a CSV file name the same fields in their messages.
FORM_LABELS = {
    "amount": "Amount",
    "date": "Date",
    "donor_name": "Donor name",
    "donor_email": "Donor email",
    "source": "Source",
    "note": "Note",
    "original_amount": "Amount received",
    "original_currency": "Currency received",
    "exchange_rate": "Exchange rate",
    "reason": "Why",
}
CSV_LABELS = {name: name for name in FORM_LABELS}
_MODEL_TO_TEXT = {"occurred_at": "date", "original": "original_amount", "": "exchange_rate"}


@dataclass
class GiftText:
    """A gift as typed: the dashboard's record/edit form, or one CSV row."""

    campaign: str = ""
    amount: str = ""
    date: str = ""
    donor_name: str = ""
    donor_email: str = ""
    source: str = "bank_transfer"
    note: str = ""
    original_amount: str = ""
    original_currency: str = ""
    exchange_rate: str = ""
    reason: str = ""

    @classmethod
    def of(cls, entry: LedgerEntry, slug: str) -> Self:
        original = ""
        if entry.original_amount is not None and entry.original_currency:
            original = major_text(entry.original_amount, entry.original_currency)
        return cls(
            campaign=slug,
            amount=major_text(entry.amount, entry.currency),
            date=entry.occurred_at.date().isoformat(),
            donor_name=entry.donor_name or "",
            donor_email=entry.donor_email or "",
            source=entry.source,
            note=entry.note or "",
            original_amount=original,
            original_currency=entry.original_currency or "",
            exchange_rate=entry.exchange_rate or "",
        )

    def gift(
        self, currency: str, labels: dict[str, str] = FORM_LABELS, *, reason: bool = False
    ) -> OfflineGift:
        """The checked gift in the campaign's currency, or InputError naming every field that
        is wrong (with `labels`: a form's words or a file's column names)."""
        fields: dict[str, str] = {}
        amount = original = None
        try:
            amount = parse_amount(self.amount, currency, "en", max_minor=MAX_MINOR)
        except MoneyError as exc:
            fields["amount"] = exc.message
        occurred = None
        if self.date.strip():
            try:
                occurred = numbers.parse_moment(self.date)
            except Invalid as exc:
                fields["date"] = exc.message
        foreign = self.original_amount.strip() or self.original_currency.strip()
        foreign = foreign or self.exchange_rate.strip()
        rate = self.exchange_rate.strip() or None
        if foreign:
            other = self.original_currency.strip().upper()
            try:
                other = normalize_currency(other[:10]) if other else ""
            except MoneyError as exc:
                fields["original_currency"] = exc.message
            if not other:
                fields.setdefault("original_currency", FOREIGN)
            elif other == currency:
                rate = None  # received in the campaign's own currency: nothing to convert
            else:
                if not self.original_amount.strip():
                    fields["original_amount"] = FOREIGN
                else:
                    try:
                        original = parse_amount(
                            self.original_amount, other, "en", max_minor=MAX_MINOR
                        )
                    except MoneyError as exc:
                        fields["original_amount"] = exc.message
                if rate is None:
                    fields["exchange_rate"] = FOREIGN
        try:
            gift = OfflineGift(
                amount=amount or Money(1, currency),  # the other fields are checked too
                source=self.source.strip() or "bank_transfer",
                donor_name=self.donor_name,
                donor_email=self.donor_email,
                occurred_at=occurred,
                note=self.note,
                original=original,
                exchange_rate=rate,
                reason=self.reason if reason else None,
            )
        except InputError as exc:
            for name, message in exc.fields.items():
                fields.setdefault(_MODEL_TO_TEXT.get(name, name), message)
        if fields:
            raise InputError(fields, labels)
        return gift
