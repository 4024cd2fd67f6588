"""Money: integer minor units plus an ISO 4217 currency, parsed and formatted through Babel.

Every amount in fundgoal is a `Money` or a plain `int` of minor units next to a currency code; a
float never holds money. The number of minor units per major unit (the currency's exponent) is
decided here and only here, following Stripe's lists, because Stripe is what charges the cards:
an amount we send must mean the same to Stripe as it means to us.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from functools import cache

from babel import Locale, UnknownLocaleError
from babel.numbers import (
    format_compact_currency,
    format_currency,
    format_decimal,
    get_decimal_symbol,
    get_group_symbol,
    list_currencies,
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
_PLAIN = re.compile(r"[0-9]+(?:\.[0-9]+)?")


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
        """Exact conversion from major units; refuses anything finer than the minor unit.

        For amounts the code holds. Text a person typed goes through `parse_amount`; text
        here must be a plain ASCII decimal ('12.5'), never an exponent or other digits.
        """
        code = normalize_currency(currency)
        if isinstance(value, str):
            if len(value) > MAX_AMOUNT_CHARS or not _PLAIN.fullmatch(value):
                raise MoneyError(f"{value[:MAX_AMOUNT_CHARS]!r} is not a number")
            value = Decimal(value)
        return cls(_to_minor(Decimal(value), code), code)

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


# Nothing a person types as an amount is longer than this, separators included (the largest
# amount we store, 10**15 minor units, is "10,000,000,000,000.000" at 22 characters). The cap
# is checked before anything else looks at the text, so the work below is bounded whatever
# arrives: a regular expression over at most this many characters, then a Decimal of at most
# this many ASCII digits, without an exponent.
MAX_AMOUNT_CHARS = 32
MAX_RATE_CHARS = 32  # LedgerEntry.exchange_rate's column
_ASCII_DIGITS = frozenset("0123456789")
# Where the locale groups thousands with a space, people type an ordinary space, a no-break
# space or a narrow no-break space (CLDR's choice for French) interchangeably; where it groups
# with an apostrophe (de-CH), the ASCII and the typographic one.
_SPACES = "\u0020\u00a0\u202f"
_APOSTROPHES = "'\u2019"
_SIGNS = "+-\u2212\ufe62\ufe63\uff0b\uff0d"


@dataclass(frozen=True)
class Notation:
    """How a locale writes a number with the ASCII digits 0-9 (CLDR's `latn` system)."""

    decimal: str
    group: str
    primary: int  # digits in the group next to the decimal symbol (3)
    secondary: int  # digits in the groups further left (3; 2 in en-IN and hi)
    example: str  # 1234.56 written the locale's way, for messages

    @property
    def group_aliases(self) -> str:
        if self.group in _SPACES:
            return _SPACES
        if self.group in _APOSTROPHES:
            return _APOSTROPHES
        return self.group


@cache
def notation(locale: str) -> Notation:
    """The locale's decimal and group symbols in its Latin-digit notation (raises MoneyError
    for an unknown locale)."""
    found = _locale(locale)
    decimal = str(get_decimal_symbol(found, numbering_system="latn"))
    group = str(get_group_symbol(found, numbering_system="latn"))
    grouping = found.decimal_formats[None].grouping
    example = str(format_decimal(Decimal("1234.56"), locale=found, numbering_system="latn"))
    return Notation(decimal, group, int(grouping[0]), int(grouping[1]), example)


def _typed_number(text: str, locale: str) -> str:
    """What a person typed as a plain ASCII decimal ('1 000,5' in fr -> '1000.5').

    Only the digits 0-9, the locale's decimal symbol and its group symbol (grouped the way
    the locale groups) are accepted: no sign, exponent, underscore, other digits, words
    (Infinity, NaN) or spaces inside except as the group symbol.
    """
    if len(text) > 4 * MAX_AMOUNT_CHARS:  # before even stripping it
        raise MoneyError("the amount is too long")
    cleaned = text.strip()
    if not cleaned:
        raise MoneyError("enter an amount")
    if len(cleaned) > MAX_AMOUNT_CHARS:
        raise MoneyError("the amount is too long")
    if cleaned[0] in _SIGNS:
        if cleaned[0] == "+" or cleaned[0] in "\ufe62\uff0b":
            raise MoneyError("type the amount without a + sign")
        raise MoneyError("the amount must be more than zero")
    style = notation(locale)
    aliases = style.group_aliases
    if len(aliases) > 1:
        cleaned = "".join(style.group if ch in aliases else ch for ch in cleaned)
    allowed = _ASCII_DIGITS | {style.decimal, style.group}
    wrong = [ch for ch in cleaned if ch not in allowed]
    if wrong:
        if any(ch.isdigit() for ch in wrong):
            raise MoneyError("type the amount with the digits 0 to 9")
        raise MoneyError(f"{cleaned!r} is not an amount; write it like {style.example}")
    whole, point, fraction = cleaned.partition(style.decimal)
    if (
        style.decimal in fraction
        or style.group in fraction
        or not (whole or fraction)
        or (point and not fraction)
        or (style.group in whole and not _grouped(whole, style))
    ):
        raise MoneyError(f"{cleaned!r} is not an amount; write it like {style.example}")
    return (whole.replace(style.group, "") or "0") + (f".{fraction}" if fraction else "")


def _grouped(whole: str, style: Notation) -> bool:
    """'1,234,567' (or en-IN's '12,34,567'): every group the right size."""
    groups = whole.split(style.group)
    *left, last = groups
    if len(last) != style.primary or not left[0]:
        return False
    sizes = {style.primary, style.secondary}
    return all(len(g) in sizes for g in left[1:]) and len(left[0]) <= max(sizes)


def _to_minor(amount: Decimal, currency: str) -> int:
    if not amount.is_finite():
        raise MoneyError("the amount must be a finite number")
    # Before any arithmetic: scaling or converting 1e1000000 to an int costs seconds of CPU
    # (or raises decimal.Overflow). Nothing we store has more than 16 digits before the point.
    if amount and amount.adjusted() > 16:
        raise MoneyError("the amount is too large")
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

    The one parser for every amount a person types: the donation form, the dashboard, CSV
    import and the command line. Raises MoneyError with a message fit to show the person.
    """
    code = normalize_currency(currency)
    amount = Decimal(_typed_number(text, locale))  # ASCII digits and one point only
    minor = _to_minor(amount, code)
    if minor <= 0:
        raise MoneyError("the amount must be more than zero")
    if minor > max_minor:
        raise MoneyError(f"the amount must be at most {format_money(max_minor, code, locale)}")
    return Money(minor, code)


_RATE = re.compile(r"[0-9]{1,18}(?:\.[0-9]{1,12})?")


def parse_rate(text: str) -> str:
    """An exchange rate as typed ('1.0837'): ASCII digits and at most one point, positive.

    Returned as the stripped text, which is what the ledger keeps (a rate is a record of what
    was used, never recomputed from a float).
    """
    if len(text) > 4 * MAX_RATE_CHARS:
        raise MoneyError("the exchange rate is too long")
    cleaned = text.strip()
    if not cleaned:
        raise MoneyError("give the exchange rate used for the conversion")
    if len(cleaned) > MAX_RATE_CHARS:
        raise MoneyError(f"the exchange rate is at most {MAX_RATE_CHARS} characters")
    if not _RATE.fullmatch(cleaned):
        raise MoneyError(
            f"the exchange rate must be a positive number like 1.0837, not {cleaned!r}"
        )
    if Decimal(cleaned) <= 0:
        raise MoneyError("the exchange rate must be a positive number, not zero")
    return cleaned


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


def major_text(minor: int, currency: str) -> str:
    """Minor units as a person types them: 2500 for 250000 cents, 12.5 for 1250."""
    value = Money(minor, currency).major
    if value == value.to_integral_value():
        return str(int(value))
    return str(value.normalize())
