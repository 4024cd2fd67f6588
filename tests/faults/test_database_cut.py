"""The database connection dies at a chosen moment: nothing is half-written, the answer says
so (5xx for Stripe, an error page for admins), and once the database is back the same work is
applied exactly once. The cut is a FaultProxy between the app and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select
from sqlmodel import Session
from starlette.testclient import TestClient

from fundgoal import db, ledger
from fundgoal.config import Settings
from fundgoal.models import AuditLog, Campaign, LedgerEntry, ProcessedEvent
from fundgoal.payments.stripe import StripeGateway
from fundgoal.web.app import create_app
from tests.fakestripe import FakeStripeServer
from tests.faults.proxy import FaultProxy
from tests.stripe_support import deliver, donate
from tests.web.admin.conftest import make_admin, sign_in

pytestmark = pytest.mark.postgres


def counts(engine: Engine) -> tuple[int, int, int]:
    """(processed events, ledger entries, raised) as really stored, checked against the ledger."""
    with Session(engine) as s:
        events = s.scalar(select(func.count()).select_from(ProcessedEvent)) or 0
        entries = s.scalar(select(func.count()).select_from(LedgerEntry)) or 0
        row = s.scalars(select(Campaign).where(Campaign.slug == "spring")).one()
        assert ledger.drift(s, row) is None, "stored totals differ from ledger.recompute"
        return events, entries, row.raised


class CutAt:
    """Cuts the proxy (or, with blackhole=True, freezes it) from inside the app's own database
    conversation."""

    def __init__(
        self, engine: Engine, proxy: FaultProxy, moment: str, *, blackhole: bool = False
    ) -> None:
        self.engine, self.proxy, self.moment = engine, proxy, moment
        self.action = proxy.blackhole if blackhole else proxy.cut
        self.fired = False

    def _after(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if self.fired:
            return
        table = {"after_claim": "processed_event", "after_ledger": "ledger_entry"}.get(self.moment)
        if table and re.match(rf"\s*INSERT INTO {table}\b", statement, re.IGNORECASE):
            self.fire()

    def _commit(self, _conn: Any) -> None:
        if self.moment == "before_commit" and not self.fired:
            self.fire()

    def fire(self) -> None:
        self.fired = True
        self.action()

    def __enter__(self) -> CutAt:
        event.listen(self.engine, "after_cursor_execute", self._after)
        event.listen(self.engine, "commit", self._commit)
        return self

    def __exit__(self, *_: object) -> None:
        event.remove(self.engine, "after_cursor_execute", self._after)
        event.remove(self.engine, "commit", self._commit)


@pytest.fixture
def app_settings(proxied_url: str, fake_stripe: FakeStripeServer) -> Settings:
    from fundgoal.config import Secret
    from tests.stripe_support import API_KEY, WEBHOOK_SECRET

    return Settings(
        database_url=proxied_url,
        env="test",
        public_url="http://testserver",
        stripe_secret_key=Secret(API_KEY),
        stripe_webhook_secret=Secret(WEBHOOK_SECRET),
        stripe_api_base=fake_stripe.base_url,
        snapshot_check_seconds=3600,
    )


@pytest.fixture
def client(app_settings: Settings, proxied_engine: Engine) -> Iterator[TestClient]:
    gateway = StripeGateway(app_settings, timeout=2.0, retries=0)
    app = create_app(app_settings, engine=proxied_engine, payments=gateway)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize("moment", ["after_claim", "after_ledger", "before_commit"])
def test_webhook_cut_mid_transaction_writes_nothing_and_the_retry_applies_once(
    client: TestClient,
    direct: Engine,
    proxied_engine: Engine,
    proxy: FaultProxy,
    fake_stripe: FakeStripeServer,
    moment: str,
) -> None:
    from tests.stripe_support import campaign

    campaign(direct, "spring")
    status, _, session_id = donate(client, "spring", "40")
    assert status == 303
    completed = fake_stripe.state.complete_checkout(session_id)[0]
    assert completed["type"] == "checkout.session.completed"
    before = counts(direct)

    with CutAt(proxied_engine, proxy, moment) as cut:
        answer = deliver(client, completed)
    assert cut.fired, "the fault never triggered"
    assert answer.status_code == 503, answer.text  # unavailable, not a bug: Stripe retries
    assert "Traceback" not in answer.text
    assert counts(direct) == before, "something was half-written"

    # While the database is down, Stripe's retry fails again, and still writes nothing.
    assert deliver(client, completed).status_code == 503
    assert counts(direct) == before

    proxy.restore()
    answer = deliver(client, completed)
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "processed"
    assert counts(direct) == (before[0] + 1, before[1] + 1, before[2] + 4000)
    # ...and once more is a duplicate: exactly once.
    assert deliver(client, completed).json()["status"] == "duplicate"
    assert counts(direct) == (before[0] + 1, before[1] + 1, before[2] + 4000)


def test_admin_offline_gift_cut_mid_write_shows_an_error_page_and_writes_nothing(
    app_settings: Settings,
    proxied_engine: Engine,
    direct: Engine,
    proxy: FaultProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from argon2 import PasswordHasher

    from fundgoal.services import admins
    from tests.stripe_support import campaign

    monkeypatch.setattr(admins, "_hasher", PasswordHasher(time_cost=1, memory_cost=64))
    campaign(direct, "spring")
    make_admin(direct)
    settings = replace(app_settings, stripe_webhook_secret=app_settings.stripe_webhook_secret)
    with TestClient(
        create_app(settings, engine=proxied_engine), raise_server_exceptions=False
    ) as c:
        token = sign_in(c)
        form = {
            "csrf": token,
            "campaign": "spring",
            "amount": "75",
            "date": "2026-11-01",
            "source": "bank_transfer",
            "donor_name": "Grace Hopper",
            "donor_email": "grace@example.org",
            "note": "cheque 42",
        }

        def audits() -> int:
            with Session(direct) as s:
                return len(
                    s.scalars(select(AuditLog.id).where(AuditLog.action == "gift.record")).all()
                )

        before = (counts(direct), audits())
        with CutAt(proxied_engine, proxy, "after_ledger") as cut:
            answer = c.post("/admin/gifts/new", data=form, follow_redirects=False)
        assert cut.fired
        assert answer.status_code == 503, answer.status_code  # unavailable: try again
        assert "Traceback" not in answer.text
        assert "<html" in answer.text.lower()
        assert (counts(direct), audits()) == before

        proxy.restore()
        # The session survived in the database; the admin simply submits again.
        answer = c.post("/admin/gifts/new", data=form, follow_redirects=False)
        assert answer.status_code == 303, answer.text
        after = counts(direct)
        assert (after[1], after[2]) == (before[0][1] + 1, before[0][2] + 7500)
        assert audits() == before[1] + 1


def test_widget_serves_its_last_snapshot_while_the_database_is_down(
    client: TestClient, direct: Engine, proxy: FaultProxy
) -> None:
    from tests.stripe_support import campaign

    campaign(direct, "spring")
    keeper = client.app.state.ctx.snapshots  # type: ignore[attr-defined]
    assert keeper.refresh() is True
    good = client.get("/api/campaigns/spring")
    assert good.status_code == 200
    assert client.get("/healthz").status_code == 200

    proxy.cut()
    assert keeper.refresh() is False  # the poller's question fails...
    again = client.get("/api/campaigns/spring")
    assert (again.status_code, again.content) == (200, good.content)  # ...the bar does not
    assert client.get("/embed/spring").status_code == 200
    assert client.get("/campaigns/spring/badge.svg").status_code == 200
    health = client.get("/healthz")
    assert health.status_code == 503
    body = health.json()
    assert body["status"] == "degraded"
    assert body["widget"]["healthy"] is False
    assert body["widget"]["loaded"] is True

    proxy.restore()
    with db.transaction(direct) as s:
        row = s.scalars(select(Campaign).where(Campaign.slug == "spring")).one()
        row.title = "Spring, back"
        row.version += 1
    keeper.refresh()
    health = client.get("/healthz")
    assert health.status_code == 200
    assert health.json()["widget"]["healthy"] is True
    assert client.get("/api/campaigns/spring").json()["title"] == "Spring, back"
