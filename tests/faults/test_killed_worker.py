"""A worker killed mid-request loses nothing: `fundgoal serve` on PostgreSQL is SIGKILLed while a
webhook waits on a row lock the test holds; once the lock is released the half-done transaction
dies with its connection, nothing is written, and Stripe's re-delivery is applied once."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from fundgoal import ledger
from fundgoal.models import Campaign, LedgerEntry, ProcessedEvent
from tests.conftest import TEST_SECRET_KEY
from tests.stripe_support import API_KEY, WEBHOOK_SECRET, campaign, sign
from tests.test_workers import free_port

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def post(port: int, event: dict[str, Any], timeout: float = 30) -> tuple[int, bytes]:
    body, header = sign(event)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(
            "POST",
            "/webhooks/stripe",
            body=body,
            headers={"stripe-signature": header, "content-type": "application/json"},
        )
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        conn.close()


class Server:
    """`fundgoal serve` (one worker: uvicorn runs in this very process) on the test database."""

    def __init__(self, pg_url: str, stripe_base: str) -> None:
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FUNDGOAL_", "STRIPE_"))}
        env.update(
            FUNDGOAL_DATABASE_URL=pg_url,
            FUNDGOAL_PUBLIC_URL=f"http://127.0.0.1:{self.port}",
            FUNDGOAL_SECRET_KEY=TEST_SECRET_KEY,
            STRIPE_SECRET_KEY=API_KEY,
            STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
            STRIPE_API_BASE=stripe_base,
            # The test holds the row lock until it has killed the worker: no lock timeout.
            FUNDGOAL_DB_LOCK_TIMEOUT="0",
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fundgoal", "serve", "--port", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            try:
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            finally:
                conn.close()
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("fundgoal serve did not start")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(timeout=30)


@pytest.fixture
def servers(pg_url: str, fake_stripe_server: Any) -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        server.stop()


def state(engine: Engine) -> tuple[int, int, int]:
    with Session(engine) as s:
        events = s.scalar(select(func.count()).select_from(ProcessedEvent)) or 0
        entries = s.scalar(select(func.count()).select_from(LedgerEntry)) or 0
        row = s.scalars(select(Campaign).where(Campaign.slug == "spring")).one()
        assert ledger.drift(s, row) is None, "stored totals differ from ledger.recompute"
        return events, entries, row.raised


def paid_session_event(campaign_id: int) -> dict[str, Any]:
    now = int(time.time())
    return {
        "id": "evt_killed_worker_1",
        "object": "event",
        "type": "checkout.session.completed",
        "livemode": False,
        "created": now,
        "api_version": "2025-10-29.clover",
        "data": {
            "object": {
                "id": "cs_test_killed_worker",
                "object": "checkout.session",
                "mode": "payment",
                "status": "complete",
                "payment_status": "paid",
                "amount_total": 4200,
                "currency": "usd",
                "payment_intent": "pi_killed_worker",
                "customer": None,
                "customer_details": {"email": "kill@example.org"},
                "metadata": {"campaign": "spring", "campaign_id": str(campaign_id)},
                "created": now,
            }
        },
    }


def waiting_on_a_lock(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
    ).fetchone()
    return int(row[0]) if row else 0


def busy_backends(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND state IN ('active', 'idle in transaction', 'idle in transaction (aborted)') "
        "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
    ).fetchone()
    return int(row[0]) if row else 0


def until(check: Any, what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_sigkill_mid_webhook_loses_nothing_and_the_redelivery_counts_once(
    pg_engine: Engine, pg_url: str, fake_stripe_server: Any, servers: list[Server]
) -> None:
    from tests.conftest import clean_postgres

    clean_postgres(pg_engine)
    c = campaign(pg_engine, "spring")
    assert c.id is not None
    event = paid_session_event(c.id)
    server = Server(pg_url, fake_stripe_server.base_url)
    servers.append(server)
    plain = pg_url.replace("postgresql+psycopg://", "postgresql://", 1)

    outcome: dict[str, Any] = {}

    def deliver() -> None:
        try:
            outcome["answer"] = post(server.port, event)
        except OSError as exc:  # the server dies under us: Stripe sees a dropped connection
            outcome["error"] = exc

    with psycopg.connect(plain) as holder, psycopg.connect(plain, autocommit=True) as watcher:
        holder.execute("SELECT id FROM campaign WHERE id = %s FOR UPDATE", (c.id,))
        sender = threading.Thread(target=deliver)
        sender.start()
        until(lambda: waiting_on_a_lock(watcher) >= 1, "the webhook to block on the row lock")
        os.kill(server.proc.pid, signal.SIGKILL)
        server.proc.wait(timeout=10)
        sender.join(timeout=30)
        assert "answer" not in outcome, outcome  # no 2xx ever went back to Stripe
        holder.rollback()  # release: the orphaned transaction runs on into a dead socket
        until(lambda: busy_backends(watcher) == 0, "the killed worker's backends to end")

    assert state(pg_engine) == (0, 0, 0), "the killed request left something behind"

    # Stripe delivers again (to a restarted server): applied once, then a duplicate.
    again = Server(pg_url, fake_stripe_server.base_url)
    servers.append(again)
    status, body = post(again.port, event)
    assert status == 200, body
    assert json.loads(body)["status"] == "processed"
    assert state(pg_engine) == (1, 1, 4200)
    status, body = post(again.port, event)
    assert json.loads(body)["status"] == "duplicate"
    assert state(pg_engine) == (1, 1, 4200)
