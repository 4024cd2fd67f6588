"""The ledger on real SQLite and PostgreSQL: idempotent, order-independent, recomputable."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from sqlmodel import Session

from fundgoal import db, ledger
from fundgoal.ledger import Fact
from fundgoal.models import Campaign, EntryStatus
from fundgoal.services import campaigns
from tests.factories import make_campaign

T0 = datetime(2026, 11, 1, tzinfo=UTC)
_slugs = itertools.count()


def stripe_fact(ref: str, campaign_id: int | None, **kw: object) -> Fact:
    base: dict[str, object] = {
        "provider": "stripe",
        "ref": ref,
        "campaign_id": campaign_id,
        "currency": "USD",
    }
    base.update(kw)
    return Fact(**base)  # type: ignore[arg-type]


def apply_all(engine: Engine, facts: list[Fact]) -> None:
    for fact in facts:  # one transaction per fact, as webhooks do
        with db.transaction(engine) as s:
            ledger.apply(s, fact)


def totals(engine: Engine, campaign_id: int) -> tuple[ledger.Totals, ledger.Totals]:
    with db.transaction(engine) as s:
        c = s.get(Campaign, campaign_id)
        assert c is not None
        return ledger.stored(c), ledger.recompute(s, campaign_id)


def new_campaign(engine: Engine, currency: str = "USD") -> int:
    with db.transaction(engine) as s:
        c = make_campaign(s, slug=f"led-{next(_slugs)}-{id(engine) % 997}", currency=currency)
        assert c.id is not None
        return c.id


def test_a_gift_counts_once_however_often_it_is_told(engine: Engine) -> None:
    cid = new_campaign(engine)
    paid = stripe_fact("pi_1", cid, amount=2500, status="succeeded", donor_key="email:a@x.org")
    apply_all(engine, [paid, paid, paid])
    stored, derived = totals(engine, cid)
    assert (stored.raised, stored.donors) == (2500, 1)
    assert (derived.raised, derived.donors) == (2500, 1)


def test_pending_does_not_count_until_it_succeeds(engine: Engine) -> None:
    cid = new_campaign(engine)
    apply_all(engine, [stripe_fact("pi_2", cid, amount=4000, status="pending")])
    assert totals(engine, cid)[0].raised == 0
    apply_all(engine, [stripe_fact("pi_2", cid, status="succeeded")])
    assert totals(engine, cid)[0].raised == 4000


def test_refund_before_payment_and_partial_refunds(engine: Engine) -> None:
    cid = new_campaign(engine)
    # Stripe delivered the refund first: the entry exists, counts nothing, then settles.
    apply_all(engine, [stripe_fact("pi_3", cid, amount=5000, amount_refunded=1000)])
    assert totals(engine, cid)[0].raised == 0
    apply_all(engine, [stripe_fact("pi_3", cid, amount=5000, status="succeeded")])
    assert totals(engine, cid)[0].raised == 4000
    # cumulative: a later, larger refund replaces, an old smaller one is ignored
    apply_all(
        engine,
        [
            stripe_fact("pi_3", None, amount_refunded=5000),
            stripe_fact("pi_3", None, amount_refunded=1000),
        ],
    )
    stored, derived = totals(engine, cid)
    assert stored.raised == derived.raised == 0
    assert stored.donors == derived.donors == 0


def test_disputes_withdraw_and_reinstate(engine: Engine) -> None:
    cid = new_campaign(engine)
    apply_all(engine, [stripe_fact("pi_4", cid, amount=3000, status="succeeded")])
    apply_all(
        engine, [stripe_fact("pi_4", None, dispute_status="needs_response", dispute_amount=3000)]
    )
    assert totals(engine, cid)[0].raised == 0
    apply_all(engine, [stripe_fact("pi_4", None, dispute_status="won", dispute_amount=3000)])
    assert totals(engine, cid)[0].raised == 3000
    # a stale "funds withdrawn" delivered after the win changes nothing
    apply_all(
        engine, [stripe_fact("pi_4", None, dispute_status="needs_response", dispute_amount=3000)]
    )
    assert totals(engine, cid)[0].raised == 3000


def test_monthly_donor_counts_once(engine: Engine) -> None:
    cid = new_campaign(engine)
    key = ledger.donor_key_for(subscription="sub_1")
    facts = [
        stripe_fact(f"in_{m}", cid, amount=1000, status="succeeded", kind="monthly", donor_key=key)
        for m in range(3)
    ]
    facts.append(
        stripe_fact("in_3", cid, amount=1000, status="failed", kind="monthly", donor_key=key)
    )
    apply_all(engine, facts)
    stored, derived = totals(engine, cid)
    assert (stored.raised, stored.donors) == (derived.raised, derived.donors) == (3000, 1)


def test_better_donor_evidence_merges_donors(engine: Engine) -> None:
    cid = new_campaign(engine)
    apply_all(
        engine,
        [
            stripe_fact("pi_a", cid, amount=100, status="succeeded"),
            stripe_fact("pi_b", cid, amount=100, status="succeeded", donor_key="email:same@x.org"),
        ],
    )
    assert totals(engine, cid)[0].donors == 2
    apply_all(engine, [stripe_fact("pi_a", cid, donor_key="email:same@x.org")])
    stored, derived = totals(engine, cid)
    assert stored.donors == derived.donors == 1


def test_foreign_currency_is_flagged_not_counted(engine: Engine) -> None:
    cid = new_campaign(engine)
    apply_all(engine, [stripe_fact("pi_eur", cid, currency="EUR", amount=9999, status="succeeded")])
    with db.transaction(engine) as s:
        entry = ledger.find_entry(s, "stripe", "pi_eur")
        assert entry is not None
        assert entry.flag
        assert "EUR" in entry.flag
    assert totals(engine, cid)[0].raised == 0


def test_errors_name_the_problem(engine: Engine) -> None:
    with db.transaction(engine) as s, pytest.raises(ledger.LedgerError, match="no campaign known"):
        ledger.apply(s, stripe_fact("pi_orphan", None, amount_refunded=10))
    with db.transaction(engine) as s, pytest.raises(ledger.LedgerError, match="does not exist"):
        ledger.apply(s, stripe_fact("pi_x", 987654, amount=10))


def test_drift_is_detected_and_repaired(engine: Engine) -> None:
    cid = new_campaign(engine)
    apply_all(engine, [stripe_fact("pi_d", cid, amount=700, status="succeeded")])
    with db.transaction(engine) as s:
        c = s.get(Campaign, cid)
        assert c is not None
        c.raised = 12345  # what a bad manual SQL edit or a bug would leave
        s.add(c)
    with db.transaction(engine) as s:
        c = s.get(Campaign, cid)
        assert c is not None
        report = campaigns.totals_report(s, c.slug)
        assert not report.consistent
        assert ledger.drift(s, c) is not None
        ledger.repair(s, cid)
    stored, derived = totals(engine, cid)
    assert stored.raised == derived.raised == 700


# A donation's whole history as Stripe may tell it, each fact carrying absolute state.
def history(cid: int) -> list[Fact]:
    key = "email:donor@example.org"
    return [
        stripe_fact(f"pi_h_{cid}", cid, amount=10_000, status="pending", occurred_at=T0),
        stripe_fact(
            f"pi_h_{cid}",
            cid,
            amount=10_000,
            status="succeeded",
            donor_key=key,
            occurred_at=T0 + timedelta(seconds=5),
        ),
        stripe_fact(f"pi_h_{cid}", cid, amount_refunded=2_500),
        stripe_fact(f"pi_h_{cid}", cid, amount_refunded=4_000),
        stripe_fact(
            f"in_h1_{cid}", cid, amount=1_500, status="failed", kind="monthly", donor_key=key
        ),
        stripe_fact(
            f"in_h1_{cid}", cid, amount=1_500, status="succeeded", kind="monthly", donor_key=key
        ),
        stripe_fact(f"pi_k_{cid}", cid, amount=800, status="succeeded"),
        stripe_fact(f"pi_k_{cid}", cid, dispute_status="needs_response", dispute_amount=800),
        stripe_fact(f"pi_k_{cid}", cid, dispute_status="lost", dispute_amount=800),
        stripe_fact(f"pi_w_{cid}", cid, amount=600, status="succeeded", donor_key="email:w@x.org"),
        stripe_fact(f"pi_w_{cid}", cid, dispute_status="under_review", dispute_amount=600),
        stripe_fact(f"pi_w_{cid}", cid, dispute_status="won", dispute_amount=600),
    ]


# pi_h: 10,000 - 4,000 refunded; in_h1: 1,500 paid on retry; pi_k: lost dispute; pi_w: won.
EXPECTED_RAISED = 6_000 + 1_500 + 0 + 600
EXPECTED_DONORS = 2  # donor@example.org (one-time and monthly) and w@x.org


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_order_and_repetition_gives_the_same_totals(
    engine: Engine, data: st.DataObject
) -> None:
    cid = new_campaign(engine)
    facts = history(cid)
    order = data.draw(st.permutations(facts))
    repeats = data.draw(st.lists(st.sampled_from(facts), max_size=8))
    stream = list(order) + repeats
    data.draw(st.randoms()).shuffle(stream)
    apply_all(engine, stream)
    stored, derived = totals(engine, cid)
    assert (stored.raised, stored.donors) == (EXPECTED_RAISED, EXPECTED_DONORS)
    assert (derived.raised, derived.donors) == (EXPECTED_RAISED, EXPECTED_DONORS)
    with db.transaction(engine) as s:
        entry = ledger.find_entry(s, "stripe", f"pi_h_{cid}")
        assert entry is not None
        assert entry.status == EntryStatus.SUCCEEDED
        assert entry.occurred_at == T0  # the earliest time told wins, whatever the order


def test_offline_entries_are_authoritative(session: Session) -> None:
    from fundgoal.money import Money
    from fundgoal.services import gifts

    c = make_campaign(session)
    entry = gifts.record_offline_gift(
        session, c, Money(50_000, "USD"), actor="t", donor_name="Bank"
    )
    assert c.raised == 50_000
    assert c.donors == 1
    gifts.record_offline_gift(
        session,
        c,
        Money(20_000, "USD"),
        actor="t",
        ref=entry.provider_ref,
        reason="typo in the amount",
    )
    assert c.raised == 20_000
    gifts.void_offline_gift(session, entry.provider_ref, actor="t", reason="bounced cheque")
    assert c.raised == 0
    assert c.donors == 0
    assert c.id is not None
    assert ledger.recompute(session, c.id).raised == 0


def test_anonymity_once_asked_for_holds(engine: Engine) -> None:
    cid = new_campaign(engine)
    apply_all(
        engine,
        [
            stripe_fact("pi_anon", cid, amount=100, status="succeeded"),
            stripe_fact("pi_anon", cid, anonymous=True),
            stripe_fact("pi_anon", cid, anonymous=False),
        ],
    )
    with db.transaction(engine) as s:
        entry = ledger.find_entry(s, "stripe", "pi_anon")
        assert entry is not None
        assert entry.anonymous is True


def test_an_entry_read_before_the_lock_is_read_again(engine: Engine) -> None:
    cid = new_campaign(engine)
    apply_all(engine, [stripe_fact("pi_stale", cid, amount=1000, status="succeeded")])
    with db.transaction(engine) as reader:
        stale = ledger.find_entry(reader, "stripe", "pi_stale")  # loaded into this session
        assert stale is not None
        apply_all(engine, [stripe_fact("pi_stale", None, amount_refunded=400)])  # another writer
        ledger.apply(reader, stripe_fact("pi_stale", None, amount_refunded=100))
    stored, derived = totals(engine, cid)
    assert stored.raised == derived.raised == 600
