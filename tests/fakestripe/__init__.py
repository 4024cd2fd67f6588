"""A stateful, Stripe-compatible HTTP server for tests (see state.py for the simulation API).

with run_fake_stripe() as server, stripe_client(server) as client:
    session = client.v1.checkout.sessions.create(params={...})
    events = server.state.complete_checkout(session.id)
    body, header = sign_event(events[0], "whsec_test")
"""

from __future__ import annotations

from .runner import FakeStripeServer, run_fake_stripe, stripe_client
from .signing import sign_event
from .state import FakeStripe, FakeStripeError, RecordedRequest

__all__ = [
    "FakeStripe",
    "FakeStripeError",
    "FakeStripeServer",
    "RecordedRequest",
    "run_fake_stripe",
    "sign_event",
    "stripe_client",
]
