"""`fundgoal stripe reconcile`: repairs what missed webhooks left out, and is safe to repeat."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select, text
from sqlmodel import Session
from starlette.testclient import TestClient

from fundgoal import cli, db
from fundgoal.config import Settings
from fundgoal.models import LedgerEntry
from tests.fakestripe import FakeStripeServer
from tests.stripe_support import API_KEY, campaign, deliver_all, donate, raised


@pytest.fixture
def stripe_env(
    monkeypatch: pytest.MonkeyPatch, database_url: str, fake_stripe: FakeStripeServer
) -> None:
    monkeypatch.setenv("FUNDGOAL_DATABASE_URL", database_url)
    monkeypatch.setenv("FUNDGOAL_ENV", "test")
    monkeypatch.setenv("STRIPE_SECRET_KEY", API_KEY)
    monkeypatch.setenv("STRIPE_API_BASE", fake_stripe.base_url)


@pytest.mark.usefixtures("stripe_env")
def test_reconcile_repairs_missed_webhooks_and_repeats_as_a_no_op(
    stripe_client: TestClient,
    engine: Engine,
    fake_stripe: FakeStripeServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    campaign(engine)
    state = fake_stripe.state
    # A one-time gift whose webhooks all went missing, then partly refunded.
    _, _, one = donate(stripe_client, "spring", "50")
    state.complete_checkout(one, email="a@example.org")
    state.refund(state.get(one)["payment_intent"], 1000)
    # A monthly gift: the first invoice arrived, the second did not.
    _, _, monthly = donate(stripe_client, "spring", "10", "monthly")
    deliver_all(stripe_client, state.complete_checkout(monthly, email="b@example.org"))
    state.pay_next_invoice(state.get(monthly)["subscription"])
    # A disputed and lost gift whose dispute events were missed.
    _, _, lost = donate(stripe_client, "spring", "30")
    deliver_all(stripe_client, state.complete_checkout(lost, email="c@example.org"))
    opened = state.dispute(state.get(lost)["payment_intent"])
    state.close_dispute(opened[0]["data"]["object"]["id"], won=False)
    # An abandoned checkout.
    _, _, abandoned = donate(stripe_client, "spring", "5")
    state.expire_checkout(abandoned)
    assert raised(engine, "spring") == (4000, 2)

    assert cli.main(["stripe", "reconcile"]) == 0
    out, err = capsys.readouterr()
    # one-time 50 - 10 refunded, monthly 2 x 10, the lost dispute 0; donors a and b.
    assert raised(engine, "spring") == (6000, 2)
    assert "changed" in out
    assert "0 could not be reconciled" in out
    assert "\rchecked" in err  # the progress counter
    changed_first = int(out.split(": ", 1)[1].split(" changed")[0])
    assert changed_first >= 3

    assert cli.main(["stripe", "reconcile", "--since", "2026-01-01"]) == 0
    out, _ = capsys.readouterr()
    assert ": 0 changed" in out
    assert raised(engine, "spring") == (6000, 2)
    listed = {r.path for r in state.requests if r.method == "GET"}
    assert {"/v1/checkout/sessions", "/v1/invoices", "/v1/refunds", "/v1/disputes"} <= listed
    created = [r for r in state.requests_to("/v1/checkout/sessions", "GET")]
    assert all("gte" in str(r.params.get("created")) for r in created)


@pytest.mark.usefixtures("stripe_env")
def test_reconcile_exits_non_zero_when_something_cannot_be_placed(
    stripe_client: TestClient,
    engine: Engine,
    fake_stripe: FakeStripeServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    campaign(engine)
    _, _, session_id = donate(stripe_client, "spring", "50")
    fake_stripe.state.complete_checkout(session_id)
    # The campaign named in Stripe's metadata is gone from this database.
    with db.transaction(engine) as session:
        session.execute(text("DELETE FROM donation_attempt"))
        session.execute(text("UPDATE campaign SET slug = 'renamed'"))
    assert cli.main(["stripe", "reconcile"]) == 1
    out, err = capsys.readouterr()
    assert "1 could not be reconciled" in out
    assert "unknown campaign" in err
    with Session(engine) as session:
        assert session.scalars(select(LedgerEntry)).all() == []


@pytest.mark.usefixtures("stripe_env")
def test_reconcile_says_when_stripe_is_unreachable(
    fake_stripe: FakeStripeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_stripe.state.fail_next("/v1/checkout/sessions", 500, times=5)
    assert cli.main(["stripe", "reconcile"]) == 1
    out, err = capsys.readouterr()
    assert "listing checkout_sessions" in err
    assert API_KEY not in out + err


def test_reconcile_refuses_test_mode(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FUNDGOAL_DATABASE_URL", settings.database_url)
    monkeypatch.delenv("STRIPE_SECRET_KEY", raising=False)
    assert cli.main(["stripe", "reconcile"]) == 1
    _, err = capsys.readouterr()
    assert err.count("\n") == 1
    assert "test mode" in err
