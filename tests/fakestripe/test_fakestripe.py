"""The fake Stripe, driven by the real `stripe` library over real HTTP.

If these pass, the app's tests can trust that what works against the fake is what the
library sends and parses against Stripe for the pinned API version.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any, cast

import httpx
import pytest
import stripe
from stripe.params.checkout import SessionCreateParams

from .runner import FakeStripeServer, run_fake_stripe, stripe_client
from .signing import sign_event
from .state import FakeStripe

SECRET = "whsec_test_secret"
KEY = "sk_test_fakestripe"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeStripeServer]:
    # One server for the module (starting and stopping one costs ~0.3 s); state reset per test.
    with run_fake_stripe() as running:
        yield running


@pytest.fixture
def state(server: FakeStripeServer) -> Iterator[FakeStripe]:
    server.state.reset()
    yield server.state
    # A bug in the fake must fail the test that hit it, not hide behind a 500.
    assert server.state.server_errors == []


@pytest.fixture
def client(server: FakeStripeServer, state: FakeStripe) -> Iterator[stripe.StripeClient]:
    with stripe_client(server) as c:
        yield c


@pytest.fixture
def raw(server: FakeStripeServer, state: FakeStripe) -> Iterator[httpx.Client]:
    """Plain HTTP, for what the library hides (bytes, headers, missing auth)."""
    with httpx.Client(base_url=server.base_url, timeout=5) as c:
        yield c


def donation_params(**overrides: Any) -> SessionCreateParams:
    params: dict[str, Any] = {
        "mode": "payment",
        "submit_type": "donate",
        "success_url": "http://fundgoal.test/donate/demo/thanks?session={CHECKOUT_SESSION_ID}",
        "cancel_url": "http://fundgoal.test/donate/demo",
        "client_reference_id": "attempt-1",
        "customer_email": "donor@example.org",
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": "usd",
                    "unit_amount": 2500,
                    "product_data": {"name": "Donation to Demo"},
                },
            }
        ],
        "metadata": {"campaign": "demo"},
        "payment_intent_data": {"metadata": {"campaign": "demo", "attempt": "1"}},
    }
    params.update(overrides)
    return cast(SessionCreateParams, params)


def monthly_params(**overrides: Any) -> SessionCreateParams:
    params: dict[str, Any] = dict(donation_params())
    params.update(
        mode="subscription",
        line_items=[
            {
                "quantity": 1,
                "price_data": {
                    "currency": "eur",
                    "unit_amount": 1000,
                    "product_data": {"name": "Monthly gift"},
                    "recurring": {"interval": "month"},
                },
            }
        ],
        subscription_data={"metadata": {"campaign": "demo"}},
    )
    del params["payment_intent_data"], params["submit_type"]
    params.update(overrides)
    return cast(SessionCreateParams, params)


def verified(event: dict[str, Any]) -> stripe.Event:
    body, header = sign_event(event, SECRET)
    parsed: stripe.Event = stripe.Webhook.construct_event(body, header, SECRET)
    return parsed


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


# -- checkout sessions ------------------------------------------------------------------------


def test_create_session_is_shaped_like_stripe_and_recorded(
    client: stripe.StripeClient, state: FakeStripe, server: FakeStripeServer
) -> None:
    session = client.v1.checkout.sessions.create(
        params=donation_params(), options={"idempotency_key": "k1"}
    )

    assert session.id.startswith("cs_test_")
    assert session.object == "checkout.session"
    assert session.livemode is False
    assert session.url == f"{server.base_url}/c/pay/{session.id}"
    assert (session.amount_total, session.currency) == (2500, "usd")
    assert (session.status, session.payment_status) == ("open", "unpaid")
    assert session.payment_intent is None  # created only when the donor pays
    assert session.metadata is not None
    assert session.metadata.to_dict() == {"campaign": "demo"}
    assert session.client_reference_id == "attempt-1"
    assert session.submit_type == "donate"
    again = client.v1.checkout.sessions.retrieve(session.id)
    assert again.to_dict() == session.to_dict()

    create = state.requests_to("/v1/checkout/sessions", "POST")[0]
    assert create.idempotency_key == "k1"
    assert create.stripe_version == stripe.api_version
    assert create.header("Authorization") == f"Bearer {KEY}"
    assert create.params["line_items"][0]["price_data"]["unit_amount"] == "2500"
    assert create.params["payment_intent_data"] == {
        "metadata": {"campaign": "demo", "attempt": "1"}
    }
    assert create.status == 200


def test_line_items_are_returned_only_when_expanded(client: stripe.StripeClient) -> None:
    session = client.v1.checkout.sessions.create(params=donation_params())
    assert "line_items" not in session

    expanded = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["line_items"]})
    assert expanded.line_items is not None
    (item,) = expanded.line_items.data
    assert (item.amount_total, item.quantity, item.description) == (2500, 1, "Donation to Demo")
    assert item.price is not None
    assert (item.price.unit_amount, item.price.type) == (2500, "one_time")
    listed = client.v1.checkout.sessions.line_items.list(session.id)
    assert [i.id for i in listed.data] == [item.id]


@pytest.mark.parametrize(
    ("change", "param", "message"),
    [
        ({"success_url": None}, "success_url", "Missing required param: success_url."),
        ({"mode": None}, "mode", "Missing required param: mode."),
        ({"line_items": None}, "line_items", "Missing required param: line_items."),
        ({"success_url": "not a url"}, "success_url", "Not a valid URL"),
        ({"extra": "x"}, "extra", "Received unknown parameter: extra"),
        (
            {
                "line_items": [
                    {
                        "price_data": {
                            "currency": "usd",
                            "unit_amount": 500,
                            "product_data": {"name": "x"},
                        }
                    }
                ]
            },
            "line_items[0][quantity]",
            "Missing required param: line_items[0][quantity].",
        ),
        (
            {
                "line_items": [
                    {
                        "quantity": 1,
                        "price_data": {
                            "currency": "usd",
                            "unit_amount": 500,
                            "product_data": {"nme": "x"},
                        },
                    }
                ]
            },
            "line_items[0][price_data][product_data][nme]",
            "Received unknown parameter: line_items[0][price_data][product_data][nme]",
        ),
        (
            {
                "line_items": [
                    {
                        "quantity": 1,
                        "price_data": {
                            "currency": "usd",
                            "unit_amount": 500,
                            "product_data": {"name": "x"},
                            "recurring": {"interval": "month"},
                        },
                    }
                ]
            },
            "mode",
            "You specified `payment` mode but passed a recurring price.",
        ),
        (
            {
                "line_items": [
                    {
                        "quantity": 1,
                        "price_data": {
                            "currency": "usd",
                            "unit_amount": 49,
                            "product_data": {"name": "x"},
                        },
                    }
                ]
            },
            None,
            "must add up to at least $0.50 usd",
        ),
        ({"subscription_data": {"metadata": {"a": "b"}}}, "subscription_data", "in `payment` mode"),
        ({"metadata": {"k" * 41: "v"}}, f"metadata[{'k' * 41}]", "Metadata keys can have up to 40"),
    ],
)
def test_create_session_is_validated_like_stripe(
    client: stripe.StripeClient,
    state: FakeStripe,
    change: dict[str, Any],
    param: str | None,
    message: str,
) -> None:
    params = {k: v for k, v in {**donation_params(), **change}.items() if v is not None}
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.checkout.sessions.create(params=params)  # type: ignore[arg-type]
    assert caught.value.http_status == 400
    assert caught.value.param == param
    assert message in str(caught.value.user_message)
    assert state.objects_of("checkout.session") == []  # a refused request leaves no trace


def test_zero_decimal_amounts_pass_through(client: stripe.StripeClient) -> None:
    items = [
        {
            "quantity": 1,
            "price_data": {"currency": "jpy", "unit_amount": 500, "product_data": {"name": "x"}},
        }
    ]
    session = client.v1.checkout.sessions.create(params=donation_params(line_items=items))
    assert (session.amount_total, session.currency) == (500, "jpy")


def test_list_sessions_paginates_newest_first(
    client: stripe.StripeClient, state: FakeStripe
) -> None:
    state.set_time(1_700_000_000)
    ids = []
    for _ in range(25):
        ids.append(state.create_checkout_session(donation_params())["id"])
        state.advance_time(60)

    first = client.v1.checkout.sessions.list(params={"limit": 10})
    assert (first.url, first.has_more) == ("/v1/checkout/sessions", True)
    assert [s.id for s in first.data] == ids[::-1][:10]
    assert [s.id for s in first.auto_paging_iter()] == ids[::-1]
    cursors = [
        r.params.get("starting_after") for r in state.requests_to("/v1/checkout/sessions", "GET")
    ]
    # auto_paging_iter starts from the page it was called on, then follows the cursor.
    assert cursors == [None, ids[15], ids[5]]

    recent = client.v1.checkout.sessions.list(params={"created": {"gte": 1_700_000_000 + 60 * 20}})
    assert [s.id for s in recent.data] == ids[20:][::-1]
    older = client.v1.checkout.sessions.list(params={"limit": 3, "ending_before": ids[5]})
    assert [s.id for s in older.data] == [ids[8], ids[7], ids[6]]
    assert older.has_more
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.checkout.sessions.list(params={"limit": 101})
    assert caught.value.param == "limit"


def test_expire_over_http_records_an_event_naming_the_request(
    client: stripe.StripeClient, state: FakeStripe
) -> None:
    session = client.v1.checkout.sessions.create(params=donation_params())
    expired = client.v1.checkout.sessions.expire(session.id, options={"idempotency_key": "exp-1"})
    assert (expired.status, expired.url) == ("expired", None)
    (event,) = state.events
    assert event["type"] == "checkout.session.expired"
    assert event["request"]["idempotency_key"] == "exp-1"
    assert event["request"]["id"].startswith("req_")
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.checkout.sessions.expire(session.id)
    assert types(
        state.expire_checkout(client.v1.checkout.sessions.create(params=donation_params()).id)
    ) == ["checkout.session.expired"]


# -- idempotency, auth, errors, faults ----------------------------------------------------------


def test_idempotent_replay_is_byte_for_byte(
    client: stripe.StripeClient, raw: httpx.Client, state: FakeStripe
) -> None:
    first = client.v1.checkout.sessions.create(
        params=donation_params(), options={"idempotency_key": "same"}
    )
    second = client.v1.checkout.sessions.create(
        params=donation_params(), options={"idempotency_key": "same"}
    )
    assert second.id == first.id
    assert len(state.objects_of("checkout.session")) == 1

    headers = {"Authorization": f"Bearer {KEY}", "Idempotency-Key": "raw-1"}
    form = {"mode": "payment", "success_url": "http://x.test/ok", "line_items[0][quantity]": "1",
            "line_items[0][price_data][currency]": "usd", "line_items[0][price_data][unit_amount]": "500",
            "line_items[0][price_data][product_data][name]": "Gift"}  # fmt: skip
    one = raw.post("/v1/checkout/sessions", data=form, headers=headers)
    two = raw.post("/v1/checkout/sessions", data=form, headers=headers)
    assert one.status_code == two.status_code == 200
    assert one.content == two.content
    assert two.headers["Idempotent-Replayed"] == "true"
    assert one.headers["Request-Id"] == two.headers["Request-Id"]

    with pytest.raises(stripe.IdempotencyError) as caught:
        client.v1.checkout.sessions.create(
            params=donation_params(client_reference_id="other"), options={"idempotency_key": "same"}
        )
    assert caught.value.http_status == 400
    assert "same parameters" in str(caught.value.user_message)


def test_a_refused_request_can_be_fixed_and_retried_with_its_key(
    client: stripe.StripeClient,
) -> None:
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.checkout.sessions.create(
            params=donation_params(success_url="nope"), options={"idempotency_key": "fix-me"}
        )
    session = client.v1.checkout.sessions.create(
        params=donation_params(), options={"idempotency_key": "fix-me"}
    )
    assert session.status == "open"


def test_requests_need_a_test_secret_key(server: FakeStripeServer, raw: httpx.Client) -> None:
    missing = raw.get("/v1/events")
    assert missing.status_code == 401
    assert missing.json()["error"]["type"] == "invalid_request_error"
    assert missing.json()["error"]["message"].startswith("You did not provide an API key.")

    with (
        stripe_client(server, api_key="sk_live_abcdefgh1234") as live,
        pytest.raises(stripe.AuthenticationError) as caught,
    ):
        live.v1.events.list()
    assert caught.value.http_status == 401
    assert str(caught.value.user_message) == "Invalid API Key provided: sk_live_********1234"


def test_missing_objects_and_unknown_urls_are_404(
    client: stripe.StripeClient, raw: httpx.Client
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.checkout.sessions.retrieve("cs_test_nope")
    assert (caught.value.http_status, caught.value.code) == (404, "resource_missing")
    assert caught.value.user_message == "No such checkout.session: 'cs_test_nope'"

    unknown = raw.get("/v1/nothing", headers={"Authorization": f"Bearer {KEY}"})
    assert unknown.status_code == 404
    assert unknown.json()["error"]["message"].startswith(
        "Unrecognized request URL (GET: /v1/nothing)"
    )


def test_injected_500_fails_once_then_the_library_retry_succeeds(
    server: FakeStripeServer, state: FakeStripe
) -> None:
    state.fail_next("/v1/checkout/sessions", status=500)
    with stripe_client(server) as no_retry, pytest.raises(stripe.APIError) as caught:
        no_retry.v1.checkout.sessions.create(params=donation_params())
    assert caught.value.http_status == 500

    state.fail_next("/v1/checkout/sessions", status=500)
    with stripe_client(server, max_network_retries=1) as retrying:
        session = retrying.v1.checkout.sessions.create(params=donation_params())
    attempts = state.requests_to("/v1/checkout/sessions", "POST")[1:]
    assert [r.status for r in attempts] == [500, 200]
    # The library retries with the same key; the failed attempt saved nothing under it.
    assert attempts[0].idempotency_key == attempts[1].idempotency_key
    assert [s["id"] for s in state.objects_of("checkout.session")] == [session.id]


def test_injected_429_is_a_rate_limit_error(client: stripe.StripeClient, state: FakeStripe) -> None:
    state.fail_next("/v1/events", status=429, times=2)
    for _ in range(2):
        with pytest.raises(stripe.RateLimitError):
            client.v1.events.list()
    assert client.v1.events.list().data == []


def test_a_timed_out_request_still_ran_and_its_key_replays_it(
    server: FakeStripeServer, state: FakeStripe
) -> None:
    state.delay_next("/v1/checkout/sessions", seconds=1.0)
    started = time.monotonic()
    with stripe_client(server, timeout=0.3) as impatient:
        with pytest.raises(stripe.APIConnectionError):
            impatient.v1.checkout.sessions.create(
                params=donation_params(), options={"idempotency_key": "slow"}
            )
        assert time.monotonic() - started < 0.9
        (created,) = state.objects_of("checkout.session")  # Stripe did create it
        retried = impatient.v1.checkout.sessions.create(
            params=donation_params(), options={"idempotency_key": "slow"}
        )
    assert retried.id == created["id"]
    assert len(state.objects_of("checkout.session")) == 1


# -- one-time donations --------------------------------------------------------------------------


def test_complete_checkout_pays_with_metadata_and_verifiable_events(
    client: stripe.StripeClient, state: FakeStripe
) -> None:
    session = client.v1.checkout.sessions.create(params=donation_params())
    events = state.complete_checkout(session.id)
    assert types(events) == [
        "checkout.session.completed",
        "payment_intent.succeeded",
        "charge.succeeded",
    ]
    for event in events:
        assert event["id"].startswith("evt_")
        assert event["object"] == "event"
        assert (event["api_version"], event["livemode"]) == (stripe.api_version, False)
        assert event["request"] == {"id": None, "idempotency_key": None}
    assert state.events == events

    completed = verified(events[0])
    assert isinstance(completed, stripe.Event)
    snapshot = completed.data.object
    assert isinstance(snapshot, stripe.checkout.Session)
    assert (snapshot.status, snapshot.payment_status) == ("complete", "paid")
    assert snapshot.metadata is not None
    assert snapshot.metadata["campaign"] == "demo"
    assert snapshot.customer_details is not None
    assert snapshot.customer_details.email == "donor@example.org"

    assert isinstance(snapshot.payment_intent, str)
    pi = client.v1.payment_intents.retrieve(
        snapshot.payment_intent, params={"expand": ["latest_charge"]}
    )
    assert (pi.status, pi.amount_received) == ("succeeded", 2500)
    assert pi.metadata.to_dict() == {"campaign": "demo", "attempt": "1"}
    charge = pi.latest_charge
    assert isinstance(charge, stripe.Charge)
    assert (charge.amount, charge.paid, charge.refunded, charge.payment_intent) == (
        2500,
        True,
        False,
        pi.id,
    )
    assert charge.metadata.to_dict() == pi.metadata.to_dict()
    assert client.v1.charges.retrieve(charge.id).amount_refunded == 0

    with pytest.raises(stripe.InvalidRequestError):
        client.v1.checkout.sessions.expire(session.id)


def test_async_payment_completes_unpaid_then_succeeds_or_fails(
    client: stripe.StripeClient, state: FakeStripe
) -> None:
    ok = client.v1.checkout.sessions.create(params=donation_params())
    first = state.complete_checkout(ok.id, async_payment=True)
    assert types(first) == ["checkout.session.completed"]
    assert first[0]["data"]["object"]["payment_status"] == "unpaid"
    pi_id = first[0]["data"]["object"]["payment_intent"]
    assert client.v1.payment_intents.retrieve(pi_id).status == "processing"
    later = state.async_payment_succeeded(ok.id)
    assert types(later) == [
        "checkout.session.async_payment_succeeded",
        "payment_intent.succeeded",
        "charge.succeeded",
    ]
    assert later[0]["data"]["object"]["payment_status"] == "paid"

    bad = client.v1.checkout.sessions.create(params=donation_params())
    state.complete_checkout(bad.id, async_payment=True)
    failed = state.async_payment_failed(bad.id)
    assert types(failed) == [
        "checkout.session.async_payment_failed",
        "payment_intent.payment_failed",
    ]
    assert client.v1.checkout.sessions.retrieve(bad.id).payment_status == "unpaid"


# -- monthly donations ----------------------------------------------------------------------------


def test_subscription_checkout_renewals_failures_and_cancel(
    client: stripe.StripeClient, state: FakeStripe
) -> None:
    session = client.v1.checkout.sessions.create(params=monthly_params())
    events = state.complete_checkout(session.id)
    assert types(events) == [
        "checkout.session.completed",
        "invoice.paid",
        "invoice.payment_succeeded",
        "payment_intent.succeeded",
        "charge.succeeded",
    ]
    completed = verified(events[0]).data.object
    assert (completed.payment_status, completed.payment_intent) == ("paid", None)
    sub_id, first_invoice_id = completed.subscription, completed.invoice

    paid = verified(events[1]).data.object
    assert isinstance(paid, stripe.Invoice)
    assert paid.parent is not None
    assert paid.parent.subscription_details is not None
    assert paid.parent.subscription_details.subscription == sub_id
    assert paid.parent.subscription_details.metadata is not None
    assert paid.parent.subscription_details.metadata.to_dict() == {"campaign": "demo"}
    assert (paid.amount_paid, paid.currency, paid.billing_reason) == (
        1000,
        "eur",
        "subscription_create",
    )
    assert "subscription" not in paid  # API 2025-03-31+: moved under parent
    assert "payment_intent" not in paid  # ... and under payments
    assert "payments" not in paid  # includable: only with expand

    invoice = client.v1.invoices.retrieve(first_invoice_id, params={"expand": ["payments"]})
    assert invoice.payments is not None
    (payment,) = invoice.payments.data
    assert payment.payment.payment_intent == events[3]["data"]["object"]["id"]
    assert events[3]["data"]["object"]["metadata"] == {}  # only the invoice knows the campaign

    subscription = client.v1.subscriptions.retrieve(sub_id)
    assert (subscription.status, subscription.metadata.to_dict()) == (
        "active",
        {"campaign": "demo"},
    )
    period_end = subscription["items"].data[0].current_period_end

    renewal = state.pay_next_invoice(sub_id)
    assert types(renewal) == [
        "invoice.paid",
        "invoice.payment_succeeded",
        "payment_intent.succeeded",
        "charge.succeeded",
    ]
    assert renewal[0]["data"]["object"]["billing_reason"] == "subscription_cycle"
    assert renewal[0]["data"]["object"]["period_start"] == period_end

    failure = state.fail_next_invoice(sub_id)
    assert types(failure) == [
        "invoice.payment_failed",
        "payment_intent.payment_failed",
        "charge.failed",
        "customer.subscription.updated",
    ]
    assert failure[-1]["data"]["previous_attributes"] == {"status": "active"}
    retry = state.pay_next_invoice(sub_id)  # the failed invoice is retried, not a new one
    assert retry[0]["data"]["object"]["id"] == failure[0]["data"]["object"]["id"]
    assert retry[0]["data"]["object"]["attempt_count"] == 2
    assert types(retry)[-1] == "customer.subscription.updated"

    listed = client.v1.invoices.list(params={"subscription": sub_id})
    assert len(listed.data) == 3
    assert listed.data[-1].id == first_invoice_id
    assert client.v1.invoices.list(params={"subscription": "sub_other"}).data == []

    canceled = client.v1.subscriptions.cancel(sub_id)
    assert canceled.status == "canceled"
    deleted = state.events[-1]
    assert deleted["type"] == "customer.subscription.deleted"
    assert deleted["request"]["id"] is not None
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.subscriptions.cancel(sub_id)
    with pytest.raises(Exception, match="canceled"):
        state.pay_next_invoice(sub_id)


def test_subscription_simulated_cancel(client: stripe.StripeClient, state: FakeStripe) -> None:
    session = client.v1.checkout.sessions.create(params=monthly_params())
    state.complete_checkout(session.id)
    sub_id = state.get(session.id)["subscription"]
    (event,) = state.cancel_subscription(sub_id)
    assert event["type"] == "customer.subscription.deleted"
    assert event["data"]["object"]["status"] == "canceled"


def test_async_subscription_starts_incomplete_until_the_debit_clears(
    client: stripe.StripeClient, state: FakeStripe
) -> None:
    session = client.v1.checkout.sessions.create(params=monthly_params())
    (completed,) = state.complete_checkout(session.id, async_payment=True)
    sub_id = completed["data"]["object"]["subscription"]
    assert client.v1.subscriptions.retrieve(sub_id).status == "incomplete"
    assert client.v1.invoices.retrieve(completed["data"]["object"]["invoice"]).status == "open"
    cleared = state.async_payment_succeeded(session.id)
    assert types(cleared) == [
        "checkout.session.async_payment_succeeded",
        "invoice.paid",
        "invoice.payment_succeeded",
        "payment_intent.succeeded",
        "charge.succeeded",
        "customer.subscription.updated",
    ]
    assert client.v1.subscriptions.retrieve(sub_id).status == "active"


def test_one_time_items_bill_once_and_line_items_keep_their_order(
    client: stripe.StripeClient, state: FakeStripe
) -> None:
    one_time = {
        "quantity": 2,
        "price_data": {"currency": "eur", "unit_amount": 300, "product_data": {"name": "Sticker"}},
    }
    params = monthly_params()
    session = client.v1.checkout.sessions.create(
        params=cast(
            SessionCreateParams, {**params, "line_items": [*params["line_items"], one_time]}
        )
    )
    assert session.amount_total == 1600
    names = [i.description for i in client.v1.checkout.sessions.line_items.list(session.id).data]
    assert names == ["Monthly gift", "Sticker"]
    page = client.v1.checkout.sessions.line_items.list(session.id, params={"limit": 1})
    rest = client.v1.checkout.sessions.line_items.list(
        session.id, params={"starting_after": page.data[0].id}
    )
    assert [i.description for i in rest.data] == ["Sticker"]

    events = state.complete_checkout(session.id)
    first = events[1]["data"]["object"]
    assert first["amount_paid"] == 1600
    assert [line["parent"]["type"] for line in first["lines"]["data"]] == [
        "subscription_item_details",
        "invoice_item_details",
    ]
    renewal = state.pay_next_invoice(first["parent"]["subscription_details"]["subscription"])
    assert renewal[0]["data"]["object"]["amount_paid"] == 1000


def test_unmodelled_list_filters_are_refused_not_ignored(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.invoices.list(params={"due_date": 1})
    assert caught.value.param == "due_date"
    with pytest.raises(stripe.InvalidRequestError, match="unknown parameter: colour"):
        client.v1.invoices.list(params={"colour": "red"})  # type: ignore[arg-type]


# -- refunds and disputes ----------------------------------------------------------------------


def paid_donation(client: stripe.StripeClient, state: FakeStripe) -> str:
    session = client.v1.checkout.sessions.create(params=donation_params())
    state.complete_checkout(session.id)
    return str(state.get(session.id)["payment_intent"])


def test_refunds_accumulate_and_over_refunds_are_refused(
    client: stripe.StripeClient, state: FakeStripe
) -> None:
    pi_id = paid_donation(client, state)
    partial = state.refund(pi_id, 1000)
    assert types(partial) == ["charge.refunded", "refund.created"]
    charge = verified(partial[0]).data.object
    assert (charge.amount_refunded, charge.refunded) == (1000, False)
    assert partial[1]["data"]["object"]["amount"] == 1000

    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.refunds.create(params={"payment_intent": pi_id, "amount": 1600})
    assert caught.value.param == "amount"
    assert "greater than unrefunded amount on charge ($15.00)" in str(caught.value.user_message)

    rest = client.v1.refunds.create(
        params={"payment_intent": pi_id}, options={"idempotency_key": "r2"}
    )
    assert (rest.amount, rest.status, rest.payment_intent) == (1500, "succeeded", pi_id)
    assert state.events[-2]["data"]["object"]["amount_refunded"] == 2500
    assert state.events[-2]["data"]["object"]["refunded"] is True
    assert state.events[-1]["request"]["idempotency_key"] == "r2"
    assert client.v1.refunds.retrieve(rest.id).amount == 1500
    assert [r.amount for r in client.v1.refunds.list(params={"payment_intent": pi_id}).data] == [
        1500,
        1000,
    ]
    assert client.v1.refunds.list(params={"created": {"gte": state.now() + 10}}).data == []

    with pytest.raises(stripe.InvalidRequestError) as refunded:
        client.v1.refunds.create(params={"charge": charge.id})
    assert refunded.value.code == "charge_already_refunded"
    expanded = client.v1.charges.retrieve(charge.id, params={"expand": ["refunds"]})
    assert expanded.refunds is not None
    assert len(expanded.refunds.data) == 2


def test_disputes_withdraw_then_reinstate_or_not(
    client: stripe.StripeClient, state: FakeStripe
) -> None:
    pi_id = paid_donation(client, state)
    opened = state.dispute(pi_id)
    assert types(opened) == ["charge.dispute.created", "charge.dispute.funds_withdrawn"]
    dispute = verified(opened[1]).data.object
    assert isinstance(dispute, stripe.Dispute)
    assert (dispute.amount, dispute.status, dispute.payment_intent) == (
        2500,
        "needs_response",
        pi_id,
    )
    assert dispute.balance_transactions[0].amount == -2500
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.refunds.create(params={"payment_intent": pi_id})
    assert caught.value.code == "charge_disputed"

    won = state.close_dispute(dispute.id, won=True)
    assert types(won) == ["charge.dispute.closed", "charge.dispute.funds_reinstated"]
    assert won[0]["data"]["object"]["status"] == "won"

    lost_pi = paid_donation(client, state)
    lost_id = state.dispute(lost_pi)[0]["data"]["object"]["id"]
    lost = state.close_dispute(lost_id, won=False)
    assert types(lost) == ["charge.dispute.closed"]
    assert client.v1.disputes.retrieve(lost_id).status == "lost"
    assert [d.id for d in client.v1.disputes.list().data] == [lost_id, dispute.id]
    assert [d.id for d in client.v1.disputes.list(params={"payment_intent": pi_id}).data] == [
        dispute.id
    ]


# -- events and webhooks -------------------------------------------------------------------------


def test_events_can_be_listed_filtered_and_retrieved(
    client: stripe.StripeClient, state: FakeStripe
) -> None:
    state.set_time(1_700_000_000)
    early = client.v1.checkout.sessions.create(params=donation_params())
    state.complete_checkout(early.id)
    state.advance_time(3600)
    late = client.v1.checkout.sessions.create(params=donation_params())
    state.complete_checkout(late.id)

    completed = client.v1.events.list(params={"type": "checkout.session.completed"})
    assert [e.data.object.id for e in completed.data] == [late.id, early.id]
    wildcard = client.v1.events.list(params={"type": "charge.*"})
    assert {e.type for e in wildcard.data} == {"charge.succeeded"}
    recent = client.v1.events.list(params={"created": {"gte": 1_700_003_600}})
    assert len(recent.data) == 3
    all_ids = [e.id for e in client.v1.events.list(params={"limit": 2}).auto_paging_iter()]
    assert all_ids == [e["id"] for e in reversed(state.events)]
    assert client.v1.events.retrieve(all_ids[0]).type == "charge.succeeded"


def test_sign_event_matches_the_library_verifier(state: FakeStripe) -> None:
    state.create_checkout_session(donation_params())
    session_id = state.objects_of("checkout.session")[0]["id"]
    (event,) = state.expire_checkout(session_id)
    body, header = sign_event(event, SECRET)
    assert json.loads(body) == event
    assert stripe.Webhook.construct_event(body, header, SECRET).id == event["id"]
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body, header, "whsec_wrong")
    old_body, old_header = sign_event(event, SECRET, timestamp=int(time.time()) - 3600)
    with pytest.raises(stripe.SignatureVerificationError, match="tolerance"):
        stripe.Webhook.construct_event(old_body, old_header, SECRET)


def test_on_event_sees_every_event_once(client: stripe.StripeClient, state: FakeStripe) -> None:
    seen: list[str] = []
    state.on_event = lambda event: seen.append(event["type"])
    session = client.v1.checkout.sessions.create(params=donation_params())
    state.complete_checkout(session.id)
    client.v1.refunds.create(params={"payment_intent": state.get(session.id)["payment_intent"]})
    assert seen == types(state.events)
    state.on_event = None


def test_hosted_checkout_page_pays_and_redirects(
    client: stripe.StripeClient, raw: httpx.Client, state: FakeStripe
) -> None:
    session = client.v1.checkout.sessions.create(params=donation_params())
    page = raw.get(f"/c/pay/{session.id}")
    assert page.status_code == 200
    assert "Pay" in page.text
    paid = raw.post(f"/c/pay/{session.id}", data={"action": "pay"})
    assert paid.status_code == 303
    assert (
        paid.headers["location"] == f"http://fundgoal.test/donate/demo/thanks?session={session.id}"
    )
    assert types(state.events)[0] == "checkout.session.completed"
    assert raw.get(f"/c/pay/{session.id}").status_code == 410


def test_expanding_a_plain_field_is_refused(client: stripe.StripeClient) -> None:
    session = client.v1.checkout.sessions.create(params=donation_params())
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["metadata"]})
    assert caught.value.param == "expand"


def test_servers_start_and_stop_cleanly() -> None:
    import threading

    before = set(threading.enumerate())
    with run_fake_stripe() as one, run_fake_stripe() as two:
        assert one.port != two.port
    assert set(threading.enumerate()) <= before
