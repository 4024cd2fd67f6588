"""Payment providers behind one small interface: real Stripe (stripe.py) and the local test
checkout (testmode.py). Services depend on `Gateway`, never on the `stripe` library."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from ..errors import DomainError, Invalid

StripeDict = dict[str, Any]

# The object kinds `fundgoal stripe reconcile` walks, in the order it applies them: payments
# first, so refunds and disputes find their gifts.
RECONCILE_KINDS = ("checkout_sessions", "invoices", "refunds", "disputes")


class ProviderError(DomainError):
    """The provider failed or refused (network, timeout, rate limit, outage): try again later.

    The message is safe to show and to log: it never carries a key or a request body."""

    status = 503
    code = "provider_unavailable"

    def __init__(self, message: str, *, status: int = 503) -> None:
        super().__init__(message)
        self.status = status


class SignatureError(Invalid):
    """A webhook whose signature is missing, forged or too old."""


class PayloadError(Invalid):
    """A signed webhook body that is not a Stripe event."""


def attempt_metadata(campaign_slug: str, campaign_id: int, attempt_id: str) -> dict[str, str]:
    """The metadata every Checkout object carries back to us (webhooks read these keys)."""
    return {"campaign": campaign_slug, "campaign_id": str(campaign_id), "attempt": attempt_id}


@dataclass(frozen=True)
class CheckoutRequest:
    attempt_id: str
    campaign_id: int
    campaign_slug: str
    campaign_title: str
    amount: int  # minor units, validated against the campaign's bounds
    currency: str  # upper-case ISO code
    frequency: str  # once | monthly
    public_url: str  # settings.public_url: redirects are never built from request headers

    @property
    def success_url(self) -> str:
        # {CHECKOUT_SESSION_ID} is Stripe's template, filled in by Checkout itself.
        base = f"{self.public_url}/donate/{self.campaign_slug}/thanks"
        return base + "?session_id={CHECKOUT_SESSION_ID}"

    @property
    def cancel_url(self) -> str:
        return f"{self.public_url}/donate/{self.campaign_slug}?cancelled=1"

    @property
    def metadata(self) -> dict[str, str]:
        return attempt_metadata(self.campaign_slug, self.campaign_id, self.attempt_id)


@dataclass(frozen=True)
class CheckoutSession:
    id: str
    url: str


class Gateway(Protocol):
    """What fundgoal asks of a payment provider."""

    @property
    def livemode(self) -> bool: ...

    def create_checkout_session(self, request: CheckoutRequest) -> CheckoutSession: ...

    def retrieve_charge(self, charge_id: str) -> StripeDict: ...

    def retrieve_payment_intent(self, payment_intent_id: str) -> StripeDict: ...

    def invoice_for_payment_intent(self, payment_intent_id: str) -> str | None: ...

    def list_objects(self, kind: str, since: datetime) -> Iterator[StripeDict]: ...
