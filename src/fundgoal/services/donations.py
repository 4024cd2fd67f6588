"""The donation form's use cases: validate a gift, rate-limit, record the attempt, and say what
became of it on the thank-you page. Services never commit; the web layer owns transactions."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from ..errors import Conflict, NotFound, TooManyRequests
from ..inputs import donation as inputs_donation
from ..inputs.donation import Donation, DonationForm, DonationRules, FormError
from ..models import Campaign, CampaignStatus, DonationAttempt, EntryStatus, LedgerEntry, utcnow
from ..payments import CheckoutRequest
from ..progress import DeadlinePhase, deadline_state
from ..stores import attempts as attempt_store
from ..stores import payments as payment_store

# Enough for a donor who mistypes a few times or tries both frequencies; far too few to use
# our Checkout as a card-testing oracle.
RATE_LIMIT = 10
RATE_WINDOW = timedelta(minutes=10)
__all__ = ["Donation", "DonationForm", "FormError", "validate"]


def closed_reason(campaign: Campaign, now: datetime | None = None) -> str | None:
    """Why the campaign takes no gifts now, or None when it does."""
    if campaign.status == CampaignStatus.ARCHIVED:
        return "This campaign has ended and is archived; it no longer takes donations."
    if campaign.status == CampaignStatus.CLOSED:
        return "This campaign is closed and is not taking donations at the moment."
    if deadline_state(campaign.deadline, now or utcnow()).phase is DeadlinePhase.ENDED:
        return "This campaign's deadline has passed; it no longer takes donations."
    return None


def ensure_open(campaign: Campaign, now: datetime | None = None) -> None:
    reason = closed_reason(campaign, now)
    if reason:
        raise Conflict(reason)


def validate(campaign: Campaign, form: DonationForm, locale: str) -> Donation:
    """The donor's gift checked against the one donation model and this campaign's limits."""
    rules = DonationRules(
        currency=campaign.currency,
        min_amount=campaign.min_amount,
        max_amount=campaign.max_amount,
        presets=tuple(campaign.preset_amounts),
    )
    return inputs_donation.validate(form, rules, locale)


def client_hash(signing_key: str, address: str) -> str:
    """Who is asking, without storing their address: a keyed hash of it."""
    return hmac.new(
        signing_key.encode(), b"donation-client:" + address.encode(), hashlib.sha256
    ).hexdigest()


def check_rate(session: Session, client: str, now: datetime | None = None) -> None:
    moment = now or utcnow()
    if attempt_store.count_since(session, client, moment - RATE_WINDOW) >= RATE_LIMIT:
        minutes = int(RATE_WINDOW.total_seconds() // 60)
        raise TooManyRequests(
            f"Too many donation attempts from your connection; please wait {minutes} minutes "
            "and try again."
        )


def start_attempt(
    session: Session, campaign: Campaign, donation: Donation, *, client: str | None
) -> DonationAttempt:
    assert campaign.id is not None
    return attempt_store.add(
        session,
        DonationAttempt(
            id="att_" + uuid.uuid4().hex,
            campaign_id=campaign.id,
            amount=donation.amount.minor,
            currency=donation.amount.currency,
            frequency=donation.frequency,
            donor_name=donation.name,
            message=donation.message,
            anonymous=donation.anonymous,
            client_hash=client,
        ),
    )


def checkout_request(
    campaign: Campaign, attempt: DonationAttempt, public_url: str
) -> CheckoutRequest:
    assert campaign.id is not None
    return CheckoutRequest(
        attempt_id=attempt.id,
        campaign_id=campaign.id,
        campaign_slug=campaign.slug,
        campaign_title=campaign.title,
        amount=attempt.amount,
        currency=attempt.currency,
        frequency=attempt.frequency,
        public_url=public_url,
    )


def mark_redirected(session: Session, attempt_id: str, checkout_session_id: str) -> None:
    attempt = attempt_store.get(session, attempt_id)
    if attempt is None:
        raise NotFound(f"no donation attempt {attempt_id}")
    attempt.checkout_session_id = checkout_session_id
    if attempt.status == "created":
        attempt.status = "redirected"
    session.add(attempt)
    session.flush()


def mark_failed(session: Session, attempt_id: str) -> None:
    """Checkout could not be opened: the attempt is closed, nothing else was written."""
    attempt = attempt_store.get(session, attempt_id)
    if attempt is not None and attempt.status == "created":
        attempt.status = "failed"
        session.add(attempt)
        session.flush()


@dataclass(frozen=True)
class GiftState:
    """What the thank-you page shows: confirmed, processing, failed or expired."""

    status: str
    attempt: DonationAttempt
    entries: Sequence[LedgerEntry]

    @property
    def confirmed_amount(self) -> int:
        return sum(
            e.amount for e in self.entries if e.status == EntryStatus.SUCCEEDED and not e.flag
        )


def gift_state(session: Session, campaign: Campaign, checkout_session_id: str) -> GiftState:
    attempt = attempt_store.by_checkout_session(session, checkout_session_id)
    if attempt is None or attempt.campaign_id != campaign.id:
        raise NotFound("We do not know this checkout; if you were charged, contact us.")
    entries = payment_store.entries_for_attempt(session, attempt.id)
    statuses = {e.status for e in entries}
    if EntryStatus.SUCCEEDED in statuses:
        status = "confirmed"
    elif EntryStatus.FAILED in statuses:
        status = "failed"
    elif attempt.status == "expired" or EntryStatus.EXPIRED in statuses:
        status = "expired"
    else:
        status = "processing"
    return GiftState(status, attempt, entries)


@dataclass(frozen=True)
class WallItem:
    name: str
    message: str | None
    amount: int
    currency: str
    occurred_at: datetime


def donor_wall(session: Session, campaign: Campaign, limit: int = 10) -> list[WallItem]:
    """Recent counted gifts whose donors gave a name and did not ask to stay anonymous."""
    if not campaign.donor_wall or campaign.id is None:
        return []
    return [
        WallItem(e.donor_name or "", e.message, e.amount, e.currency, e.occurred_at)
        for e in payment_store.wall_entries(session, campaign.id, limit)
    ]
