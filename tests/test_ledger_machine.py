"""A Hypothesis state machine over the ledger, on SQLite and PostgreSQL.

Steps: one-time gifts (pending, then paid), monthly invoices (failed, then paid), cumulative
refunds, disputes (withdrawn, won, lost), offline entries (record, edit, void), re-deliveries of
any earlier fact (duplicates and stale, out-of-order ones) and pairs of facts applied by two
threads at once. Invariant after every step: the campaign's stored totals equal the totals
recomputed from the ledger, and both equal what a plain model of "what Stripe reported" says.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import Engine

from fundgoal import db, ledger
from fundgoal.ledger import Fact
from fundgoal.models import Campaign
from fundgoal.money import Money
from fundgoal.services import gifts
from tests.factories import make_campaign

_ids = itertools.count()
DONORS = ["email:a@x.org", "email:b@x.org", "email:c@x.org", None]


@dataclass
class ModelGift:
    """What the provider has said about one gift, as a person would tally it."""

    amount: int
    donor: str | None
    paid: bool = False
    failed: bool = False
    refunded: int = 0
    dispute: str | None = None  # None, "open", "won", "lost"
    void: bool = False
    facts: list[Fact] = field(default_factory=list)

    def counted(self) -> int:
        if not self.paid or self.void:
            return 0
        held = self.amount if self.dispute in ("open", "lost") else 0
        return max(self.amount - self.refunded - held, 0)


def make_machine(engine: Engine) -> type[RuleBasedStateMachine]:
    class LedgerMachine(RuleBasedStateMachine):
        stripe_gifts = Bundle("stripe_gifts")
        offline_gifts = Bundle("offline_gifts")

        @initialize()
        def campaign(self) -> None:
            with db.transaction(engine) as s:
                c = make_campaign(s, slug=f"machine-{next(_ids)}")
                assert c.id is not None
                self.cid = c.id
            self.model: dict[str, ModelGift] = {}
            self.told: list[Fact] = []

        def tell(self, fact: Fact) -> None:
            with db.transaction(engine) as s:
                ledger.apply(s, fact)
            self.told.append(fact)
            if fact.ref in self.model:
                self.model[fact.ref].facts.append(fact)

        @rule(
            target=stripe_gifts,
            amount=st.integers(100, 50_000),
            donor=st.sampled_from(DONORS),
            paid_now=st.booleans(),
        )
        def one_time_gift(self, amount: int, donor: str | None, paid_now: bool) -> str:
            ref = f"pi_{next(_ids)}"
            self.model[ref] = ModelGift(amount, donor)
            self.tell(
                Fact(
                    "stripe",
                    ref,
                    self.cid,
                    currency="USD",
                    amount=amount,
                    status="pending",
                    donor_key=donor,
                )
            )
            if paid_now:
                self.pay(ref)
            return ref

        @rule(
            target=stripe_gifts,
            amount=st.integers(500, 5_000),
            donor=st.sampled_from(DONORS),
            fails_first=st.booleans(),
        )
        def monthly_invoice(self, amount: int, donor: str | None, fails_first: bool) -> str:
            ref = f"in_{next(_ids)}"
            self.model[ref] = ModelGift(amount, donor)
            if fails_first:
                self.model[ref].failed = True
                self.tell(
                    Fact(
                        "stripe",
                        ref,
                        self.cid,
                        kind="monthly",
                        currency="USD",
                        amount=amount,
                        status="failed",
                        donor_key=donor,
                    )
                )
            self.pay(ref)  # paid on retry counts, once
            return ref

        def pay(self, ref: str) -> None:
            gift = self.model[ref]
            gift.paid = True
            self.tell(
                Fact(
                    "stripe",
                    ref,
                    self.cid,
                    currency="USD",
                    amount=gift.amount,
                    status="succeeded",
                    donor_key=gift.donor,
                )
            )

        @rule(ref=stripe_gifts)
        def settle(self, ref: str) -> None:
            self.pay(ref)

        @rule(ref=stripe_gifts, share=st.integers(1, 100))
        def refund(self, ref: str, share: int) -> None:
            gift = self.model[ref]
            # Stripe reports the cumulative refunded amount, never more than the charge.
            total = min(gift.amount, gift.refunded + gift.amount * share // 100)
            gift.refunded = max(gift.refunded, total)
            self.tell(Fact("stripe", ref, None, amount_refunded=total))

        @rule(ref=stripe_gifts, outcome=st.sampled_from(["open", "won", "lost"]))
        def dispute(self, ref: str, outcome: str) -> None:
            gift = self.model[ref]
            if gift.dispute in ("won", "lost"):
                outcome = gift.dispute  # a closed dispute stays closed; Stripe re-tells it
            gift.dispute = outcome
            stripe_status = {"open": "needs_response", "won": "won", "lost": "lost"}[outcome]
            self.tell(
                Fact("stripe", ref, None, dispute_status=stripe_status, dispute_amount=gift.amount)
            )

        @rule(target=offline_gifts, amount=st.integers(100, 100_000), donor=st.sampled_from(DONORS))
        def offline(self, amount: int, donor: str | None) -> str:
            with db.transaction(engine) as s:
                c = s.get(Campaign, self.cid)
                assert c is not None
                email = donor.split(":", 1)[1] if donor else None
                entry = gifts.record_offline_gift(
                    s, c, Money(amount, "USD"), actor="machine", donor_email=email
                )
            self.model[entry.provider_ref] = ModelGift(amount, donor, paid=True)
            return entry.provider_ref

        @rule(ref=offline_gifts, amount=st.integers(100, 100_000))
        def edit_offline(self, ref: str, amount: int) -> None:
            gift = self.model[ref]
            with db.transaction(engine) as s:
                c = s.get(Campaign, self.cid)
                assert c is not None
                email = gift.donor.split(":", 1)[1] if gift.donor else None
                gifts.record_offline_gift(
                    s,
                    c,
                    Money(amount, "USD"),
                    actor="machine",
                    ref=ref,
                    donor_email=email,
                    reason="corrected",
                )
            gift.amount = amount
            gift.void = False

        @rule(ref=offline_gifts)
        def void_offline(self, ref: str) -> None:
            with db.transaction(engine) as s:
                gifts.void_offline_gift(s, ref, actor="machine", reason="bounced")
            self.model[ref].void = True

        @rule(data=st.data())
        def redeliver(self, data: st.DataObject) -> None:
            """Any earlier fact again: a duplicate, or a stale one arriving late."""
            if self.told:
                self.tell(data.draw(st.sampled_from(self.told)))

        @rule(ref=stripe_gifts, data=st.data())
        def stale(self, ref: str, data: st.DataObject) -> None:
            """An older fact about this gift arrives after newer ones (Stripe does not order)."""
            facts = self.model[ref].facts
            self.tell(facts[data.draw(st.integers(0, len(facts) - 1))])

        @rule(data=st.data())
        def two_at_once(self, data: st.DataObject) -> None:
            """Two earlier facts applied by two threads at the same moment."""
            if len(self.told) < 2:
                return
            pair = data.draw(st.lists(st.sampled_from(self.told), min_size=2, max_size=2))
            errors: list[BaseException] = []

            def apply(fact: Fact) -> None:
                try:
                    with db.transaction(engine) as s:
                        ledger.apply(s, fact)
                except BaseException as exc:  # surfaced below
                    errors.append(exc)

            threads = [threading.Thread(target=apply, args=(f,)) for f in pair]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=30)
            assert not errors, errors

        @invariant()
        def totals_agree(self) -> None:
            if not hasattr(self, "cid"):
                return
            with db.transaction(engine) as s:
                c = s.get(Campaign, self.cid)
                assert c is not None
                derived = ledger.recompute(s, self.cid)
                stored = (c.raised, c.donors)
            expected_raised = sum(g.counted() for g in self.model.values())
            donors = {g.donor or ref for ref, g in self.model.items() if g.counted() > 0}
            assert stored == (derived.raised, derived.donors)
            assert stored == (expected_raised, len(donors))

    return LedgerMachine


def test_ledger_state_machine(engine: Engine) -> None:
    run_state_machine_as_test(
        make_machine(engine),
        settings=settings(
            max_examples=60,
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
