"""Convergence: any order and any repetition of one donation's events gives one total, also
under concurrent delivery to a real server on PostgreSQL; and reconcile's object walk."""

from __future__ import annotations

import random
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest
import uvicorn
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text
from starlette.applications import Starlette
from starlette.testclient import TestClient

from fundgoal import db
from fundgoal.config import Settings
from fundgoal.payments import CheckoutRequest
from fundgoal.payments.stripe import StripeGateway, checkout_params
from fundgoal.web.app import create_app
from tests.fakestripe import FakeStripeServer
from tests.stripe_support import campaign, deliver, donate, raised, sign


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


@hypothesis_settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_order_and_repetition_gives_the_same_total(
    stripe_client: TestClient, engine: Engine, fake_stripe: FakeStripeServer, data: st.DataObject
) -> None:
    if not hasattr(test_any_order_and_repetition_gives_the_same_total, "events"):
        campaign(engine)
        events = one_donation(stripe_client, fake_stripe)
        test_any_order_and_repetition_gives_the_same_total.events = events  # type: ignore[attr-defined]
    events = test_any_order_and_repetition_gives_the_same_total.events  # type: ignore[attr-defined]
    forget_payments(engine)
    repeats = data.draw(st.lists(st.sampled_from(range(len(events))), max_size=len(events)))
    order = data.draw(st.permutations([*range(len(events)), *repeats]))
    for index in order:
        answer = deliver(stripe_client, events[index])
        assert answer.status_code == 200, answer.text
    assert raised(engine, "spring") == (4000, 1)


@pytest.fixture(autouse=True)
def _fresh_property_events() -> Iterator[None]:
    # The property test keeps its fake events between examples, never between tests.
    yield
    if hasattr(test_any_order_and_repetition_gives_the_same_total, "events"):
        del test_any_order_and_repetition_gives_the_same_total.events  # type: ignore[attr-defined]


@contextmanager
def serve(app: Starlette) -> Iterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_config=None, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the app did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def _post(url: str, body: bytes, header: str) -> int:
    request = urllib.request.Request(
        url + "/webhooks/stripe",
        data=body,
        headers={"stripe-signature": header, "content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        return int(answer.status)


@pytest.mark.postgres
def test_twenty_concurrent_deliveries_count_once(
    stripe_client: TestClient,
    stripe_settings: Settings,
    engine: Engine,
    gateway: StripeGateway,
    fake_stripe: FakeStripeServer,
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("concurrent delivery is PostgreSQL's production case")
    campaign(engine)
    events = one_donation(stripe_client, fake_stripe)
    signed = [sign(e) for e in events]
    app = create_app(stripe_settings, engine=engine, payments=gateway)
    with serve(app) as url:

        def worker(seed: int) -> list[int]:
            mine = signed[:]
            random.Random(seed).shuffle(mine)
            return [_post(url, body, header) for body, header in mine]

        with ThreadPoolExecutor(20) as pool:
            results = list(pool.map(worker, range(20)))
    assert all(status == 200 for statuses in results for status in statuses)
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
