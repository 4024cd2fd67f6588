"""The input models' rules by class (Hypothesis): every control, direction and invisible
character, every length past a column, every non-ASCII digit, for every model that stores
text. A new field or model is covered by adding it to FIELDS, not by listing hostile values."""

from __future__ import annotations

import unicodedata
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fundgoal.errors import Invalid
from fundgoal.inputs import InputError, numbers
from fundgoal.inputs.auth import DonorLinkRequest, SignIn
from fundgoal.inputs.campaign import CampaignSpec
from fundgoal.inputs.donation import Donation
from fundgoal.inputs.emails import check_email
from fundgoal.inputs.gift import CSV_LABELS, GiftText, OfflineGift
from fundgoal.inputs.text import BIDI_CONTROLS, displayable, shown
from fundgoal.models import AuditLog, Campaign, DonationAttempt, LedgerEntry, LoginAttempt
from fundgoal.money import Money
from fundgoal.progress import Milestone

USD = Money(500, "USD")


def campaign(**text: Any) -> CampaignSpec:
    fields = {"title": "Spring", **text}
    return CampaignSpec(slug="spring", currency="USD", milestones=[Milestone(500)], **fields)


def donation(**text: Any) -> Donation:
    return Donation(amount=USD, frequency="once", **text)


def gift(**text: Any) -> OfflineGift:
    return OfflineGift(amount=USD, **text)


# (model builder, field, the column it fills, multi-line, must show something)
FIELDS = [
    (campaign, "title", (Campaign, "title"), False, True),
    (campaign, "description", (Campaign, "description"), True, False),
    (donation, "name", (DonationAttempt, "donor_name"), False, True),
    (donation, "message", (DonationAttempt, "message"), True, False),
    (gift, "donor_name", (LedgerEntry, "donor_name"), False, True),
    (gift, "note", (LedgerEntry, "note"), True, False),
    (gift, "reason", (AuditLog, "reason"), True, False),
]
IDS = [f"{b.__name__}.{f}" for b, f, *_ in FIELDS]


def column(table: Any, name: str) -> int:
    length: int = table.__table__.c[name].type.length
    return length


refused_controls = st.characters(categories=["Cc", "Zl", "Zp"]).filter(lambda c: c not in "\t\n")
bidi = st.sampled_from(sorted(BIDI_CONTROLS))
invisible = st.text(
    st.characters(categories=["Zs", "Mn", "Me"])
    | st.sampled_from(["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"]),
    min_size=1,
    max_size=12,
)
visible_text = st.text(st.characters(categories=["L", "N", "P", "S"]), min_size=1, max_size=40)


@pytest.mark.parametrize(("build", "name", "col", "multiline", "visible"), FIELDS, ids=IDS)
@given(text=visible_text, bad=refused_controls | bidi, at=st.integers(min_value=0))
def test_control_and_direction_characters_are_refused_anywhere(
    build: Any, name: str, col: Any, multiline: bool, visible: bool, text: str, bad: str, at: int
) -> None:
    spot = at % (len(text) + 1)
    if bad in "\r" and multiline:
        return  # a lone CR in multi-line text is a line break (old Macs, some browsers)
    with pytest.raises(InputError) as caught:
        build(**{name: text[:spot] + bad + text[spot:]})
    assert name in caught.value.fields


@pytest.mark.parametrize(("build", "name", "col", "multiline", "visible"), FIELDS, ids=IDS)
@given(lines=st.lists(visible_text, min_size=2, max_size=4))
def test_line_breaks_only_in_multi_line_fields(
    build: Any, name: str, col: Any, multiline: bool, visible: bool, lines: list[str]
) -> None:
    text = "\r\n".join(line.strip() or "x" for line in lines)
    if multiline:
        assert getattr(build(**{name: text}), name) == text.replace("\r\n", "\n").strip()
    else:
        with pytest.raises(InputError):
            build(**{name: text})


@pytest.mark.parametrize(("build", "name", "col", "multiline", "visible"), FIELDS, ids=IDS)
@given(extra=st.integers(min_value=1, max_value=100_000))
def test_lengths_are_the_columns_own(
    build: Any, name: str, col: Any, multiline: bool, visible: bool, extra: int
) -> None:
    limit = column(*col)
    assert getattr(build(**{name: "a" * limit}), name) == "a" * limit
    with pytest.raises(InputError, match=f"at most {limit:,}"):
        build(**{name: "a" * (limit + extra)})


@pytest.mark.parametrize(
    ("build", "name"), [(b, n) for b, n, _c, _m, v in FIELDS if v], ids=lambda x: str(x)
)
@given(text=invisible)
def test_titles_and_names_must_show_something(build: Any, name: str, text: str) -> None:
    if any(ch in BIDI_CONTROLS for ch in text) or not text.strip():
        return
    with pytest.raises(InputError, match=r"invisible|required"):
        build(**{name: text})


@given(
    local=st.from_regex(r"[a-z0-9._+-]{1,30}", fullmatch=True),
    domain=st.from_regex(r"[a-z0-9-]{1,20}(\.[a-z0-9-]{1,20}){0,2}\.[a-z]{2,10}", fullmatch=True),
)
def test_plain_addresses_pass_and_keep_their_shape(local: str, domain: str) -> None:
    address = f"{local}@{domain}"
    assert check_email(f"  {address.upper()} ") == address
    assert DonorLinkRequest(email=address).email == address


@given(bad=refused_controls | bidi | st.sampled_from([" ", "@"]), at=st.integers(min_value=0))
def test_addresses_with_odd_characters_are_refused(bad: str, at: int) -> None:
    address = "ada.lovelace@example.org"
    spot = 1 + at % (len(address) - 2)
    with pytest.raises(InputError):
        DonorLinkRequest(email=address[:spot] + bad + address[spot:])


def test_emails_fit_their_column() -> None:
    limit = column(LedgerEntry, "donor_email")
    assert limit == column(LoginAttempt, "email")
    long_ok = "a" * 64 + "@" + ".".join(["b" * 60] * 4) + ".org"
    assert len(long_ok) <= limit
    assert gift(donor_email=long_ok).donor_email == long_ok
    with pytest.raises(InputError, match=r"at most 320|not an email"):
        gift(donor_email="a" * 64 + "@" + ".".join(["b" * 63] * 5) + ".org")


def test_sign_in_refuses_what_cannot_be_stored_but_not_odd_shapes() -> None:
    assert SignIn(email=" Ed@Example.ORG", password="p").email == "ed@example.org"
    assert SignIn(email="not an address", password="p").email == "not an address"
    with pytest.raises(InputError, match="NUL"):
        SignIn(email="ed\x00@example.org", password="p")
    with pytest.raises(InputError, match="at most 1024"):
        SignIn(email="ed@example.org", password="p" * 1025)


@given(text=st.text(max_size=30) | st.from_regex(r"[0-9]{1,30}", fullmatch=True))
def test_ids_are_ascii_digits_within_the_column(text: str) -> None:
    found = numbers.parse_id(text)
    if found is not None:
        assert text.isascii()
        assert text.isdigit()
        assert 0 < found <= numbers.MAX_ID
    elif text.isascii() and text.isdigit() and len(text) <= 10:
        assert not 0 < int(text) <= numbers.MAX_ID


@given(text=st.text(max_size=60))
def test_moments_parse_or_are_refused_never_anything_else(text: str) -> None:
    try:
        moment = numbers.parse_moment(text)
    except Invalid:
        return
    assert moment.tzinfo is not None
    assert numbers.MIN_YEAR - 1 <= moment.year <= numbers.MAX_YEAR + 1


@given(
    day=st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)),
    offset=st.integers(min_value=-23 * 60, max_value=23 * 60),
)
def test_dates_at_the_calendars_edges_never_overflow(day: date, offset: int) -> None:
    sign = "+" if offset >= 0 else "-"
    text = f"{day.isoformat()}T23:59{sign}{abs(offset) // 60:02}:{abs(offset) % 60:02}"
    for candidate in (day.isoformat(), text):
        try:
            numbers.parse_moment(candidate)
        except Invalid:
            assert not numbers.MIN_YEAR <= day.year <= numbers.MAX_YEAR


def test_gifts_are_not_in_the_future() -> None:
    with pytest.raises(InputError, match="future"):
        gift(occurred_at=datetime.now(UTC) + timedelta(days=2))
    with pytest.raises(InputError, match="future"):
        GiftText(amount="5", date="2999-01-01").gift("USD")


def test_one_rule_for_the_form_and_the_file() -> None:
    """The dashboard's form and a CSV row are the same GiftText: same verdict, the message
    named by the form's label or by the file's column."""
    row = GiftText(amount="5", date="2026-01-01", donor_email="nope", source="gold")
    with pytest.raises(InputError) as form:
        row.gift("USD")
    with pytest.raises(InputError) as csv:
        row.gift("USD", CSV_LABELS)
    assert form.value.fields == csv.value.fields
    assert "Donor email: 'nope' is not an email address" in form.value.errors
    assert "donor_email: 'nope' is not an email address" in csv.value.errors


@given(text=st.text(max_size=200))
def test_output_escaping_leaves_no_control_character(text: str) -> None:
    for ch in displayable(text):
        assert ch in "\t\n" or unicodedata.category(ch) not in ("Cc", "Cs")
        assert ch not in BIDI_CONTROLS
    for ch in shown(text):
        assert unicodedata.category(ch) not in ("Cc", "Cs", "Zl", "Zp")
        assert ch not in BIDI_CONTROLS
