"""Money: integer minor units plus an ISO 4217 currency, parsed and formatted through Babel.

Every amount in fundgoal is a `Money` or a plain `int` of minor units next to a currency code; a
float never holds money. The number of minor units per major unit (the currency's exponent) is
decided here and only here, following Stripe's lists, because Stripe is what charges the cards:
an amount we send must mean the same to Stripe as it means to us.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache

from babel import Locale, UnknownLocaleError
from babel.numbers import (
    NumberFormatError,
    format_compact_currency,
    format_currency,
    get_group_symbol,
    list_currencies,
    parse_decimal,
)

from .errors import Invalid

# Stripe's zero-decimal and three-decimal currencies (docs.stripe.com/currencies). Everything
# else Stripe charges in hundredths.
ZERO_DECIMAL = frozenset(
    "BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF".split()  # noqa: SIM905
)
THREE_DECIMAL = frozenset(["BHD", "JOD", "KWD", "OMR", "TND"])

# Stripe refuses amounts with more than 8 digits of minor units; a typed donation above that is
# a typo or an attack, not a gift. Goals and offline entries may be larger.
MAX_DONATION_MINOR = 99_999_999
MAX_MINOR = 10**15  # fits a signed 64-bit column with room for sums of many entries


class MoneyError(Invalid):
    """An amount or currency a person typed is not acceptable; the message says why."""


class CurrencyMismatch(TypeError):
    """Arithmetic between two currencies: always a bug, never converted silently."""


@cache
def _known_currencies() -> frozenset[str]:
    return frozenset(list_currencies())


def normalize_currency(code: str) -> str:
    """'usd' -> 'USD'; raises MoneyError for anything that is not an ISO 4217 code Babel knows."""
    upper = code.strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", upper) or upper not in _known_currencies():
        raise MoneyError(f"unknown currency {code!r}")
    return upper


def exponent(currency: str) -> int:
    """How many decimal places the currency's minor unit has (JPY 0, USD 2, KWD 3)."""
    if currency in ZERO_DECIMAL:
        return 0
    if currency in THREE_DECIMAL:
        return 3
    return 2


@dataclass(frozen=True, slots=True, order=False)
class Money:
    minor: int
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.minor, int) or isinstance(self.minor, bool):
            raise TypeError("Money.minor must be an int of minor units")
        if self.currency != self.currency.upper() or len(self.currency) != 3:
            raise MoneyError(f"currency must be an upper-case ISO code, not {self.currency!r}")

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    @classmethod
    def from_major(cls, value: Decimal | int | str, currency: str) -> Money:
        """Exact conversion from major units; refuses anything finer than the minor unit."""
        code = normalize_currency(currency)
        try:
            amount = Decimal(value)
        except InvalidOperation:
            raise MoneyError(f"{value!r} is not a number") from None
        return cls(_to_minor(amount, code), code)

    @property
    def major(self) -> Decimal:
        return Decimal(self.minor).scaleb(-exponent(self.currency))

    def _same(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise CurrencyMismatch(f"{self.currency} and {other.currency} cannot be combined")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.minor + other.minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.minor - other.minor, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.minor < other.minor

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.minor <= other.minor

    def __gt__(self, other: Money) -> bool:
        self._same(other)
        return self.minor > other.minor

    def __ge__(self, other: Money) -> bool:
        self._same(other)
        return self.minor >= other.minor

    def format(self, locale: str = "en") -> str:
        return format_money(self.minor, self.currency, locale)

    def __str__(self) -> str:
        return f"{self.major} {self.currency}"


def _to_minor(amount: Decimal, currency: str) -> int:
    if not amount.is_finite():
        raise MoneyError("the amount must be a finite number")
    places = exponent(currency)
    scaled = amount.scaleb(places)
    if scaled != scaled.to_integral_value():
        unit = "whole units" if places == 0 else f"at most {places} decimal places"
        raise MoneyError(f"{currency} amounts take {unit}")
    minor = int(scaled)
    if abs(minor) > MAX_MINOR:
        raise MoneyError("the amount is too large")
    return minor


def parse_amount(
    text: str,
    currency: str,
    locale: str = "en",
    *,
    max_minor: int = MAX_DONATION_MINOR,
) -> Money:
    """What a person typed ('25', '25.50', '1,000.5' in en, '1 000,5' in fr) as a positive Money.

    Raises MoneyError with a message fit to show the person.
    """
    code = normalize_currency(currency)
    cleaned = text.strip()
    if not cleaned:
        raise MoneyError("enter an amount")
    if len(cleaned) > 32:
        raise MoneyError("the amount is too long")
    if cleaned.startswith("-") or cleaned.startswith("\u2212"):
        raise MoneyError("the amount must be more than zero")
    babel_locale = _locale(locale)
    group = get_group_symbol(babel_locale)
    if group.isspace():
        # People type an ordinary space where French CLDR wants U+202F; both mean grouping.
        cleaned = re.sub(r"[\s\u00a0\u202f]", group, cleaned)
    try:
        amount = parse_decimal(cleaned, locale=babel_locale, strict=True)
    except NumberFormatError as exc:
        # Strict parsing refuses '1.000' in en (ambiguous grouping); Babel suggests what it
        # thinks was meant, which is a better message than ours.
        hint = f" (did you mean {exc.suggestions[0]}?)" if exc.suggestions else ""
        raise MoneyError(f"{text.strip()!r} is not an amount{hint}") from None
    except (InvalidOperation, ValueError):
        raise MoneyError(f"{text.strip()!r} is not an amount") from None
    if not amount.is_finite():
        raise MoneyError(f"{text.strip()!r} is not an amount")
    minor = _to_minor(amount, code)
    if minor <= 0:
        raise MoneyError("the amount must be more than zero")
    if minor > max_minor:
        raise MoneyError(f"the amount must be at most {format_money(max_minor, code, locale)}")
    return Money(minor, code)


@cache
def _locale(name: str) -> Locale:
    try:
        return Locale.parse(name.replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        raise MoneyError(f"unknown locale {name!r}") from None


def known_locale(name: str) -> Locale | None:
    """The Babel locale for a `data-locale` / `?locale=` value, or None when it is not one."""
    if not re.fullmatch(r"[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8}){0,2}", name):
        return None
    try:
        return _locale(name)
    except MoneyError:
        return None


@cache
def _pattern(locale: str, places: int) -> str:
    """The locale's currency pattern with `places` fraction digits (whole amounts show none)."""
    base = str(_locale(locale).currency_formats["standard"].pattern)
    fraction = "." + "0" * places if places else ""
    return re.sub(r"\.0+", fraction, base)


def format_money(minor: int, currency: str, locale: str = "en") -> str:
    """Locale formatting through Babel: whole amounts without decimals ('$2,500', '2 500 $US')."""
    places = exponent(currency)
    value = Decimal(minor).scaleb(-places)
    shown = 0 if minor % (10**places) == 0 else places
    return str(
        format_currency(
            value,
            currency,
            format=_pattern(locale, shown),
            locale=_locale(locale),
            currency_digits=False,
        )
    )


def format_money_compact(minor: int, currency: str, locale: str = "en") -> str:
    """Short tick labels for compact bars ('$2.5K'), still Babel's choice of symbol and order."""
    value = Decimal(minor).scaleb(-exponent(currency))
    return str(format_compact_currency(value, currency, locale=_locale(locale), fraction_digits=1))
