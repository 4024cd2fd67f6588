"""Sign a fake event the way Stripe signs webhook deliveries."""

from __future__ import annotations

import json
from typing import Any

import stripe


def sign_event(
    event: dict[str, Any], secret: str, timestamp: int | None = None
) -> tuple[bytes, str]:
    """`(body, Stripe-Signature header)` for posting `event` to a webhook endpoint.

    The body is pretty-printed like Stripe's deliveries, so an endpoint that re-serialises the
    JSON instead of verifying the raw bytes fails here as it would in production. The header
    comes from the library's own `generate_signature_header`, so it is exactly what
    `stripe.Webhook.construct_event` checks. Pass an old `timestamp` to test the tolerance.
    """
    body = json.dumps(event, indent=2).encode()
    header = stripe.WebhookSignature.generate_signature_header(body.decode(), secret, timestamp)
    return body, header
