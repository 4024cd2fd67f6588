"""Hostile webhook deliveries: each is refused or ignored, and no money moves."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import time
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session
from starlette.testclient import TestClient

from fundgoal.models import LedgerEntry, ProcessedEvent
from tests.fakestripe import FakeStripeServer
from tests.stripe_support import WEBHOOK_SECRET, campaign, deliver, donate, raised, sign


def _header(body: bytes, secret: str, timestamp: int, scheme: str = "v1") -> str:
    payload = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},{scheme}={digest}"


def _paid(client: TestClient, fake: FakeStripeServer) -> dict[str, Any]:
    campaign(client.app.state.ctx.engine, "spring")  # type: ignore[attr-defined]
    status, _, session_id = donate(client, "spring", "50")
    assert status == 303
    completed = fake.state.complete_checkout(session_id)[0]
    assert completed["type"] == "checkout.session.completed"
    return completed


def _nothing_written(engine: Engine) -> None:
    with Session(engine) as s:
        assert s.scalars(select(ProcessedEvent)).all() == []
        assert s.scalars(select(LedgerEntry)).all() == []
    assert raised(engine, "spring") == (0, 0)


def _now() -> int:
    return int(time.time())


# (name, how the body and header are made from a genuine event) → 400, nothing written.
FORGERIES: dict[str, Any] = {
    "another_secret": lambda body: _header(body, "whsec_attacker_guess_000", _now()),
    "empty_secret": lambda body: _header(body, "", _now()),
    "replayed_301s_old": lambda body: _header(body, WEBHOOK_SECRET, _now() - 301),
    "replayed_a_day_old": lambda body: _header(body, WEBHOOK_SECRET, _now() - 86_400),
    "from_the_future": lambda body: _header(body, WEBHOOK_SECRET, _now() + 3_600),
    "v0_scheme_only": lambda body: _header(body, WEBHOOK_SECRET, _now(), scheme="v0"),
    "no_timestamp": lambda body: "v1=" + _header(body, WEBHOOK_SECRET, _now()).split("v1=")[1],
    "garbage_header": lambda body: "not a signature",
    "empty_header": lambda body: "",
    "signature_of_other_body": lambda body: _header(body + b" ", WEBHOOK_SECRET, _now()),
    "truncated_digest": lambda body: _header(body, WEBHOOK_SECRET, _now())[:-8],
}


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
def test_forged_replayed_and_resigned_webhooks_are_400(
    stripe_client: TestClient, engine: Engine, fake_stripe: FakeStripeServer, forgery: str
) -> None:
    event = _paid(stripe_client, fake_stripe)
    body = json.dumps(event).encode()
    header = FORGERIES[forgery](body)
    answer = stripe_client.post(
        "/webhooks/stripe",
        content=body,
        headers={"stripe-signature": header, "content-type": "application/json"},
    )
    assert answer.status_code == 400, answer.text
    _nothing_written(engine)
    # The genuine delivery still works afterwards: the forgery did not poison the event id.
    assert deliver(stripe_client, event).json()["status"] == "processed"
    assert raised(engine, "spring") == (5000, 1)


def test_a_tampered_body_under_a_genuine_signature_is_400(
    stripe_client: TestClient, engine: Engine, fake_stripe: FakeStripeServer
) -> None:
    event = _paid(stripe_client, fake_stripe)
    _, header = sign(event)
    evil = copy.deepcopy(event)
    evil["data"]["object"]["amount_total"] = 9_999_999
    answer = stripe_client.post(
        "/webhooks/stripe", content=json.dumps(evil).encode(), headers={"stripe-signature": header}
    )
    assert answer.status_code == 400
    _nothing_written(engine)


def test_a_replay_within_the_tolerance_is_a_duplicate(
    stripe_client: TestClient, engine: Engine, fake_stripe: FakeStripeServer
) -> None:
    event = _paid(stripe_client, fake_stripe)
    body, header = sign(event)
    for expected in ("processed", "duplicate", "duplicate"):
        answer = stripe_client.post(
            "/webhooks/stripe", content=body, headers={"stripe-signature": header}
        )
        assert answer.json()["status"] == expected
    assert raised(engine, "spring") == (5000, 1)


def _other_account(event: dict[str, Any]) -> None:
    event["account"] = "acct_1OtherConnectedAcct"


def _livemode(event: dict[str, Any]) -> None:
    event["livemode"] = True


def _unknown_campaign(event: dict[str, Any]) -> None:
    event["data"]["object"]["metadata"] = {"campaign": "nope", "campaign_id": "424242"}


def _campaign_id_of_another_slug(event: dict[str, Any]) -> None:
    event["data"]["object"]["metadata"] = {"campaign": "../spring", "campaign_id": "1"}


def _amount(event: dict[str, Any]) -> None:
    event["data"]["object"]["amount_total"] = 500_000


def _currency(event: dict[str, Any]) -> None:
    event["data"]["object"]["currency"] = "eur"


def _amount_down(event: dict[str, Any]) -> None:
    event["data"]["object"]["amount_total"] = 1


HOSTILE_EVENTS = {
    "other_connected_account": (_other_account, "ignored"),
    "livemode_mismatch": (_livemode, "ignored"),
    "unknown_campaign": (_unknown_campaign, "unresolved"),
    "campaign_id_with_wrong_slug": (_campaign_id_of_another_slug, "unresolved"),
    "amount_raised": (_amount, "processed"),
    "amount_lowered": (_amount_down, "processed"),
    "currency_changed": (_currency, "processed"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_EVENTS))
def test_correctly_signed_but_hostile_events_count_nothing(
    stripe_client: TestClient, engine: Engine, fake_stripe: FakeStripeServer, case: str
) -> None:
    """Signed with our secret (a Connect endpoint, a test key at a live endpoint, a session
    whose amount was changed before payment): acknowledged, and not a cent counts."""
    event = _paid(stripe_client, fake_stripe)
    mutate, expected = HOSTILE_EVENTS[case]
    evil = copy.deepcopy(event)
    evil["id"] = f"evt_hostile_{case}"
    mutate(evil)
    answer = deliver(stripe_client, evil)
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == expected
    assert raised(engine, "spring") == (0, 0)
    with Session(engine) as s:
        for entry in s.scalars(select(LedgerEntry)):
            assert entry.flag == "amount differs from the attempt", entry
