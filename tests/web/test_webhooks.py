"""POST /webhooks/stripe with events from the fake Stripe, signed like Stripe signs them."""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import pytest
import stripe
from sqlalchemy import Engine, select
from sqlmodel import Session, col
from starlette.testclient import TestClient

from fundgoal import ledger
from fundgoal.models import DonationAttempt, LedgerEntry, ProcessedEvent
from tests.fakestripe import FakeStripeServer
from tests.stripe_support import (
    WEBHOOK_SECRET,
    campaign,
    deliver,
    deliver_all,
    donate,
    raised,
    sign,
)


def entries(engine: Engine) -> list[LedgerEntry]:
    with Session(engine) as session:
        return list(session.scalars(select(LedgerEntry).order_by(col(LedgerEntry.id))))


def processed(engine: Engine) -> dict[str, ProcessedEvent]:
    with Session(engine) as session:
        return {e.id: e for e in session.scalars(select(ProcessedEvent))}


def checkout(
    client: TestClient, fake: FakeStripeServer, slug: str = "spring", amount: str = "50", **kw: Any
) -> tuple[str, list[dict[str, Any]]]:
    """A donation through the form, paid on the fake Checkout: (session id, its events)."""
    frequency = kw.pop("frequency", "once")
    status, _, session_id = donate(client, slug, amount, frequency, **kw.pop("fields", {}))
    assert status == 303
    return session_id, fake.state.complete_checkout(session_id, **kw)


def test_a_paid_checkout_counts_once_however_often_it_arrives(
    stripe_client: TestClient, engine: Engine, fake_stripe: FakeStripeServer
) -> None:
    campaign(engine)
    session_id, events = checkout(stripe_client, fake_stripe)
    assert deliver_all(stripe_client, events)[0] == "processed"
    again = deliver_all(stripe_client, events)
    assert again[0] == "duplicate"
    assert set(again) <= {"duplicate", "ignored"}  # payment_intent.* and charge.* are unused
    assert raised(engine, "spring") == (5000, 1)
    [entry] = entries(engine)
    pi = fake_stripe.state.get(session_id)["payment_intent"]
    assert (entry.provider, entry.provider_ref, entry.status) == ("stripe", pi, "succeeded")
    assert entry.checkout_session_id == session_id
    assert entry.donor_email == "donor@example.com"
    first = events[0]
    assert processed(engine)[first["id"]].outcome == "applied"


def test_unused_event_types_are_acknowledged(
    stripe_client: TestClient, engine: Engine, fake_stripe: FakeStripeServer
) -> None:
    campaign(engine)
    _, events = checkout(stripe_client, fake_stripe)
    by_type = {e["type"]: e for e in events}
    answer = deliver(stripe_client, by_type["payment_intent.succeeded"])
    assert answer.status_code == 200
    assert answer.json()["status"] == "ignored"
    strange = copy.deepcopy(by_type["payment_intent.succeeded"])
    strange["id"], strange["type"] = "evt_strange", "climate.order.delayed"
    assert deliver(stripe_client, strange).json()["status"] == "ignored"
    assert raised(engine, "spring") == (0, 0)


def test_refund_before_payment_then_partial_then_full(
    stripe_client: TestClient, engine: Engine, fake_stripe: FakeStripeServer
) -> None:
    campaign(engine)
    session_id, paid = checkout(stripe_client, fake_stripe)
    pi = fake_stripe.state.get(session_id)["payment_intent"]
    partial = fake_stripe.state.refund(pi, 1500)
    # The refund's events arrive before the payment's: the gift is created from the charge
    # (its metadata, or its PaymentIntent's, names the campaign) with the refund already off.
    deliver_all(stripe_client, partial)
    assert raised(engine, "spring") == (3500, 1)
    deliver_all(stripe_client, paid)
    assert raised(engine, "spring") == (3500, 1)
    full = fake_stripe.state.refund(pi)
    deliver_all(stripe_client, list(reversed(full)))
    assert raised(engine, "spring") == (0, 0)
    [entry] = entries(engine)
    assert entry.amount_refunded == 5000
    assert fake_stripe.state.requests_to("/v1/charges/", "GET")  # refund.created fetched it


def test_a_charge_without_metadata_is_placed_through_its_payment_intent(
    stripe_client: TestClient, engine: Engine, fake_stripe: FakeStripeServer
) -> None:
    campaign(engine)
    session_id, _ = checkout(stripe_client, fake_stripe)
    pi = fake_stripe.state.get(session_id)["payment_intent"]
    refunded = next(e for e in fake_stripe.state.refund(pi, 500) if e["type"] == "charge.refunded")
    refunded["data"]["object"]["metadata"] = {}
    deliver(stripe_client, refunded)
    assert fake_stripe.state.requests_to(f"/v1/payment_intents/{pi}", "GET")
    assert raised(engine, "spring") == (4500, 1)


def test_async_payment_success_and_failure(
    stripe_client: TestClient, engine: Engine, fake_stripe: FakeStripeServer
) -> None:
    campaign(engine)
    good, events = checkout(stripe_client, fake_stripe, async_payment=True)
    deliver_all(stripe_client, events)
    assert raised(engine, "spring") == (0, 0)
    thanks = stripe_client.get(f"/donate/spring/thanks?session_id={good}")
    assert "Processing" in thanks.text
    deliver_all(stripe_client, fake_stripe.state.async_payment_succeeded(good))
    assert raised(engine, "spring") == (5000, 1)
    assert "is confirmed" in stripe_client.get(f"/donate/spring/thanks?session_id={good}").text

    bad, events = checkout(stripe_client, fake_stripe, amount="70", async_payment=True)
    failure = fake_stripe.state.async_payment_failed(bad)
    deliver_all(stripe_client, failure + events)  # failure first: still failed at the end
    assert raised(engine, "spring") == (5000, 1)
    assert "did not go through" in stripe_client.get(f"/donate/spring/thanks?session_id={bad}").text
    statuses = sorted(e.status for e in entries(engine))
    assert statuses == ["failed", "succeeded"]


def test_expired_checkout_marks_the_attempt(
    stripe_client: TestClient, engine: Engine, fake_stripe: FakeStripeServer
) -> None:
    campaign(engine)
    _, _, session_id = donate(stripe_client, "spring", "20")
    deliver_all(stripe_client, fake_stripe.state.expire_checkout(session_id))
    assert entries(engine) == []
    with Session(engine) as session:
        [attempt] = session.scalars(select(DonationAttempt)).all()
    assert attempt.status == "expired"
    assert "expired" in stripe_client.get(f"/donate/spring/thanks?session_id={session_id}").text


def test_monthly_gift_over_three_invoices_with_one_failure(
    stripe_client: TestClient, engine: Engine, fake_stripe: FakeStripeServer
) -> None:
    campaign(engine)
    session_id, events = checkout(
        stripe_client, fake_stripe, amount="12", frequency="monthly", fields={"name": "Mo"}
    )
    deliver_all(stripe_client, events)
    assert raised(engine, "spring") == (1200, 1)
    subscription = fake_stripe.state.get(session_id)["subscription"]
    deliver_all(stripe_client, fake_stripe.state.pay_next_invoice(subscription))
    failed = fake_stripe.state.fail_next_invoice(subscription)
    deliver_all(stripe_client, failed)
    assert raised(engine, "spring") == (2400, 1)  # one donor, two paid invoices
    rows = entries(engine)
    assert [e.kind for e in rows] == ["monthly"] * 3
    assert [e.status for e in rows] == ["succeeded", "succeeded", "failed"]
    assert {e.donor_name for e in rows} == {"Mo"}
    assert {e.subscription_id for e in rows} == {subscription}
    # Stripe's smart retry pays the failed invoice: the same entry succeeds.
    deliver_all(stripe_client, fake_stripe.state.pay_next_invoice(subscription))
    deliver_all(stripe_client, failed)  # a late duplicate changes nothing
    assert raised(engine, "spring") == (3600, 1)
    assert len(entries(engine)) == 3
    # Cancelling moves no money; the attempt records the end.
    deliver_all(stripe_client, fake_stripe.state.cancel_subscription(subscription))
    assert raised(engine, "spring") == (3600, 1)
    with Session(engine) as session:
        [attempt] = session.scalars(select(DonationAttempt)).all()
    assert attempt.subscription_id == subscription
    assert attempt.ended_at is not None
    # Refunding one month's charge finds its invoice through the invoice payments.
    invoice = rows[1].provider_ref
    [payment] = fake_stripe.state.invoice_payments(invoice)
    deliver_all(stripe_client, fake_stripe.state.refund(payment["payment"]["payment_intent"]))
    assert raised(engine, "spring") == (2400, 1)


@pytest.mark.parametrize("won", [False, True])
def test_disputes_withdraw_and_return_money(
    stripe_client: TestClient, engine: Engine, fake_stripe: FakeStripeServer, won: bool
) -> None:
    campaign(engine)
    session_id, events = checkout(stripe_client, fake_stripe, amount="80")
    deliver_all(stripe_client, events)
    pi = fake_stripe.state.get(session_id)["payment_intent"]
    opened = fake_stripe.state.dispute(pi)
    deliver_all(stripe_client, opened)
    assert raised(engine, "spring") == (0, 0)
    dispute_id = opened[0]["data"]["object"]["id"]
    closed = fake_stripe.state.close_dispute(dispute_id, won=won)
    deliver_all(stripe_client, closed)
    assert raised(engine, "spring") == ((8000, 1) if won else (0, 0))
    deliver_all(stripe_client, opened)  # late duplicates of the opening events
    assert raised(engine, "spring") == ((8000, 1) if won else (0, 0))
    [entry] = entries(engine)
    assert entry.dispute_status == ("won" if won else "lost")


def test_dispute_before_payment(
    stripe_client: TestClient, engine: Engine, fake_stripe: FakeStripeServer
) -> None:
    campaign(engine)
    session_id, events = checkout(stripe_client, fake_stripe, amount="80")
    pi = fake_stripe.state.get(session_id)["payment_intent"]
    opened = fake_stripe.state.dispute(pi)
    deliver_all(stripe_client, opened + events)
    assert raised(engine, "spring") == (0, 0)
    [entry] = entries(engine)
    assert entry.amount_disputed == 8000


def test_zero_decimal_currency(
    stripe_client: TestClient, engine: Engine, fake_stripe: FakeStripeServer
) -> None:
    campaign(engine, "tokyo", currency="JPY")
    session_id, events = checkout(stripe_client, fake_stripe, "tokyo", "3000")
    deliver_all(stripe_client, events)
    assert raised(engine, "tokyo") == (3000, 1)
    pi = fake_stripe.state.get(session_id)["payment_intent"]
    deliver_all(stripe_client, fake_stripe.state.refund(pi, 1000))
    assert raised(engine, "tokyo") == (2000, 1)
    assert stripe_client.get("/api/campaigns/tokyo").json()["formatted"]["raised"] == "¥2,000"


def test_amount_tampering_is_flagged_and_not_counted(
    stripe_client: TestClient, engine: Engine, fake_stripe: FakeStripeServer
) -> None:
    campaign(engine)
    _, events = checkout(stripe_client, fake_stripe, amount="50")
    completed = copy.deepcopy(events[0])
    assert completed["type"] == "checkout.session.completed"
    completed["data"]["object"]["amount_total"] = 500_000
    deliver(stripe_client, completed)
    assert raised(engine, "spring") == (0, 0)
    [entry] = entries(engine)
    assert entry.flag == "amount differs from the attempt"


def test_unknown_campaign_is_acknowledged_and_recorded(
    stripe_client: TestClient, engine: Engine, fake_stripe: FakeStripeServer
) -> None:
    campaign(engine)
    _, events = checkout(stripe_client, fake_stripe)
    stray = copy.deepcopy(events[0])
    stray["id"] = "evt_stray"
    stray["data"]["object"]["metadata"] = {"campaign": "gone", "campaign_id": "999"}
    answer = deliver(stripe_client, stray)
    assert answer.status_code == 200
    assert answer.json()["status"] == "unresolved"
    record = processed(engine)["evt_stray"]
    assert record.outcome == "unresolved"
    assert "unknown campaign" in (record.detail or "")
    assert raised(engine, "spring") == (0, 0)


def test_wrong_livemode_is_ignored(
    stripe_client: TestClient, engine: Engine, fake_stripe: FakeStripeServer
) -> None:
    campaign(engine)
    _, events = checkout(stripe_client, fake_stripe)
    live = copy.deepcopy(events[0])
    live["livemode"] = True
    answer = deliver(stripe_client, live)
    assert answer.status_code == 200
    assert answer.json()["status"] == "ignored"
    assert processed(engine) == {}
    assert raised(engine, "spring") == (0, 0)


def test_signatures_are_checked(
    stripe_client: TestClient, engine: Engine, fake_stripe: FakeStripeServer
) -> None:
    campaign(engine)
    _, events = checkout(stripe_client, fake_stripe)
    forged = deliver(stripe_client, events[0], secret="whsec_someone_else")
    assert forged.status_code == 400
    stale = deliver(stripe_client, events[0], timestamp=int(time.time()) - 301)
    assert stale.status_code == 400
    body, header = sign(events[0])
    unsigned = stripe_client.post("/webhooks/stripe", content=body)
    assert unsigned.status_code == 400
    altered = stripe_client.post(
        "/webhooks/stripe",
        content=body.replace(b'"amount_total": 5000', b'"amount_total": 9000'),
        headers={"stripe-signature": header},
    )
    assert altered.status_code == 400
    assert processed(engine) == {}
    assert raised(engine, "spring") == (0, 0)
    # Still within the tolerance: accepted.
    assert deliver(stripe_client, events[0], timestamp=int(time.time()) - 200).status_code == 200


@pytest.mark.parametrize("body", [b"{not json", b"[]", b'{"id": "evt_1"}', b"\xff\xfe"])
def test_malformed_bodies_are_400(stripe_client: TestClient, body: bytes) -> None:
    text = body.decode("utf-8", "replace")
    header = stripe.WebhookSignature.generate_signature_header(text, WEBHOOK_SECRET)
    answer = stripe_client.post(
        "/webhooks/stripe", content=body, headers={"stripe-signature": header}
    )
    assert answer.status_code == 400
    assert answer.json()["error"] in {"bad_payload", "bad_signature"}


def test_oversized_bodies_are_413(stripe_client: TestClient) -> None:
    event = {"id": "evt_big", "type": "invoice.paid", "padding": "x" * 300_000}
    body, header = sign(event)
    answer = stripe_client.post(
        "/webhooks/stripe", content=body, headers={"stripe-signature": header}
    )
    assert answer.status_code == 413
    streamed = stripe_client.post(
        "/webhooks/stripe",
        content=iter([body[:100_000], body[100_000:]]),  # no content-length: counted while read
        headers={"stripe-signature": header},
    )
    assert streamed.status_code == 413


def test_a_failure_answers_500_and_the_retry_applies(
    stripe_client: TestClient,
    engine: Engine,
    fake_stripe: FakeStripeServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    campaign(engine)
    _, events = checkout(stripe_client, fake_stripe)
    real_apply = ledger.apply

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(ledger, "apply", broken)
    answer = deliver(stripe_client, events[0])
    assert answer.status_code == 500
    assert WEBHOOK_SECRET not in answer.text
    assert processed(engine) == {}  # not claimed: Stripe's retry is processed
    monkeypatch.setattr(ledger, "apply", real_apply)
    assert deliver(stripe_client, events[0]).json()["status"] == "processed"
    assert raised(engine, "spring") == (5000, 1)


def test_a_stripe_outage_while_fetching_answers_500(
    stripe_client: TestClient, engine: Engine, fake_stripe: FakeStripeServer
) -> None:
    campaign(engine)
    session_id, _ = checkout(stripe_client, fake_stripe)
    pi = fake_stripe.state.get(session_id)["payment_intent"]
    refund = fake_stripe.state.refund(pi, 1000)
    created = next(e for e in refund if e["type"] == "refund.created")
    fake_stripe.state.fail_next("/v1/charges", 500)
    assert deliver(stripe_client, created).status_code == 500
    assert deliver(stripe_client, created).json()["status"] == "processed"
    assert raised(engine, "spring") == (4000, 1)


def test_disabled_without_a_webhook_secret(stripe_settings: Any, engine: Engine) -> None:
    from dataclasses import replace

    from fundgoal.config import Secret
    from fundgoal.web.app import create_app

    app = create_app(replace(stripe_settings, stripe_webhook_secret=Secret("")), engine=engine)
    with TestClient(app) as client:
        body, header = sign({"id": "evt_1", "type": "invoice.paid"})
        answer = client.post("/webhooks/stripe", content=body, headers={"stripe-signature": header})
    assert answer.status_code == 404
    assert json.loads(answer.text)["error"] == "disabled"


def test_other_products_on_the_same_account_are_ignored(
    stripe_client: TestClient, engine: Engine
) -> None:
    campaign(engine)
    base = {"object": "event", "livemode": False, "created": int(time.time())}
    charge = {
        "id": "ch_other",
        "object": "charge",
        "amount": 999,
        "amount_refunded": 999,
        "currency": "usd",
        "metadata": {},
        "payment_intent": None,
        "status": "succeeded",
    }
    invoice = {
        "id": "in_other",
        "object": "invoice",
        "amount_paid": 999,
        "currency": "usd",
        "parent": {"subscription_details": {"subscription": "sub_other", "metadata": {}}},
    }
    subscription = {"id": "sub_other", "object": "subscription", "metadata": {}}
    for n, (kind, obj) in enumerate(
        [
            ("charge.refunded", charge),
            ("invoice.paid", invoice),
            ("customer.subscription.deleted", subscription),
        ]
    ):
        answer = deliver(
            stripe_client, {**base, "id": f"evt_other_{n}", "type": kind, "data": {"object": obj}}
        )
        assert answer.status_code == 200
        assert answer.json()["status"] == "ignored"
    assert entries(engine) == []
    assert {e.outcome for e in processed(engine).values()} == {"ignored"}
