"""Fixtures and helpers for the payment tests: the fake Stripe server over real HTTP, an app
configured against it, and signed webhook deliveries (registered from tests/conftest.py)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import stripe
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.testclient import TestClient

from fundgoal import db
from fundgoal.config import Secret, Settings
from fundgoal.models import Campaign
from fundgoal.payments.stripe import StripeGateway
from fundgoal.web.app import create_app
from tests.factories import make_campaign
from tests.fakestripe import FakeStripeServer, run_fake_stripe
from tests.logcheck import register

WEBHOOK_SECRET = "whsec_fundgoal_tests_0123456789"
API_KEY = "sk_test_fundgoal_tests_9b7e2c41d05a"
register(WEBHOOK_SECRET, API_KEY)  # never in a log line or captured output (tests/logcheck.py)


@pytest.fixture(scope="session")
def fake_stripe_server() -> Iterator[FakeStripeServer]:
    stripe.enable_telemetry = False
    with run_fake_stripe() as server:
        yield server


@pytest.fixture
def fake_stripe(fake_stripe_server: FakeStripeServer) -> FakeStripeServer:
    """The session's fake Stripe, emptied for this test."""
    fake_stripe_server.state.reset()
    return fake_stripe_server


@pytest.fixture
def stripe_settings(settings: Settings, fake_stripe: FakeStripeServer) -> Settings:
    return replace(
        settings,
        stripe_secret_key=Secret(API_KEY),
        stripe_webhook_secret=Secret(WEBHOOK_SECRET),
        stripe_api_base=fake_stripe.base_url,
    )


@pytest.fixture
def gateway(stripe_settings: Settings) -> StripeGateway:
    # No retries and a short timeout: each injected failure is seen, and fast.
    return StripeGateway(stripe_settings, timeout=2.0, retries=0)


@pytest.fixture
def stripe_client(
    stripe_settings: Settings, engine: Engine, gateway: StripeGateway
) -> Iterator[TestClient]:
    app = create_app(stripe_settings, engine=engine, payments=gateway)
    with TestClient(app) as client:
        yield client


def campaign(engine: Engine, slug: str = "spring", currency: str = "USD", **kw: Any) -> Campaign:
    milestones = (250_000, 500_000) if currency != "JPY" else (500_000, 1_000_000)
    with db.transaction(engine) as session:
        return make_campaign(session, slug=slug, currency=currency, milestones=milestones, **kw)


def raised(engine: Engine, slug: str) -> tuple[int, int]:
    """(raised, donors) as stored, after checking they match the ledger."""
    from fundgoal import ledger
    from fundgoal.stores import campaigns

    with Session(engine) as session:
        row = campaigns.by_slug(session, slug)
        assert row is not None
        assert ledger.drift(session, row) is None, "stored totals differ from the ledger"
        return row.raised, row.donors


def csrf(client: TestClient, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, "no CSRF field on the page"
    return found.group(1)


def donate(
    client: TestClient, slug: str, amount: str = "25", frequency: str = "once", **fields: str
) -> tuple[int, str, str]:
    """Post the donation form: (status, Location or body, attempt-independent session id)."""
    token = csrf(client, f"/donate/{slug}")
    answer = client.post(
        f"/donate/{slug}",
        data={"csrf_token": token, "amount": amount, "frequency": frequency, **fields},
        follow_redirects=False,
    )
    location = answer.headers.get("location", "")
    session_id = location.rsplit("/", 1)[-1] if answer.status_code == 303 else ""
    return answer.status_code, location or answer.text, session_id


def sign(
    event: dict[str, Any], secret: str = WEBHOOK_SECRET, timestamp: int | None = None
) -> tuple[bytes, str]:
    body = json.dumps(event, indent=2)
    return body.encode(), stripe.WebhookSignature.generate_signature_header(body, secret, timestamp)


def deliver(
    client: TestClient,
    event: dict[str, Any],
    secret: str = WEBHOOK_SECRET,
    timestamp: int | None = None,
) -> Any:
    body, header = sign(event, secret, timestamp)
    return client.post(
        "/webhooks/stripe",
        content=body,
        headers={"stripe-signature": header, "content-type": "application/json"},
    )


def deliver_all(client: TestClient, events: list[dict[str, Any]]) -> list[str]:
    statuses = []
    for event in events:
        answer = deliver(client, event)
        assert answer.status_code == 200, answer.text
        statuses.append(answer.json()["status"])
    return statuses
