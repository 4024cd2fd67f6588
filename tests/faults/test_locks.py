"""Row locks held by a session left idle in a transaction cannot stall webhooks: each waits at
most lock_timeout and answers 503 (Stripe retries), and PostgreSQL ends the idle session after
idle_in_transaction_session_timeout, after which the retry applies once. The app runs in
process (TestClient) on PostgreSQL through a FaultProxy, with short timeouts."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient

from fundgoal import db
from fundgoal.config import DatabaseTimeouts, Secret, Settings
from fundgoal.payments.stripe import StripeGateway
from fundgoal.web.app import create_app
from tests.fakestripe import FakeStripeServer
from tests.faults.proxy import FaultProxy
from tests.faults.serving import SLACK, until
from tests.faults.test_database_cut import CutAt, counts
from tests.faults.test_killed_worker import paid_session_event
from tests.stripe_support import API_KEY, WEBHOOK_SECRET, campaign, deliver

pytestmark = pytest.mark.postgres

LIMITS = DatabaseTimeouts(
    connect=2, pool=2, statement=2, lock=1, idle_in_transaction=3, call=2.5, keepalive=10
)
STEP = LIMITS.step


@pytest.fixture
def engine(proxied_url: str) -> Iterator[Engine]:
    engine = db.make_engine(proxied_url, timeouts=LIMITS)
    yield engine
    engine.dispose()


@pytest.fixture
def client(engine: Engine, proxied_url: str, fake_stripe: FakeStripeServer) -> Iterator[TestClient]:
    settings = Settings(
        database_url=proxied_url,
        env="test",
        public_url="http://testserver",
        stripe_secret_key=Secret(API_KEY),
        stripe_webhook_secret=Secret(WEBHOOK_SECRET),
        stripe_api_base=fake_stripe.base_url,
        snapshot_check_seconds=3600,
        db_timeouts=LIMITS,
    )
    gateway = StripeGateway(settings, timeout=2.0, retries=0)
    with TestClient(create_app(settings, engine=engine, payments=gateway)) as c:
        yield c


def plain(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False).replace("+psycopg", "")


def timed(client: TestClient, event: dict[str, Any]) -> tuple[Any, float]:
    started = time.monotonic()
    answer = deliver(client, event)
    return answer, time.monotonic() - started


def test_a_lock_held_idle_in_transaction_costs_a_webhook_lock_timeout_not_a_hang(
    client: TestClient, direct: Engine
) -> None:
    spring = campaign(direct, "spring")
    assert spring.id is not None
    event = paid_session_event(spring.id)
    outcome: dict[str, Any] = {}

    def post() -> None:
        outcome["answer"], outcome["seconds"] = timed(client, event)

    # Someone's session (a psql, a stuck job) locks the campaign and then sits idle in its
    # transaction, indefinitely: it is not ours, so no timeout of ours ends it.
    with psycopg.connect(plain(direct)) as holder:
        holder.execute("SELECT id FROM campaign WHERE id = %s FOR UPDATE", (spring.id,))
        sender = threading.Thread(target=post)
        sender.start()
        sender.join(timeout=LIMITS.lock + STEP + SLACK)
        answered_while_locked = not sender.is_alive()
        holder.rollback()
    sender.join(timeout=30)
    assert answered_while_locked, "the webhook waited on the lock instead of giving up"
    assert outcome["answer"].status_code == 503, outcome["answer"].text
    assert "locked" in outcome["answer"].json()["message"]
    assert counts(direct) == (0, 0, 0)
    # The lock is gone: Stripe's retry applies, once.
    assert deliver(client, event).json()["status"] == "processed"
    assert deliver(client, event).json()["status"] == "duplicate"
    assert counts(direct) == (1, 1, 4200)


def test_our_own_session_frozen_mid_transaction_is_ended_by_the_server_and_the_retry_applies(
    client: TestClient, engine: Engine, direct: Engine, proxy: FaultProxy
) -> None:
    spring = campaign(direct, "spring")
    assert spring.id is not None
    event = paid_session_event(spring.id)

    # The path freezes right after the ledger write: the server's side of that connection is
    # left idle in a transaction, holding the campaign's row lock.
    with CutAt(engine, proxy, "after_ledger", blackhole=True) as cut:
        answer, seconds = timed(client, event)
    assert cut.fired
    assert answer.status_code == 503, answer.text
    assert seconds < STEP + SLACK
    proxy.restore()

    # Stripe retries. Until PostgreSQL ends the orphaned session each retry waits at most
    # lock_timeout (503); then one applies, exactly once.
    statuses: list[int] = []

    def retried() -> bool:
        answer, seconds = timed(client, event)
        assert seconds < LIMITS.lock + STEP + SLACK, f"a retry took {seconds:.1f} s"
        statuses.append(answer.status_code)
        return answer.status_code == 200

    until(retried, "a retry to be applied", timeout=LIMITS.idle_in_transaction + 3 * SLACK)
    assert all(status == 503 for status in statuses[:-1]), statuses
    assert deliver(client, event).json()["status"] == "duplicate"
    assert counts(direct) == (1, 1, 4200)
