"""CSV import of offline gifts: preview, row-level errors, all-or-nothing, never twice."""

from __future__ import annotations

import re

from sqlalchemy import Engine, select
from sqlmodel import Session
from starlette.testclient import TestClient

from fundgoal import db
from fundgoal.models import AuditLog, Campaign, LedgerEntry
from tests.factories import make_campaign

Client = tuple[TestClient, str]

GOOD = (
    "campaign,amount,date,donor_name,donor_email,source,note\r\n"
    "alpha,100,2026-10-01,Ada,ada@example.org,cheque,first\r\n"
    'alpha,"1,250.50",2026-10-02,"Lovelace, Ada",,bank_transfer,"with ""quotes"""\r\n'
    "\r\n"
    "beta,75,2026-10-03T09:30:00+02:00,,,cash,\r\n"
)


def state(engine: Engine) -> tuple[list[int], int, int]:
    with Session(engine) as s:
        raised = [c.raised for c in s.scalars(select(Campaign).order_by(Campaign.id))]
        return (
            raised,
            len(s.scalars(select(LedgerEntry.id)).all()),
            len(s.scalars(select(AuditLog.id)).all()),
        )


def setup(engine: Engine) -> None:
    with db.transaction(engine) as s:
        make_campaign(s, slug="alpha")
        make_campaign(s, slug="beta", currency="EUR")


def upload(client: TestClient, csrf: str, text: str | bytes) -> object:
    body = text.encode() if isinstance(text, str) else text
    return client.post(
        "/admin/gifts/import",
        data={"csrf": csrf},
        files={"file": ("gifts.csv", body, "text/csv")},
    )


def test_preview_then_import(signed_in: Client, engine: Engine) -> None:
    client, csrf = signed_in
    setup(engine)
    before = state(engine)
    preview = upload(client, csrf, GOOD)
    assert preview.status_code == 200  # type: ignore[attr-defined]
    html = preview.text  # type: ignore[attr-defined]
    assert "3 gifts, all valid." in html
    assert "$1,350.50" in html  # alpha's total
    assert state(engine) == before  # a preview writes nothing
    payload = re.search(r'name="payload" value="([^"]+)"', html)
    assert payload is not None
    answer = client.post(
        "/admin/gifts/import/confirm",
        data={"csrf": csrf, "payload": payload.group(1)},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    raised, entries, _ = state(engine)
    assert raised == [135_050, 7_500]
    assert entries == 3
    with Session(engine) as s:
        rows = s.scalars(select(LedgerEntry).order_by(LedgerEntry.id)).all()
        logs = s.scalars(select(AuditLog).where(AuditLog.action == "gift.record")).all()
    assert rows[1].donor_name == "Lovelace, Ada"
    assert rows[1].note == 'with "quotes"'
    assert rows[2].occurred_at.hour == 7  # 09:30+02:00 in UTC
    assert {log.actor for log in logs} == {"editor@example.org"}
    assert {log.reason for log in logs} == {"CSV import"}
    # The same file again is refused and changes nothing.
    again = client.post(
        "/admin/gifts/import/confirm", data={"csrf": csrf, "payload": payload.group(1)}
    )
    assert again.status_code == 409
    assert "imported already" in again.text
    assert state(engine)[:2] == ([135_050, 7_500], 3)


def test_row_errors_are_listed_and_nothing_is_written(signed_in: Client, engine: Engine) -> None:
    client, csrf = signed_in
    setup(engine)
    before = state(engine)
    text = (
        "campaign,amount,date,donor_email,source,original_amount,original_currency,exchange_rate\n"
        "alpha,100,2026-10-01,,,,,\n"
        "nope,100,2026-10-01,,,,,\n"
        "alpha,-5,2026-10-01,,,,,\n"
        "alpha,1.234,13/10/2026,bad-email,gold,,,\n"
        "beta,10,2026-10-01,,,12,USD,\n"
        "alpha,10,2026-10-01,,,,,,extra\n"
    )
    answer = upload(client, csrf, text)
    assert answer.status_code == 400  # type: ignore[attr-defined]
    html = answer.text  # type: ignore[attr-defined]
    for message in [
        "no campaign &#39;nope&#39;",
        "amount: the amount must be more than zero",
        "at most 2 decimal places",
        "is not like 2026-11-24",
        "donor_email: &#39;bad-email&#39; is not an email address",
        "source must be one of",
        "exchange_rate: a gift in another currency needs the amount received",
        "more cells than columns",
    ]:
        assert message in html, message
    assert 'name="payload"' not in html
    assert state(engine) == before
    # A forged confirm with the bad file is refused too.
    import base64

    forged = client.post(
        "/admin/gifts/import/confirm",
        data={"csrf": csrf, "payload": base64.b64encode(text.encode()).decode()},
    )
    assert forged.status_code == 400
    assert state(engine) == before


def test_file_level_errors(signed_in: Client, engine: Engine) -> None:
    client, csrf = signed_in
    setup(engine)
    before = state(engine)
    cases = {
        "amount,date\n1,2026-01-01\n": "lacks the column(s): campaign",
        "campaign,amount,date,colour\nalpha,1,2026-01-01,red\n": "unknown column(s): colour",
        "campaign,amount,date\n": "the file has no rows",
    }
    for text, message in cases.items():
        answer = upload(client, csrf, text)
        assert answer.status_code == 400  # type: ignore[attr-defined]
        assert message in answer.text  # type: ignore[attr-defined]
    latin = upload(
        client, csrf, "campaign,amount,date\nalpha,1,2026-01-01,Jos\xe9\n".encode("latin-1")
    )
    assert "not UTF-8" in latin.text  # type: ignore[attr-defined]
    missing = client.post("/admin/gifts/import", data={"csrf": csrf})
    assert missing.status_code == 400
    assert "Choose a CSV file" in missing.text
    assert (
        client.post(
            "/admin/gifts/import/confirm", data={"csrf": csrf, "payload": "%%%"}
        ).status_code
        == 400
    )
    assert state(engine) == before


def test_a_failure_half_way_rolls_everything_back(
    signed_in: Client, engine: Engine, monkeypatch: object
) -> None:
    import pytest

    from fundgoal.services import gifts

    client, csrf = signed_in
    setup(engine)
    before = state(engine)
    preview = upload(client, csrf, GOOD)
    payload = re.search(r'name="payload" value="([^"]+)"', preview.text)  # type: ignore[attr-defined]
    assert payload is not None
    real = gifts.record_offline_gift
    calls = []

    def flaky(*args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 3:
            raise gifts.Invalid("the database hiccuped")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    monkeypatch.setattr(gifts, "record_offline_gift", flaky)
    answer = client.post(
        "/admin/gifts/import/confirm", data={"csrf": csrf, "payload": payload.group(1)}
    )
    assert answer.status_code == 400
    assert state(engine) == before
