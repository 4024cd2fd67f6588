"""Convergence: any order and any repetition of one donation's events, posted through the
webhook endpoint, gives one total (concurrent delivery: test_stripe_events_concurrency.py)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text
from starlette.testclient import TestClient

from fundgoal import db
from fundgoal.payments import CheckoutRequest
from fundgoal.payments.stripe import checkout_params
from tests.fakestripe import FakeStripeServer
from tests.stripe_support import campaign, deliver, donate, raised


def one_donation(client: TestClient, fake: FakeStripeServer) -> list[dict[str, Any]]:
    """Every event of one gift's life: async payment, partial refund, dispute won."""
    status, _, session_id = donate(client, "spring", "50")
    assert status == 303
    state = fake.state
    events = state.complete_checkout(session_id, async_payment=True, email="ann@example.org")
    events += state.async_payment_succeeded(session_id)
    pi = state.get(session_id)["payment_intent"]
    events += state.refund(pi, 1000)
    opened = state.dispute(pi)
    events += opened + state.close_dispute(opened[0]["data"]["object"]["id"], won=True)
    return events


def forget_payments(engine: Engine) -> None:
    with db.transaction(engine) as session:
        session.execute(text("DELETE FROM ledger_entry"))
        session.execute(text("DELETE FROM processed_event"))
        session.execute(text("UPDATE campaign SET raised = 0, donors = 0, last_gift_at = NULL"))


@pytest.fixture
def donation_events(
    stripe_client: TestClient, engine: Engine, fake_stripe: FakeStripeServer
) -> list[dict[str, Any]]:
    campaign(engine)
    return one_donation(stripe_client, fake_stripe)


@hypothesis_settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_order_and_repetition_gives_the_same_total(
    stripe_client: TestClient,
    engine: Engine,
    donation_events: list[dict[str, Any]],
    data: st.DataObject,
) -> None:
    # Fixtures run once per test, not per example: each example starts from an empty ledger.
    forget_payments(engine)
    events = donation_events
    repeats = data.draw(st.lists(st.sampled_from(range(len(events))), max_size=len(events)))
    order = data.draw(st.permutations([*range(len(events)), *repeats]))
    for index in order:
        answer = deliver(stripe_client, events[index])
        assert answer.status_code == 200, answer.text
    assert raised(engine, "spring") == (4000, 1)


def test_checkout_params_are_stripes_shape() -> None:
    request = CheckoutRequest(
        attempt_id="att_1",
        campaign_id=7,
        campaign_slug="spring",
        campaign_title="Spring",
        amount=2500,
        currency="EUR",
        frequency="once",
        public_url="https://news.example",
    )
    params: dict[str, Any] = dict(checkout_params(request))
    assert params["line_items"][0]["price_data"]["currency"] == "eur"
    assert params["success_url"].startswith("https://news.example/donate/spring/thanks")
    assert params["payment_intent_data"]["metadata"] == {
        "campaign": "spring",
        "campaign_id": "7",
        "attempt": "att_1",
    }
