from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from decimal import Decimal

import pytest
from babel import Locale, localedata
from babel.numbers import format_decimal
from hypothesis import given
from hypothesis import strategies as st

from fundgoal import money as money_module
from fundgoal.money import (
    MAX_AMOUNT_CHARS,
    MAX_DONATION_MINOR,
    MAX_MINOR,
    CurrencyMismatch,
    Money,
    MoneyError,
    exponent,
    format_money,
    known_locale,
    normalize_currency,
    parse_amount,
    parse_rate,
)

locale_identifiers = localedata.locale_identifiers


@pytest.fixture(scope="module")
def monkeypatch_decimal() -> Iterator[list[str]]:
    """Every string money.py hands to Decimal, recorded (module-scoped for Hypothesis)."""
    seen: list[str] = []
    real = money_module.Decimal

    def spy(value: object = "0", *args: object) -> Decimal:
        if isinstance(value, str):
            seen.append(value)
        return real(value, *args)  # type: ignore[arg-type]

    money_module.Decimal = spy  # type: ignore[assignment, misc]
    try:
        yield seen
    finally:
        money_module.Decimal = real  # type: ignore[misc]


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
        ("1e999", "USD", "not an amount"),
        ("1e1000000", "USD", "not an amount"),
        ("+5", "USD", "without a \\+ sign"),
        ("\uff15", "USD", "digits 0 to 9"),
        ("\u0665", "USD", "digits 0 to 9"),
        ("1_0", "USD", "not an amount"),
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


# -- the one strict parser, by class ---------------------------------------------------------

ALL_LOCALES = sorted(
    {str(Locale.parse(name)) for name in locale_identifiers() if known_locale(name) is not None}
)
non_ascii_digits = st.characters(categories=["Nd", "No", "Nl"]).filter(
    lambda c: c not in "0123456789"
)


@given(
    minor=st.integers(min_value=1, max_value=MAX_MINOR),
    currency=st.sampled_from(CURRENCIES),
    locale=st.sampled_from(ALL_LOCALES),
)
def test_every_locales_own_latin_notation_parses_back(
    minor: int, currency: str, locale: str
) -> None:
    """Whatever the locale, the number as Babel writes it with the digits 0-9 is accepted."""
    money = Money(minor, currency)
    typed = format_decimal(
        money.major, locale=locale, decimal_quantization=False, numbering_system="latn"
    )
    assert parse_amount(typed, currency, locale, max_minor=MAX_MINOR) == money


@given(
    digit=non_ascii_digits,
    before=st.from_regex(r"[0-9]{0,4}", fullmatch=True),
    locale=st.sampled_from(ALL_LOCALES),
)
def test_no_digit_but_0_to_9(digit: str, before: str, locale: str) -> None:
    """Full-width, Arabic-Indic, Devanagari, superscript, Roman numerals: refused, in every
    locale, even where the locale itself writes numbers with other digits."""
    with pytest.raises(MoneyError, match=r"digits 0 to 9|not an amount"):
        parse_amount(before + digit, "USD", locale)


@given(
    mantissa=st.from_regex(r"[0-9]{1,6}(\.[0-9]{1,3})?", fullmatch=True),
    mark=st.sampled_from(["e", "E", "e+", "e-", "E+"]),
    power=st.integers(min_value=0, max_value=10**7),
)
def test_no_exponent(mantissa: str, mark: str, power: int) -> None:
    with pytest.raises(MoneyError, match="not an amount"):
        parse_amount(f"{mantissa}{mark}{power}", "USD", max_minor=MAX_MINOR)


@given(
    a=st.from_regex(r"[0-9]{1,4}", fullmatch=True),
    b=st.from_regex(r"[0-9]{1,4}", fullmatch=True),
    sign=st.sampled_from(["+", "-", "\u2212", "\uff0b", "\uff0d"]),
)
def test_no_underscore_and_no_sign(a: str, b: str, sign: str) -> None:
    with pytest.raises(MoneyError, match="not an amount"):
        parse_amount(f"{a}_{b}", "USD", max_minor=MAX_MINOR)
    with pytest.raises(MoneyError, match=r"sign|more than zero"):
        parse_amount(f"{sign}{a}", "USD", max_minor=MAX_MINOR)


@pytest.mark.parametrize(
    "word", ["Infinity", "inf", "-Infinity", "NaN", "sNaN", "nan", "\u221e", "0x10", "1/2"]
)
def test_no_words(word: str) -> None:
    with pytest.raises(MoneyError):
        parse_amount(word, "USD")
    with pytest.raises(MoneyError):
        parse_rate(word)


@given(text=st.text(max_size=400), locale=st.sampled_from(LOCALES))
def test_the_parser_converts_only_short_plain_decimals(
    text: str, locale: str, monkeypatch_decimal: list[str]
) -> None:
    """By construction: whatever arrives, the only thing ever handed to Decimal is at most
    MAX_AMOUNT_CHARS ASCII digits and one point (no exponent, so no huge integer), and the
    answer is a Money or a MoneyError, never anything else."""
    monkeypatch_decimal.clear()
    with contextlib.suppress(MoneyError):
        parse_amount(text, "USD", locale, max_minor=MAX_MINOR)
    for converted in monkeypatch_decimal:
        assert len(converted) <= MAX_AMOUNT_CHARS
        assert re.fullmatch(r"[0-9]+(\.[0-9]+)?", converted), converted


HOSTILE = {
    "huge exponent": "1e600000",
    "overflowing exponent": "1e1000000",
    "megabyte of digits": "9" * 1_000_000,
    "megabyte of spaces": " " * 1_000_000 + "5",
    "megabyte of groups": "1," * 500_000 + "000",
    "full-width digits": "\uff15" * 100_000,
    "control characters": "\x00\x1b" * 100_000,
}


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_cpu_per_hostile_amount_is_far_below_a_millisecond(text: str) -> None:
    """The issue's bound: no handler spends more than ~1 ms of CPU on an untrusted amount.
    Process CPU time (not wall time, so a busy machine does not inflate it), averaged over
    many calls; the bound is generous: the cap makes the work constant."""
    calls = 200
    started = time.process_time()
    for _ in range(calls):
        with pytest.raises(MoneyError):
            parse_amount(text, "USD", "fr", max_minor=MAX_MINOR)
    assert (time.process_time() - started) / calls < 0.001


@given(rate=st.from_regex(r"[0-9]{1,8}\.[0-9]{1,8}", fullmatch=True))
def test_rates_are_plain_positive_decimals(rate: str) -> None:
    if Decimal(rate) > 0:
        assert parse_rate(f" {rate} ") == rate
    else:
        with pytest.raises(MoneyError):
            parse_rate(rate)


@pytest.mark.parametrize("rate", ["1" * 33, "1e3", "1_0", "-1", "+1", "\uff11", "1,5", "0"])
def test_odd_rates_are_refused(rate: str) -> None:
    with pytest.raises(MoneyError):
        parse_rate(rate)


def test_code_amounts_are_plain_decimals_too() -> None:
    assert Money.from_major("12.5", "USD") == Money(1250, "USD")
    for text in ("1e1000000", "1_0", "\u0665", "Infinity"):
        with pytest.raises(MoneyError):
            Money.from_major(text, "USD")
    with pytest.raises(MoneyError, match="too large"):
        Money.from_major(Decimal("1e1000000"), "USD")
