"""Test-mode payments: a local, clearly labelled checkout that needs no Stripe account.

The gateway hands out Stripe-shaped Checkout Sessions whose URL is our own /test-checkout page.
Its Pay and Fail buttons build the events Stripe would send (same types, same shapes), sign
them with an internal webhook secret derived from the signing key, and deliver them through the
same verification and handler as /webhooks/stripe. Ids derive from the session id, so pressing
Pay twice delivers the same events twice: the second is a duplicate, as it would be on Stripe.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from . import CheckoutRequest, CheckoutSession, ProviderError, StripeDict, attempt_metadata
from .stripe import signature_header

PROVIDER = "testmode"
SESSION_PREFIX = "cs_test_fg"


def webhook_secret(signing_key: str) -> str:
    """The secret the test checkout signs its events with; never configured, never shown."""
    digest = hmac.new(signing_key.encode(), b"fundgoal-testmode-webhook", hashlib.sha256)
    return "whsec_" + digest.hexdigest()


class TestModeGateway:
    """Creates local sessions; has no Stripe objects to fetch or list."""

    __test__ = False  # not a pytest class, whatever its name says

    def __init__(self, public_url: str) -> None:
        self.public_url = public_url

    @property
    def livemode(self) -> bool:
        return False

    def create_checkout_session(self, request: CheckoutRequest) -> CheckoutSession:
        session_id = f"{SESSION_PREFIX}{uuid.uuid4().hex}"
        return CheckoutSession(session_id, f"{self.public_url}/test-checkout/{session_id}")

    def _nothing(self) -> ProviderError:
        return ProviderError("test mode has no Stripe objects", status=502)

    def retrieve_charge(self, charge_id: str) -> StripeDict:
        raise self._nothing()

    def retrieve_payment_intent(self, payment_intent_id: str) -> StripeDict:
        raise self._nothing()

    def invoice_for_payment_intent(self, payment_intent_id: str) -> str | None:
        raise self._nothing()

    def list_objects(self, kind: str, since: datetime) -> Iterator[StripeDict]:
        raise self._nothing()


@dataclass(frozen=True)
class TestCheckout:
    """What the test checkout page knows: our attempt, as Checkout would have it."""

    __test__ = False

    session_id: str
    attempt_id: str
    campaign_id: int
    campaign_slug: str
    amount: int
    currency: str  # upper-case
    frequency: str
    created: int  # unix seconds

    @property
    def suffix(self) -> str:
        return self.session_id.removeprefix(SESSION_PREFIX)[:24]

    @property
    def metadata(self) -> dict[str, str]:
        return attempt_metadata(self.campaign_slug, self.campaign_id, self.attempt_id)


def _event(event_id: str, kind: str, obj: StripeDict, created: int) -> StripeDict:
    return {
        "id": event_id,
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": created,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": kind,
        "data": {"object": obj},
    }


def _session(checkout: TestCheckout, *, paid: bool, email: str) -> StripeDict:
    monthly = checkout.frequency == "monthly"
    s = checkout.suffix
    return {
        "id": checkout.session_id,
        "object": "checkout.session",
        "mode": "subscription" if monthly else "payment",
        "submit_type": None if monthly else "donate",
        "status": "complete",
        "payment_status": "paid" if paid else "unpaid",
        "amount_total": checkout.amount,
        "amount_subtotal": checkout.amount,
        "currency": checkout.currency.lower(),
        "client_reference_id": checkout.attempt_id,
        "metadata": checkout.metadata,
        "customer": f"cus_test_{s}",
        "customer_details": {"email": email, "name": None},
        "payment_intent": None if monthly else f"pi_test_{s}",
        "subscription": f"sub_test_{s}" if monthly else None,
        "invoice": f"in_test_{s}_1" if monthly else None,
        "created": checkout.created,
        "livemode": False,
    }


def _invoice(checkout: TestCheckout, *, paid: bool, email: str, now: int) -> StripeDict:
    s = checkout.suffix
    return {
        "id": f"in_test_{s}_1",
        "object": "invoice",
        "status": "paid" if paid else "open",
        "billing_reason": "subscription_create",
        "currency": checkout.currency.lower(),
        "amount_due": checkout.amount,
        "amount_paid": checkout.amount if paid else 0,
        "amount_remaining": 0 if paid else checkout.amount,
        "customer": f"cus_test_{s}",
        "customer_email": email,
        "parent": {
            "type": "subscription_details",
            "subscription_details": {
                "subscription": f"sub_test_{s}",
                "metadata": checkout.metadata,
            },
        },
        "status_transitions": {"paid_at": now if paid else None},
        "created": now,
        "livemode": False,
    }


def events_for(checkout: TestCheckout, *, paid: bool, now: int, email: str) -> list[StripeDict]:
    """The events Stripe sends when this checkout is paid (or when its payment fails)."""
    s = checkout.suffix
    outcome = "paid" if paid else "failed"
    if checkout.frequency == "monthly":
        events = []
        if paid:
            events.append(
                _event(
                    f"evt_test_{s}_completed",
                    "checkout.session.completed",
                    _session(checkout, paid=True, email=email),
                    now,
                )
            )
        events.append(
            _event(
                f"evt_test_{s}_invoice_{outcome}",
                "invoice.paid" if paid else "invoice.payment_failed",
                _invoice(checkout, paid=paid, email=email, now=now),
                now,
            )
        )
        return events
    if paid:
        return [
            _event(
                f"evt_test_{s}_completed",
                "checkout.session.completed",
                _session(checkout, paid=True, email=email),
                now,
            )
        ]
    # An asynchronous method that fails: Checkout completes unpaid, then the payment fails.
    return [
        _event(
            f"evt_test_{s}_completed_unpaid",
            "checkout.session.completed",
            _session(checkout, paid=False, email=email),
            now,
        ),
        _event(
            f"evt_test_{s}_async_failed",
            "checkout.session.async_payment_failed",
            _session(checkout, paid=False, email=email),
            now,
        ),
    ]


def sign(event: StripeDict, secret: str, timestamp: int | None = None) -> tuple[bytes, str]:
    """(body, Stripe-Signature header), as Stripe would deliver the event."""
    body = json.dumps(event, separators=(",", ":"))
    return body.encode(), signature_header(body, secret, timestamp)
