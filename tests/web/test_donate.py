"""The donation form, Checkout Session creation against the fake Stripe, thanks and test mode."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date, timedelta

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session, col
from starlette.testclient import TestClient

from fundgoal import db
from fundgoal.config import Settings
from fundgoal.models import CampaignStatus, DonationAttempt, LedgerEntry
from fundgoal.services import campaigns as campaign_service
from fundgoal.services.demo import seed_demo
from fundgoal.web.app import create_app
from tests.fakestripe import FakeStripeServer
from tests.stripe_support import campaign, csrf, deliver_all, donate, raised


def attempts(engine: Engine) -> list[DonationAttempt]:
    with Session(engine) as session:
        return list(
            session.scalars(select(DonationAttempt).order_by(col(DonationAttempt.created_at)))
        )


def test_form_shows_progress_presets_and_a_csrf_cookie(
    stripe_client: TestClient, engine: Engine
) -> None:
    campaign(engine, "spring")
    page = stripe_client.get("/donate/spring")
    assert page.status_code == 200
    assert 'role="progressbar"' in page.text
    assert "$2,500" in page.text
    assert "$5,000" in page.text
    for preset in ("$10", "$25", "$50", "$100"):
        assert preset in page.text
    assert 'name="frequency" value="monthly"' in page.text
    assert 'name="anonymous"' in page.text
    assert "fundgoal_csrf" in page.headers["set-cookie"]
    assert "<script" not in page.text  # works without JavaScript


def test_unknown_campaign_is_404(stripe_client: TestClient) -> None:
    assert stripe_client.get("/donate/nope").status_code == 404


def test_one_time_checkout_session_parameters(
    stripe_client: TestClient, engine: Engine, fake_stripe: FakeStripeServer
) -> None:
    c = campaign(engine, "spring")
    status, location, session_id = donate(stripe_client, "spring", "1,000.50", name="Ada")
    assert status == 303
    assert location.startswith(fake_stripe.base_url + "/c/pay/")
    [request] = fake_stripe.state.requests_to("/v1/checkout/sessions", "POST")
    params = request.params
    [attempt] = attempts(engine)
    assert params["mode"] == "payment"
    assert params["submit_type"] == "donate"
    item = (
        params["line_items"]["0"]
        if isinstance(params["line_items"], dict)
        else params["line_items"][0]
    )
    assert item["price_data"]["unit_amount"] == "100050"
    assert item["price_data"]["currency"] == "usd"
    assert "recurring" not in item["price_data"]
    assert params["metadata"] == {
        "campaign": "spring",
        "campaign_id": str(c.id),
        "attempt": attempt.id,
    }
    assert params["payment_intent_data"]["metadata"]["attempt"] == attempt.id
    assert params["client_reference_id"] == attempt.id
    assert params["success_url"] == (
        "http://testserver/donate/spring/thanks?session_id={CHECKOUT_SESSION_ID}"
    )
    assert params["cancel_url"] == "http://testserver/donate/spring?cancelled=1"
    assert request.idempotency_key == attempt.id
    assert attempt.status == "redirected"
    assert attempt.checkout_session_id == session_id
    assert attempt.amount == 100050
    assert attempt.donor_name == "Ada"


def test_monthly_checkout_is_a_subscription(
    stripe_client: TestClient, engine: Engine, fake_stripe: FakeStripeServer
) -> None:
    campaign(engine, "spring")
    status, _, _ = donate(stripe_client, "spring", "15", frequency="monthly")
    assert status == 303
    [request] = fake_stripe.state.requests_to("/v1/checkout/sessions", "POST")
    params = request.params
    item = (
        params["line_items"]["0"]
        if isinstance(params["line_items"], dict)
        else params["line_items"][0]
    )
    assert params["mode"] == "subscription"
    assert "submit_type" not in params
    assert item["price_data"]["recurring"]["interval"] == "month"
    assert item["price_data"]["unit_amount"] == "1500"
    assert params["subscription_data"]["metadata"]["campaign"] == "spring"


def test_zero_decimal_currency_sends_whole_yen(
    stripe_client: TestClient, engine: Engine, fake_stripe: FakeStripeServer
) -> None:
    campaign(engine, "tokyo", currency="JPY")
    status, _, _ = donate(stripe_client, "tokyo", "3000")
    assert status == 303
    [request] = fake_stripe.state.requests_to("/v1/checkout/sessions", "POST")
    item = request.params["line_items"]
    item = item["0"] if isinstance(item, dict) else item[0]
    assert item["price_data"]["unit_amount"] == "3000"
    assert item["price_data"]["currency"] == "jpy"
    status, body, _ = donate(stripe_client, "tokyo", "3000.5")
    assert status == 400
    assert "whole units" in body


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("", "Choose an amount"),
        ("abc", "is not an amount"),
        ("-5", "more than zero"),
        ("0", "more than zero"),
        ("0.50", "The smallest gift is $1"),
        ("1.234", "at most 2 decimal places"),
        ("20000", "at most $10,000"),
        ("1e9999", "not an amount"),
    ],
)
def test_bad_amounts_rerender_the_form_with_a_message(
    stripe_client: TestClient,
    engine: Engine,
    fake_stripe: FakeStripeServer,
    amount: str,
    message: str,
) -> None:
    campaign(engine, "spring")
    status, body, _ = donate(stripe_client, "spring", amount)
    assert status == 400
    assert message in body.replace("&#39;", "'")
    assert 'aria-invalid="true"' in body or "Choose an amount" in body
    assert fake_stripe.state.requests_to("/v1/checkout/sessions") == []
    assert attempts(engine) == []


def test_amounts_parse_in_the_page_locale(
    stripe_client: TestClient, engine: Engine, fake_stripe: FakeStripeServer
) -> None:
    campaign(engine, "spring")
    status, _, _ = donate(stripe_client, "spring", "1 000,5", locale="fr")
    assert status == 303
    assert attempts(engine)[0].amount == 100050


def test_presets_and_bad_frequency(stripe_client: TestClient, engine: Engine) -> None:
    campaign(engine, "spring")
    token = csrf(stripe_client, "/donate/spring")
    ok = stripe_client.post(
        "/donate/spring",
        data={"csrf_token": token, "preset": "2500", "frequency": "once"},
        follow_redirects=False,
    )
    assert ok.status_code == 303
    assert attempts(engine)[0].amount == 2500
    forged = stripe_client.post(
        "/donate/spring", data={"csrf_token": token, "preset": "2499"}, follow_redirects=False
    )
    assert forged.status_code == 400
    weekly = stripe_client.post(
        "/donate/spring",
        data={"csrf_token": token, "amount": "5", "frequency": "weekly"},
        follow_redirects=False,
    )
    assert weekly.status_code == 400
    assert "one-time or a monthly" in weekly.text


def test_csrf_is_required(stripe_client: TestClient, engine: Engine) -> None:
    campaign(engine, "spring")
    no_token = stripe_client.post("/donate/spring", data={"amount": "5"}, follow_redirects=False)
    assert no_token.status_code == 403
    token = csrf(stripe_client, "/donate/spring")
    stripe_client.cookies.clear()
    no_cookie = stripe_client.post(
        "/donate/spring", data={"csrf_token": token, "amount": "5"}, follow_redirects=False
    )
    assert no_cookie.status_code == 403
    forged = "abc." + "0" * 64
    stripe_client.cookies.set("fundgoal_csrf", forged)
    mismatch = stripe_client.post(
        "/donate/spring", data={"csrf_token": forged, "amount": "5"}, follow_redirects=False
    )
    assert mismatch.status_code == 403
    assert attempts(engine) == []


@pytest.mark.parametrize("state", ["closed", "archived", "past_deadline"])
def test_closed_campaigns_take_no_payment(
    stripe_client: TestClient, engine: Engine, fake_stripe: FakeStripeServer, state: str
) -> None:
    campaign(engine, "spring")
    token = csrf(stripe_client, "/donate/spring")
    with db.transaction(engine) as session:
        if state == "past_deadline":
            row = campaign_service.get(session, "spring")
            row.deadline = date.today() - timedelta(days=2)
            session.add(row)
        else:
            campaign_service.set_status(session, "spring", CampaignStatus(state), actor="test")
    page = stripe_client.get("/donate/spring")
    assert page.status_code == 200
    assert "no longer takes donations" in page.text or "not taking donations" in page.text
    assert 'name="amount"' not in page.text
    answer = stripe_client.post(
        "/donate/spring", data={"csrf_token": token, "amount": "5"}, follow_redirects=False
    )
    assert answer.status_code == 409
    assert fake_stripe.state.requests_to("/v1/checkout/sessions") == []


def test_rate_limit_per_address(
    stripe_client: TestClient, engine: Engine, fake_stripe: FakeStripeServer
) -> None:
    campaign(engine, "spring")
    for _ in range(10):
        assert donate(stripe_client, "spring", "5")[0] == 303
    status, body, _ = donate(stripe_client, "spring", "5")
    assert status == 429
    assert "Too many donation attempts" in body
    assert len(fake_stripe.state.requests_to("/v1/checkout/sessions", "POST")) == 10


@pytest.mark.parametrize(("fault", "expected"), [(500, 502), (429, 503), ("timeout", 503)])
def test_checkout_failures_show_a_retry_page(
    stripe_client: TestClient,
    engine: Engine,
    fake_stripe: FakeStripeServer,
    fault: int | str,
    expected: int,
) -> None:
    campaign(engine, "spring")
    if fault == "timeout":
        fake_stripe.state.delay_next("/v1/checkout/sessions", 5.0)
    else:
        assert isinstance(fault, int)
        fake_stripe.state.fail_next("/v1/checkout/sessions", fault)
    status, body, _ = donate(stripe_client, "spring", "25")
    assert status == expected
    assert "Try again" in body
    assert "No payment was taken" in body
    assert "sk_test" not in body
    [attempt] = attempts(engine)
    assert attempt.status == "failed"
    assert attempt.checkout_session_id is None
    # No orphan state: no ledger entry, nothing counted.
    with Session(engine) as s:
        assert s.scalars(select(LedgerEntry)).all() == []
    assert raised(engine, "spring") == (0, 0)
    # The next try works.
    assert donate(stripe_client, "spring", "25")[0] == 303


def test_cancelled_checkout_says_so(stripe_client: TestClient, engine: Engine) -> None:
    campaign(engine, "spring")
    page = stripe_client.get("/donate/spring?cancelled=1")
    assert "no payment was taken" in page.text


def test_end_to_end_form_checkout_webhook_progress(
    stripe_client: TestClient, engine: Engine, fake_stripe: FakeStripeServer
) -> None:
    campaign(engine, "spring")
    status, _, session_id = donate(stripe_client, "spring", "42", name="Grace", message="Go!")
    assert status == 303
    thanks = stripe_client.get(f"/donate/spring/thanks?session_id={session_id}")
    assert thanks.status_code == 200
    assert "Processing" in thanks.text
    assert '<meta http-equiv="refresh" content="5">' in thanks.text
    events = fake_stripe.state.complete_checkout(session_id, email="grace@example.org")
    deliver_all(stripe_client, events)
    progress = stripe_client.get("/api/campaigns/spring").json()
    assert progress["raised"] == 4200
    assert progress["donors"] == 1
    thanks = stripe_client.get(f"/donate/spring/thanks?session_id={session_id}")
    assert "is confirmed" in thanks.text
    assert "$42" in thanks.text
    assert "refresh" not in thanks.text
    page = stripe_client.get("/donate/spring")
    assert "Grace" in page.text
    assert "Go!" in page.text
    assert raised(engine, "spring") == (4200, 1)


def test_anonymous_gifts_stay_off_the_wall(
    stripe_client: TestClient, engine: Engine, fake_stripe: FakeStripeServer
) -> None:
    campaign(engine, "spring")
    _, _, session_id = donate(stripe_client, "spring", "42", name="Hidden", anonymous="1")
    deliver_all(stripe_client, fake_stripe.state.complete_checkout(session_id))
    assert raised(engine, "spring") == (4200, 1)
    assert "Hidden" not in stripe_client.get("/donate/spring").text


def test_thanks_for_an_unknown_session_is_404(stripe_client: TestClient, engine: Engine) -> None:
    campaign(engine, "spring")
    assert stripe_client.get("/donate/spring/thanks?session_id=cs_nope").status_code == 404
    assert stripe_client.get("/donate/spring/thanks").status_code == 404


def test_test_mode_end_to_end_with_default_settings(settings: Settings, engine: Engine) -> None:
    assert settings.test_mode_payments
    with db.transaction(engine) as session:
        seed_demo(session)
    before = raised(engine, "demo")
    with TestClient(create_app(settings, engine=engine)) as client:
        page = client.get("/donate/demo")
        assert "Test mode" in page.text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token
        answer = client.post(
            "/donate/demo",
            data={"csrf_token": token.group(1), "amount": "25", "frequency": "once"},
            follow_redirects=False,
        )
        assert answer.status_code == 303
        checkout_url = answer.headers["location"]
        assert checkout_url.startswith("http://testserver/test-checkout/cs_test_")
        checkout = client.get(checkout_url)
        assert "TEST MODE" in checkout.text
        paid = client.post(
            checkout_url,
            data={"csrf_token": token.group(1), "action": "pay"},
            follow_redirects=False,
        )
        assert paid.status_code == 303
        thanks = client.get(paid.headers["location"])
        assert "is confirmed" in thanks.text
        # Pressing Pay again delivers the same events: duplicates, nothing counted twice.
        client.post(checkout_url, data={"csrf_token": token.group(1), "action": "pay"})
        assert client.get("/api/campaigns/demo").json()["raised"] == before[0] + 2500
        # Monthly, then a failing one-time payment.
        answer = client.post(
            "/donate/demo",
            data={"csrf_token": token.group(1), "amount": "10", "frequency": "monthly"},
            follow_redirects=False,
        )
        client.post(
            answer.headers["location"], data={"csrf_token": token.group(1), "action": "pay"}
        )
        answer = client.post(
            "/donate/demo",
            data={"csrf_token": token.group(1), "amount": "99", "frequency": "once"},
            follow_redirects=False,
        )
        failed = client.post(
            answer.headers["location"],
            data={"csrf_token": token.group(1), "action": "fail"},
        )
        assert "did not go through" in failed.text
        # The test checkout refuses a forged form.
        forged = client.post(answer.headers["location"], data={"action": "pay"})
        assert forged.status_code == 403
    assert raised(engine, "demo") == (before[0] + 3500, before[1] + 2)


def test_test_checkout_is_absent_with_a_stripe_key(
    stripe_client: TestClient, engine: Engine
) -> None:
    assert stripe_client.get("/test-checkout/cs_test_fgabc").status_code == 404


def test_test_mode_webhook_endpoint_stays_disabled(settings: Settings, engine: Engine) -> None:
    with TestClient(create_app(replace(settings), engine=engine)) as client:
        answer = client.post("/webhooks/stripe", content=b"{}")
    assert answer.status_code == 404
    assert "STRIPE_WEBHOOK_SECRET" in answer.json()["message"]
