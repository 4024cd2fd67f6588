"""Stripe's events and objects, translated into ledger facts and applied once.

A webhook goes: signature check (payments.stripe.verify_event), livemode check, then one
translation of the event, then one transaction that claims its id in processed_event (insert
with on-conflict-do-nothing: a duplicate stops there), applies the facts to the ledger and
commits.
The caller answers 2xx only after that commit, and 5xx on any exception so Stripe retries.

Translation reads the event's object and, where it lacks what the ledger needs (a refund names
only its charge; a charge may carry no metadata), fetches the current object from Stripe. It
runs before the claim, in a read-only session, so that no database write lock is held while
Stripe is asked (SQLite has one lock for the whole file); facts are absolute state, so nothing
read before the claim can make a later apply wrong.

`fundgoal stripe reconcile` lists the same objects and sends them through the same translation,
so a missed webhook and a replayed one converge on the same ledger.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from .. import db, ledger
from ..models import Campaign, DonationAttempt, EntryKind, EntryStatus, utcnow
from ..payments import RECONCILE_KINDS, Gateway, ProviderError, StripeDict
from ..stores import attempts as attempt_store
from ..stores import campaigns as campaign_store
from ..stores import payments as payment_store

log = logging.getLogger("fundgoal.stripe_events")

TAMPERED = "amount differs from the attempt"

SESSION_EVENTS = {
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "checkout.session.expired",
}
INVOICE_EVENTS = {"invoice.paid", "invoice.payment_failed"}
REFUND_EVENTS = {"refund.created", "refund.updated"}
DISPUTE_EVENTS = {
    "charge.dispute.created",
    "charge.dispute.updated",
    "charge.dispute.closed",
    "charge.dispute.funds_withdrawn",
    "charge.dispute.funds_reinstated",
}
HANDLED = (
    SESSION_EVENTS
    | INVOICE_EVENTS
    | REFUND_EVENTS
    | DISPUTE_EVENTS
    | {"charge.refunded", "customer.subscription.deleted"}
)

# Attempt statuses only move forward, whatever order events arrive in.
_ATTEMPT_RANK = {"created": 0, "failed": 1, "redirected": 1, "expired": 2, "completed": 3}


@dataclass(frozen=True)
class AttemptUpdate:
    attempt_id: str
    status: str | None = None
    subscription_id: str | None = None
    ended_at: datetime | None = None


@dataclass
class Translation:
    """What one event or object means: facts for the ledger and marks on our attempts.

    outcome: "applied" (facts and marks to write), "ignored" (not ours, or nothing to do),
    "unresolved" (ours but not placeable now: logged, recorded, retried by reconcile)."""

    facts: list[ledger.Fact] = field(default_factory=list)
    updates: list[AttemptUpdate] = field(default_factory=list)
    outcome: str = "applied"
    detail: str | None = None


@dataclass(frozen=True)
class Outcome:
    status: str  # processed | duplicate | ignored | unresolved
    changed: bool = False  # a campaign total (or an entry) moved: snapshots must refresh
    detail: str | None = None
    kind: str = "other"  # the event type when we handle it (a bounded metrics label)


def _ignored(detail: str) -> Translation:
    return Translation(outcome="ignored", detail=detail)


def _unresolved(detail: str) -> Translation:
    return Translation(outcome="unresolved", detail=detail)


def _id(value: Any) -> str | None:
    """An expandable field: Stripe sends either the id or the whole object."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, dict):
        found = value.get("id")
        return found if isinstance(found, str) else None
    return None


def _dict(value: Any) -> StripeDict:
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _time(value: Any) -> datetime | None:
    seconds = _int(value)
    return datetime.fromtimestamp(seconds, UTC) if seconds else None


def _currency(value: Any) -> str | None:
    return value.upper() if isinstance(value, str) and len(value) == 3 else None


def _ours(metadata: StripeDict) -> bool:
    return any(k in metadata for k in ("campaign", "campaign_id", "attempt"))


@dataclass(frozen=True)
class _Placement:
    campaign_id: int
    attempt: DonationAttempt | None


class Translator:
    """Turns Stripe objects into facts, reading our rows and asking Stripe when it must."""

    def __init__(self, session: Session, gateway: Gateway, provider: str) -> None:
        self.session = session
        self.gateway = gateway
        self.provider = provider

    # -- entry points -------------------------------------------------------------------

    def event(self, event: StripeDict) -> Translation:
        kind = str(event["type"])
        obj = _dict(_dict(event.get("data")).get("object"))
        if kind in SESSION_EVENTS:
            return self.checkout_session(obj, kind)
        if kind in INVOICE_EVENTS:
            return self.invoice(obj, paid=kind == "invoice.paid")
        if kind == "charge.refunded":
            return self.charge(obj)
        if kind in REFUND_EVENTS:
            return self.refund(obj)
        if kind in DISPUTE_EVENTS:
            return self.dispute(obj)
        if kind == "customer.subscription.deleted":
            return self.subscription_ended(obj)
        return _ignored(f"event type {kind} is not used")

    def reconciled(self, kind: str, obj: StripeDict) -> Translation:
        """An object from reconcile's lists, read as the event its current state implies."""
        if kind == "checkout_sessions":
            status = obj.get("status")
            if status == "complete":
                return self.checkout_session(obj, "checkout.session.completed")
            if status == "expired":
                return self.checkout_session(obj, "checkout.session.expired")
            return _ignored("checkout session still open")
        if kind == "invoices":
            status = obj.get("status")
            if status == "paid":
                return self.invoice(obj, paid=True)
            if status in {"uncollectible", "void"}:
                return self.invoice(obj, paid=False)
            return _ignored(f"invoice {status}")
        if kind == "refunds":
            return self.refund(obj)
        if kind == "disputes":
            return self.dispute(obj)
        raise ValueError(f"unknown object kind {kind!r}")

    # -- placing a gift in a campaign ----------------------------------------------------

    def _place(self, metadata: StripeDict) -> _Placement | str:
        """The campaign (and our attempt) named by metadata, or why it cannot be placed."""
        attempt_id = metadata.get("attempt")
        attempt = (
            attempt_store.get(self.session, attempt_id)
            if isinstance(attempt_id, str) and attempt_id
            else None
        )
        if attempt is not None:
            return _Placement(attempt.campaign_id, attempt)
        slug = metadata.get("campaign")
        raw_id = metadata.get("campaign_id")
        campaign: Campaign | None = None
        if isinstance(raw_id, str) and raw_id.isdigit():
            campaign = campaign_store.by_id(self.session, int(raw_id))
            if campaign is not None and isinstance(slug, str) and campaign.slug != slug:
                campaign = None
        if campaign is None and isinstance(slug, str) and slug:
            campaign = campaign_store.by_slug(self.session, slug)
        if campaign is None or campaign.id is None:
            return f"unknown campaign {str(slug or raw_id)[:64]!r} in metadata"
        return _Placement(campaign.id, None)

    def _tampered(
        self, attempt: DonationAttempt | None, amount: int | None, currency: str | None
    ) -> str | None:
        if attempt is None or amount is None:
            return None
        if amount != attempt.amount or (currency or "") != attempt.currency:
            return TAMPERED
        return None

    def _donor(self, attempt: DonationAttempt | None) -> dict[str, Any]:
        if attempt is None:
            return {}
        return {
            "attempt_id": attempt.id,
            "donor_name": attempt.donor_name,
            "message": attempt.message,
            "anonymous": attempt.anonymous,
            "checkout_session_id": attempt.checkout_session_id,
        }

    # -- Checkout Sessions ---------------------------------------------------------------

    def checkout_session(self, cs: StripeDict, kind: str) -> Translation:
        metadata = _dict(cs.get("metadata"))
        if not _ours(metadata):
            return _ignored("checkout session without fundgoal metadata")
        placed = self._place(metadata)
        if isinstance(placed, str):
            return _unresolved(placed)
        attempt = placed.attempt
        session_id = _id(cs.get("id"))
        result = Translation()
        expired = kind == "checkout.session.expired"
        if attempt is not None:
            result.updates.append(
                AttemptUpdate(
                    attempt.id,
                    status="expired" if expired else "completed",
                    subscription_id=_id(cs.get("subscription")),
                )
            )
        if cs.get("mode") == "subscription":
            # The money of a monthly gift comes from its invoices, one entry each; the session
            # only ties the subscription to our attempt (and so to the donor's name and note).
            return result
        payment_intent = _id(cs.get("payment_intent"))
        if expired and payment_intent is None:
            return result  # nothing was ever charged: no gift to record
        currency = _currency(cs.get("currency"))
        amount = _int(cs.get("amount_total"))
        if kind == "checkout.session.async_payment_failed":
            status = EntryStatus.FAILED
        elif expired:
            status = EntryStatus.EXPIRED
        elif cs.get("payment_status") == "paid":
            status = EntryStatus.SUCCEEDED
        else:
            status = EntryStatus.PENDING  # async methods: the money is not there yet
        details = _dict(cs.get("customer_details"))
        email = details.get("email") if isinstance(details.get("email"), str) else None
        customer = _id(cs.get("customer"))
        result.facts.append(
            ledger.Fact(
                provider=self.provider,
                ref=payment_intent or str(session_id),
                campaign_id=placed.campaign_id,
                kind=EntryKind.ONE_TIME.value,
                source="stripe",
                currency=currency,
                amount=amount,
                status=status.value,
                donor_key=ledger.donor_key_for(email=email, customer=customer),
                donor_email=email,
                customer_id=customer,
                payment_intent_id=payment_intent,
                flag=self._tampered(attempt, amount, currency),
                occurred_at=_time(cs.get("created")),
                **{**self._donor(attempt), "checkout_session_id": session_id},
            )
        )
        return result

    # -- invoices (monthly gifts) --------------------------------------------------------

    def invoice(self, invoice: StripeDict, *, paid: bool) -> Translation:
        details = _dict(_dict(invoice.get("parent")).get("subscription_details"))
        subscription = _id(details.get("subscription")) or _id(invoice.get("subscription"))
        metadata = _dict(details.get("metadata"))
        if not _ours(metadata) and subscription:
            # Subscriptions made before metadata was copied: our attempt knows its subscription.
            known = attempt_store.by_subscription(self.session, subscription)
            if known:
                metadata = {"attempt": known[0].id}
        if not _ours(metadata):
            return _ignored("invoice without fundgoal metadata")
        placed = self._place(metadata)
        if isinstance(placed, str):
            return _unresolved(placed)
        invoice_id = _id(invoice.get("id"))
        if invoice_id is None:
            return _ignored("invoice without an id")
        currency = _currency(invoice.get("currency"))
        amount = _int(invoice.get("amount_paid") if paid else invoice.get("amount_due"))
        if paid and not amount:
            return _ignored("invoice paid with nothing to pay")
        payment_intent, charge = None, None
        for item in _dict(invoice.get("payments")).get("data") or []:
            payment = _dict(_dict(item).get("payment"))
            payment_intent = payment_intent or _id(payment.get("payment_intent"))
            charge = charge or _id(payment.get("charge"))
        email = invoice.get("customer_email")
        email = email if isinstance(email, str) and email else None
        customer = _id(invoice.get("customer"))
        transitions = _dict(invoice.get("status_transitions"))
        attempt = placed.attempt
        return Translation(
            facts=[
                ledger.Fact(
                    provider=self.provider,
                    ref=invoice_id,
                    campaign_id=placed.campaign_id,
                    kind=EntryKind.MONTHLY.value,
                    source="stripe",
                    currency=currency,
                    amount=amount,
                    status=(EntryStatus.SUCCEEDED if paid else EntryStatus.FAILED).value,
                    donor_key=ledger.donor_key_for(
                        email=email, customer=customer, subscription=subscription
                    ),
                    donor_email=email,
                    customer_id=customer,
                    invoice_id=invoice_id,
                    subscription_id=subscription,
                    payment_intent_id=payment_intent,
                    charge_id=charge,
                    flag=self._tampered(attempt, amount, currency) if paid else None,
                    occurred_at=_time(transitions.get("paid_at")) or _time(invoice.get("created")),
                    **self._donor(attempt),
                )
            ]
        )

    def subscription_ended(self, subscription: StripeDict) -> Translation:
        sub_id = _id(subscription.get("id"))
        metadata = _dict(subscription.get("metadata"))
        found: list[DonationAttempt] = []
        attempt_id = metadata.get("attempt")
        if isinstance(attempt_id, str):
            attempt = attempt_store.get(self.session, attempt_id)
            if attempt is not None:
                found.append(attempt)
        if not found and sub_id:
            found.extend(attempt_store.by_subscription(self.session, sub_id))
        if not found:
            if _ours(metadata):
                return _unresolved("subscription of an unknown donation attempt")
            return _ignored("subscription without fundgoal metadata")
        ended = _time(subscription.get("ended_at")) or _time(subscription.get("canceled_at"))
        return Translation(
            updates=[
                AttemptUpdate(a.id, subscription_id=sub_id, ended_at=ended or utcnow())
                for a in found
            ]
        )

    # -- charges, refunds, disputes ------------------------------------------------------

    def _gift_of_charge(
        self, charge_id: str | None, payment_intent: str | None, charge: StripeDict | None
    ) -> ledger.Fact | Translation:
        """A fact naming the gift a charge paid for (enough to create it when we have not
        seen the payment yet), or the Translation saying why there is none."""
        entry = payment_store.entry_for_payment(
            self.session, self.provider, payment_intent, charge_id
        )
        if entry is not None:
            # Always name the campaign: without it ledger.apply reads the entry before taking
            # the campaign lock, and a concurrent writer could make that read stale.
            return ledger.Fact(
                provider=self.provider,
                ref=entry.provider_ref,
                campaign_id=entry.campaign_id,
                charge_id=charge_id,
                payment_intent_id=payment_intent,
            )
        if charge is None and charge_id:
            charge = self.gateway.retrieve_charge(charge_id)
        charge = charge or {}
        payment_intent = payment_intent or _id(charge.get("payment_intent"))
        charge_id = charge_id or _id(charge.get("id"))
        metadata = _dict(charge.get("metadata"))
        if not _ours(metadata) and payment_intent:
            # Checkout copies our metadata to the PaymentIntent, not to its charges.
            intent = self.gateway.retrieve_payment_intent(payment_intent)
            metadata = _dict(intent.get("metadata"))
        if not _ours(metadata):
            if payment_intent:
                invoice_id = self.gateway.invoice_for_payment_intent(payment_intent)
                month = (
                    ledger.find_entry(self.session, self.provider, invoice_id)
                    if invoice_id
                    else None
                )
                if invoice_id and month is not None:
                    return ledger.Fact(
                        provider=self.provider,
                        ref=invoice_id,
                        campaign_id=month.campaign_id,
                        charge_id=charge_id,
                        payment_intent_id=payment_intent,
                    )
                if invoice_id:
                    return _unresolved(f"invoice {invoice_id} is not in the ledger yet")
            return _ignored("charge without fundgoal metadata")
        placed = self._place(metadata)
        if isinstance(placed, str):
            return _unresolved(placed)
        if payment_intent is None and charge_id is None:
            return _ignored("charge without an id")
        currency = _currency(charge.get("currency"))
        amount = _int(charge.get("amount"))
        billing = _dict(charge.get("billing_details"))
        email = billing.get("email") if isinstance(billing.get("email"), str) else None
        customer = _id(charge.get("customer"))
        succeeded = charge.get("status") == "succeeded" or charge.get("paid") is True
        return ledger.Fact(
            provider=self.provider,
            ref=payment_intent or str(charge_id),
            campaign_id=placed.campaign_id,
            kind=EntryKind.ONE_TIME.value,
            source="stripe",
            currency=currency,
            amount=amount,
            status=EntryStatus.SUCCEEDED.value if succeeded else None,
            donor_key=ledger.donor_key_for(email=email, customer=customer),
            donor_email=email,
            customer_id=customer,
            payment_intent_id=payment_intent,
            charge_id=charge_id,
            flag=self._tampered(placed.attempt, amount, currency),
            occurred_at=_time(charge.get("created")),
            **self._donor(placed.attempt),
        )

    def charge(self, charge: StripeDict) -> Translation:
        gift = self._gift_of_charge(
            _id(charge.get("id")), _id(charge.get("payment_intent")), charge
        )
        if isinstance(gift, Translation):
            return gift
        refunded = _int(charge.get("amount_refunded"))  # cumulative, as Stripe reports it
        return Translation(facts=[replace(gift, amount_refunded=refunded)])

    def refund(self, refund: StripeDict) -> Translation:
        # A refund tells its own amount; the ledger wants the charge's cumulative refunded
        # amount, which only the charge knows now.
        charge_id = _id(refund.get("charge"))
        payment_intent = _id(refund.get("payment_intent"))
        if charge_id is None and payment_intent is not None:
            intent = self.gateway.retrieve_payment_intent(payment_intent)
            charge_id = _id(intent.get("latest_charge"))
        if charge_id is None:
            return _ignored("refund without a charge")
        charge = self.gateway.retrieve_charge(charge_id)
        return self.charge(charge)

    def dispute(self, dispute: StripeDict) -> Translation:
        charge_id = _id(dispute.get("charge"))
        gift = self._gift_of_charge(charge_id, _id(dispute.get("payment_intent")), None)
        if isinstance(gift, Translation):
            return gift
        status = dispute.get("status")
        if not isinstance(status, str):
            return _ignored("dispute without a status")
        return Translation(
            facts=[
                replace(
                    gift,
                    dispute_status=status,
                    dispute_amount=_int(dispute.get("amount")),
                )
            ]
        )


# -- applying ----------------------------------------------------------------------------


def _update_attempt(session: Session, update: AttemptUpdate) -> None:
    attempt = attempt_store.get_for_update(session, update.attempt_id)
    if attempt is None:
        return
    if update.status and _ATTEMPT_RANK.get(update.status, 0) > _ATTEMPT_RANK.get(attempt.status, 0):
        attempt.status = update.status
    if update.subscription_id and attempt.subscription_id is None:
        attempt.subscription_id = update.subscription_id
    if update.ended_at and attempt.ended_at is None:
        attempt.ended_at = update.ended_at
    session.add(attempt)


def apply_translation(session: Session, translation: Translation) -> bool:
    """Write a translation; True when any ledger entry changed."""
    changed = False
    for fact in translation.facts:
        changed = ledger.apply(session, fact).changed or changed
    for update in translation.updates:
        _update_attempt(session, update)
    session.flush()
    return changed


def receive(
    engine: Engine,
    gateway: Gateway,
    payload: bytes,
    signature_header: str | None,
    secret: str,
    *,
    provider: str = "stripe",
) -> Outcome:
    """A webhook body: verified, then handled. Raises SignatureError / PayloadError (400)."""
    # Here, not at the top: the stripe library takes a quarter of a second to import, and every
    # `fundgoal` command imports this module (tests/test_cli.py checks it stays unloaded).
    from ..payments.stripe import verify_event

    event = verify_event(payload, signature_header, secret)
    return handle_event(engine, gateway, event, provider=provider)


def handle_event(
    engine: Engine, gateway: Gateway, event: StripeDict, *, provider: str = "stripe"
) -> Outcome:
    event_id, kind = str(event["id"]), str(event["type"])
    return replace(_handle(engine, gateway, event_id, kind, event, provider), kind=_label(kind))


def _label(kind: str) -> str:
    return kind if kind in HANDLED else "other"


def _handle(
    engine: Engine, gateway: Gateway, event_id: str, kind: str, event: StripeDict, provider: str
) -> Outcome:
    if bool(event.get("livemode")) != gateway.livemode:
        # A test-mode event at a live endpoint (or the reverse): not about our money.
        log.info("ignoring %s %s: livemode does not match our key", kind, event_id)
        return Outcome("ignored", detail="livemode does not match the API key")
    if event.get("account"):
        # An event about a connected account (a Connect endpoint also receives those, signed
        # with the same secret): that account's own sessions could name our campaigns in their
        # metadata, but its money is not ours.
        log.info("ignoring %s %s: it is about a connected account", kind, event_id)
        return Outcome("ignored", detail="event from a connected account")
    if kind not in HANDLED:
        return Outcome("ignored", detail=f"event type {kind} is not used")
    # Translate in a read-only session of its own: the facts and marks it yields are plain
    # values, so the writing transaction below loads every row afresh after its locks (an
    # entry read here could be stale by then, and the ledger must see the current one).
    with db.reader(engine) as reader:
        if payment_store.seen(reader, event_id):
            return Outcome("duplicate")
        translation = Translator(reader, gateway, provider).event(event)
    try:
        with db.transaction(engine) as session:
            if not payment_store.claim(session, event_id, provider, kind):
                return Outcome("duplicate")
            changed = apply_translation(session, translation)
            payment_store.set_outcome(session, event_id, translation.outcome, translation.detail)
    except ledger.LedgerError as exc:
        # The facts contradict the ledger (a gift moved to another campaign in metadata, …):
        # retrying will not help. Record it for reconcile and the operator, and answer 2xx.
        translation = _unresolved(exc.message)
        changed = False
        with db.transaction(engine) as session:
            if not payment_store.claim(session, event_id, provider, kind):
                return Outcome("duplicate")
            payment_store.set_outcome(session, event_id, "unresolved", exc.message)
    if translation.outcome == "unresolved":
        log.warning("stripe event %s (%s) unresolved: %s", event_id, kind, translation.detail)
        return Outcome("unresolved", changed, translation.detail)
    status = "processed" if translation.outcome == "applied" else "ignored"
    return Outcome(status, changed, translation.detail)


# -- reconcile ---------------------------------------------------------------------------


@dataclass
class ReconcileReport:
    checked: int = 0
    changed: int = 0
    ignored: int = 0
    problems: list[str] = field(default_factory=list)


def reconcile(
    engine: Engine,
    gateway: Gateway,
    since: datetime,
    *,
    provider: str = "stripe",
    progress: Callable[[str, int], None] | None = None,
    kinds: Iterable[str] = RECONCILE_KINDS,
) -> ReconcileReport:
    """Walk Stripe's objects created since `since` and apply what the ledger missed."""
    report = ReconcileReport()
    for kind in kinds:
        try:
            for obj in gateway.list_objects(kind, since):
                report.checked += 1
                if progress is not None:
                    progress(kind, report.checked)
                name = f"{kind[:-1].replace('_', ' ')} {obj.get('id')}"
                try:
                    with db.reader(engine) as reader:
                        translation = Translator(reader, gateway, provider).reconciled(kind, obj)
                    with db.transaction(engine) as session:
                        changed = apply_translation(session, translation)
                except ledger.LedgerError as exc:
                    report.problems.append(f"{name}: {exc.message}")
                    continue
                except ProviderError as exc:
                    report.problems.append(f"{name}: {exc.message}")
                    continue
                if translation.outcome == "unresolved":
                    report.problems.append(f"{name}: {translation.detail}")
                elif translation.outcome == "ignored":
                    report.ignored += 1
                if changed:
                    report.changed += 1
        except ProviderError as exc:
            report.problems.append(f"listing {kind}: {exc.message}")
    return report
