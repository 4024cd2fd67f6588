"""Stripe, through the official library: the only module in fundgoal that imports `stripe`.

Everything crossing this boundary is a plain dict shaped like Stripe's JSON (webhook payloads,
retrieved and listed objects), so the translation into ledger facts works the same on a
webhook, on a fetched object and on reconcile's lists. Errors leave as ProviderError with a
message fit for a log line: never the key, never a request body.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any, cast

import stripe
from stripe.params.checkout import SessionCreateParams

from ..config import Settings
from . import (
    CheckoutRequest,
    CheckoutSession,
    PayloadError,
    ProviderError,
    SignatureError,
    StripeDict,
)

log = logging.getLogger("fundgoal.payments.stripe")

# Checkout creation sits in front of a waiting donor: fail fast enough to show the retry page
# while they are still looking. Idempotency keys make the library's retries safe.
TIMEOUT_SECONDS = 15.0
NETWORK_RETRIES = 2


def checkout_params(request: CheckoutRequest) -> SessionCreateParams:
    """The Checkout Session we ask for: one line item priced inline at the validated amount."""
    price_data: dict[str, Any] = {
        "currency": request.currency.lower(),
        "unit_amount": request.amount,
        "product_data": {"name": f"Donation to {request.campaign_title}"[:250]},
    }
    params: dict[str, Any] = {
        "line_items": [{"quantity": 1, "price_data": price_data}],
        "metadata": request.metadata,
        "client_reference_id": request.attempt_id,
        "success_url": request.success_url,
        "cancel_url": request.cancel_url,
    }
    if request.frequency == "monthly":
        price_data["recurring"] = {"interval": "month"}
        params["mode"] = "subscription"
        params["subscription_data"] = {"metadata": request.metadata}
    else:
        params["mode"] = "payment"
        params["submit_type"] = "donate"
        params["payment_intent_data"] = {"metadata": request.metadata}
    return cast(SessionCreateParams, params)


def _provider_error(exc: stripe.StripeError, doing: str) -> ProviderError:
    """A safe, loggable error: the class, HTTP status and Stripe's request id, never a secret."""
    request_id = getattr(exc, "request_id", None) or "-"
    kind = type(exc).__name__
    log.warning(
        "stripe %s failed: %s status=%s request_id=%s", doing, kind, exc.http_status, request_id
    )
    if isinstance(exc, stripe.RateLimitError):
        return ProviderError("Stripe is busy right now; please try again in a minute.", status=503)
    if isinstance(exc, stripe.APIConnectionError):
        return ProviderError("We could not reach Stripe; please try again.", status=503)
    return ProviderError(
        "The payment service answered with an error; please try again.", status=502
    )


class StripeGateway:
    def __init__(
        self,
        settings: Settings,
        *,
        timeout: float = TIMEOUT_SECONDS,
        retries: int = NETWORK_RETRIES,
    ) -> None:
        key = settings.stripe_secret_key.reveal()
        self._livemode = key.startswith(("sk_live_", "rk_live_"))
        self.client = stripe.StripeClient(
            key,
            base_addresses={"api": settings.stripe_api_base},
            # The library's own requests-based client: timeouts, connection reuse, and its
            # retry logic classifies network failures for us.
            http_client=stripe.RequestsClient(timeout=timeout),
            max_network_retries=retries,
        )

    @property
    def livemode(self) -> bool:
        return self._livemode

    def create_checkout_session(self, request: CheckoutRequest) -> CheckoutSession:
        try:
            session = self.client.v1.checkout.sessions.create(
                params=checkout_params(request),
                # One attempt, one session: a retried request returns the first session.
                options={"idempotency_key": request.attempt_id},
            )
        except stripe.StripeError as exc:
            raise _provider_error(exc, "checkout session creation") from None
        if not session.url:
            raise ProviderError("Stripe returned a checkout session without a URL.", status=502)
        return CheckoutSession(id=session.id, url=session.url)

    def retrieve_charge(self, charge_id: str) -> StripeDict:
        try:
            return self.client.v1.charges.retrieve(charge_id).to_dict()
        except stripe.StripeError as exc:
            raise _provider_error(exc, "charge retrieval") from None

    def retrieve_payment_intent(self, payment_intent_id: str) -> StripeDict:
        try:
            return self.client.v1.payment_intents.retrieve(
                payment_intent_id, params={"expand": ["latest_charge"]}
            ).to_dict()
        except stripe.StripeError as exc:
            raise _provider_error(exc, "payment intent retrieval") from None

    def invoice_for_payment_intent(self, payment_intent_id: str) -> str | None:
        """The invoice a subscription payment belongs to (PaymentIntents no longer say)."""
        try:
            page = self.client.v1.invoice_payments.list(
                params={
                    "payment": {"type": "payment_intent", "payment_intent": payment_intent_id},
                    "limit": 1,
                }
            )
        except stripe.StripeError as exc:
            raise _provider_error(exc, "invoice payment lookup") from None
        for payment in page.data:
            invoice = payment.invoice
            return invoice if isinstance(invoice, str) else invoice.id
        return None

    def list_objects(self, kind: str, since: datetime) -> Iterator[StripeDict]:
        gte = int(since.timestamp())
        v1 = self.client.v1
        try:
            if kind == "checkout_sessions":
                pages: Any = v1.checkout.sessions.list(
                    params={"created": {"gte": gte}, "limit": 100}
                )
            elif kind == "invoices":
                pages = v1.invoices.list(params={"created": {"gte": gte}, "limit": 100})
            elif kind == "refunds":
                pages = v1.refunds.list(params={"created": {"gte": gte}, "limit": 100})
            elif kind == "disputes":
                pages = v1.disputes.list(params={"created": {"gte": gte}, "limit": 100})
            else:
                raise ValueError(f"unknown object kind {kind!r}")
            for item in pages.auto_paging_iter():
                yield item.to_dict()
        except stripe.StripeError as exc:
            raise _provider_error(exc, f"listing {kind}") from None


# Clock skew allowed between Stripe and us, the same as the library's tolerance for the past.
FUTURE_SKEW = 300


def verify_event(payload: bytes, signature_header: str | None, secret: str) -> StripeDict:
    """The event in a webhook body, after checking its signature and age (the library's default
    tolerance). Raises SignatureError or PayloadError."""
    if not signature_header:
        raise SignatureError("missing Stripe-Signature header")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise PayloadError("the body is not UTF-8") from None
    try:
        # The library's own check (what Webhook.construct_event does first), then plain JSON:
        # construct_event would also build a StripeObject tree that we only turned back into
        # dicts, about a sixth of a webhook's CPU under load (bench/webhooks.py, py-spy).
        stripe.WebhookSignature.verify_header(
            text, signature_header, secret, stripe.Webhook.DEFAULT_TOLERANCE
        )
    except stripe.SignatureVerificationError:
        raise SignatureError("the Stripe-Signature header does not match this body") from None
    try:
        values = json.loads(text)
    except ValueError:
        raise PayloadError("the body is not a Stripe event") from None
    if not isinstance(values, dict):
        raise PayloadError("the body is not a Stripe event")
    # The library refuses old timestamps only. Stripe signs with its current time, so one far
    # ahead is not Stripe's: refuse it too, or a delivery signed ahead would replay for as long.
    stamps = [p.strip()[2:] for p in signature_header.split(",") if p.strip().startswith("t=")]
    if any(not s.strip().isdigit() or int(s) > time.time() + FUTURE_SKEW for s in stamps):
        raise SignatureError("the Stripe-Signature timestamp is in the future")
    if not isinstance(values.get("id"), str) or not isinstance(values.get("type"), str):
        raise PayloadError("the event has no id or type")
    if not isinstance(values.get("data"), dict) or not isinstance(
        values["data"].get("object"), dict
    ):
        raise PayloadError("the event has no data.object")
    return values


def signature_header(payload: str, secret: str, timestamp: int | None = None) -> str:
    """A Stripe-Signature header for a body (the test checkout signs what it delivers)."""
    return str(stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp))
