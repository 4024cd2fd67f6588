from __future__ import annotations

from decimal import Decimal

import pytest
from babel.numbers import format_decimal
from hypothesis import given
from hypothesis import strategies as st

from fundgoal.money import (
    MAX_DONATION_MINOR,
    CurrencyMismatch,
    Money,
    MoneyError,
    exponent,
    format_money,
    normalize_currency,
    parse_amount,
)

CURRENCIES = ["USD", "EUR", "JPY", "KRW", "KWD", "BHD", "GBP", "CHF"]
LOCALES = ["en", "en_IN", "fr", "de", "de_CH", "es", "pt_BR", "ja"]


def test_exponents_follow_stripe() -> None:
    assert exponent("USD") == 2
    assert exponent("JPY") == 0
    assert exponent("KRW") == 0
    assert exponent("KWD") == 3


@pytest.mark.parametrize(
    ("text", "currency", "locale", "minor"),
    [
        ("25", "USD", "en", 2500),
        ("25.50", "USD", "en", 2550),
        ("1,000.5", "USD", "en", 100050),
        ("1 000,5", "EUR", "fr", 100050),
        ("1.000,5", "EUR", "de", 100050),
        ("  7 ", "USD", "en", 700),
        ("5000", "JPY", "ja", 5000),
        ("1.234", "KWD", "en", 1234),
    ],
)
def test_parse_accepts_what_people_type(text: str, currency: str, locale: str, minor: int) -> None:
    assert parse_amount(text, currency, locale) == Money(minor, currency)


@pytest.mark.parametrize(
    ("text", "currency", "message"),
    [
        ("", "USD", "enter an amount"),
        ("0", "USD", "more than zero"),
        ("0.00", "USD", "more than zero"),
        ("-5", "USD", "more than zero"),
        ("abc", "USD", "not an amount"),
        ("NaN", "USD", "not an amount"),
        ("Infinity", "USD", "not an amount"),
        ("1.234", "USD", "at most 2 decimal places"),
        ("12.5", "JPY", "whole units"),
        ("1e999", "USD", "too large"),
        ("99999999999", "USD", r"at most \$999,999\.99"),
        ("1" * 40, "USD", "too long"),
    ],
)
def test_parse_rejects_with_a_message(text: str, currency: str, message: str) -> None:
    with pytest.raises(MoneyError, match=message):
        parse_amount(text, currency)


def test_unknown_currency_and_locale() -> None:
    with pytest.raises(MoneyError, match="unknown currency"):
        normalize_currency("XYZ1")
    with pytest.raises(MoneyError, match="unknown currency"):
        normalize_currency("QQQ")
    with pytest.raises(MoneyError, match="unknown locale"):
        parse_amount("5", "USD", "zz_ZZ")


def test_formatting_is_babels_choice() -> None:
    assert format_money(250_000, "USD", "en") == "$2,500"
    assert format_money(146_050, "USD", "en") == "$1,460.50"
    # French groups with a narrow no-break space and writes the symbol after, as Babel says.
    assert format_money(250_000, "USD", "fr") == "2\u202f500\xa0$US"
    assert format_money(5_000, "JPY", "en") == "¥5,000"
    assert format_money(1_500, "KWD", "en") == "KWD1.500"


def test_arithmetic_refuses_to_mix_currencies() -> None:
    assert Money(100, "USD") + Money(250, "USD") == Money(350, "USD")
    assert Money(100, "USD") < Money(250, "USD")
    with pytest.raises(CurrencyMismatch):
        _ = Money(100, "USD") + Money(100, "EUR")
    with pytest.raises(CurrencyMismatch):
        _ = Money(100, "USD") < Money(100, "EUR")
    with pytest.raises(TypeError):
        Money(1.5, "USD")  # type: ignore[arg-type]


def test_from_major_is_exact() -> None:
    assert Money.from_major("0.1", "USD") == Money(10, "USD")
    assert Money.from_major(Decimal("1000"), "JPY") == Money(1000, "JPY")
    with pytest.raises(MoneyError):
        Money.from_major("0.001", "USD")


@given(
    minor=st.integers(min_value=1, max_value=MAX_DONATION_MINOR),
    currency=st.sampled_from(CURRENCIES),
    locale=st.sampled_from(LOCALES),
)
def test_round_trip_through_the_locales_own_notation(
    minor: int, currency: str, locale: str
) -> None:
    money = Money(minor, currency)
    typed = format_decimal(money.major, locale=locale, decimal_quantization=False)
    assert parse_amount(typed, currency, locale) == money


@given(minor=st.integers(min_value=0, max_value=10**12), currency=st.sampled_from(CURRENCIES))
def test_major_and_minor_agree(minor: int, currency: str) -> None:
    money = Money(minor, currency)
    assert money.major.scaleb(exponent(currency)) == minor
    assert Money.from_major(money.major, currency) == money


@given(minor=st.integers(min_value=1, max_value=10**10), locale=st.sampled_from(LOCALES))
def test_formatted_whole_amounts_show_no_decimals(minor: int, locale: str) -> None:
    whole = Money(minor * 100, "USD")
    assert format_money(whole.minor, "USD", locale) == format_money(minor * 100, "USD", locale)
    text = format_money(whole.minor, "USD", locale)
    assert not text.rstrip("$US\xa0 ").endswith((".00", ",00"))
