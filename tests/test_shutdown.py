"""Graceful shutdown: SIGTERM to `fundgoal serve` while a webhook is in flight lets it finish.

The webhook is made slow deterministically: the test holds the campaign's row lock in another
connection, so the event's ledger write waits on it (seen in pg_stat_activity). Then SIGTERM,
then the lock is released: the in-flight request must still answer 2xx, its gift must be
committed, and the server must exit 0 within its graceful timeout (30 s, cli._run_server).
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine

from tests.conftest import clean_postgres
from tests.fakestripe import FakeStripeServer, sign_event
from tests.stripe_support import API_KEY, WEBHOOK_SECRET, campaign, raised
from tests.test_workers import free_port, get

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def one_gift_event(fake: FakeStripeServer, campaign_id: int) -> dict[str, Any]:
    metadata = {"campaign": "spring", "campaign_id": str(campaign_id), "attempt": "att_gone"}
    session = fake.state.create_checkout_session(
        {
            "mode": "payment",
            "success_url": "http://127.0.0.1/thanks",
            "metadata": metadata,
            "payment_intent_data": {"metadata": metadata},
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": "usd",
                        "unit_amount": 2500,
                        "product_data": {"name": "Spring"},
                    },
                }
            ],
        }
    )
    events = fake.state.complete_checkout(session["id"], email="ann@example.org")
    return next(e for e in events if e["type"] == "checkout.session.completed")


def wait_for_lock_wait(conn: psycopg.Connection[Any], timeout: float = 15) -> None:
    """Until some other backend waits on a lock: the webhook's write is parked behind ours."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        ).fetchone()
        if row and row[0] > 0:
            return
        time.sleep(0.02)
    raise AssertionError("the webhook never waited on the campaign lock")


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_lets_the_in_flight_webhook_commit(
    workers: int, pg_engine: Engine, pg_url: str, fake_stripe: FakeStripeServer
) -> None:
    clean_postgres(pg_engine)
    spring = campaign(pg_engine)
    assert spring.id is not None
    body, header = sign_event(one_gift_event(fake_stripe, spring.id), WEBHOOK_SECRET)

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FUNDGOAL_", "STRIPE_"))}
    env.update(
        FUNDGOAL_DATABASE_URL=pg_url,
        FUNDGOAL_PUBLIC_URL=f"http://127.0.0.1:{port}",
        STRIPE_SECRET_KEY=API_KEY,
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        STRIPE_API_BASE=fake_stripe.base_url,
        # The test holds the lock across the SIGTERM on purpose: the webhook must keep waiting
        # (the default lock, statement and call timeouts could answer it 503 on a slow machine).
        FUNDGOAL_DB_LOCK_TIMEOUT="60",
        FUNDGOAL_DB_STATEMENT_TIMEOUT="60",
        FUNDGOAL_DB_CALL_TIMEOUT="70",
    )
    command = [sys.executable, "-m", "fundgoal", "serve", "--port", str(port)]
    proc = subprocess.Popen(
        [*command, "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    answer: dict[str, Any] = {}

    def post() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            conn.request(
                "POST",
                "/webhooks/stripe",
                body=body,
                headers={"stripe-signature": header, "content-type": "application/json"},
            )
            response = conn.getresponse()
            answer.update(status=response.status, body=response.read())
        except OSError as exc:
            answer.update(error=exc)
        finally:
            conn.close()

    sender = threading.Thread(target=post)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if get(port, "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            assert proc.poll() is None, "serve exited before answering"
            assert time.monotonic() < deadline, "serve did not start in 30 s"
            time.sleep(0.1)

        plain = pg_url.replace("+psycopg", "")
        with psycopg.connect(plain) as locker, psycopg.connect(plain, autocommit=True) as watch:
            locker.execute("SELECT id FROM campaign WHERE id = %s FOR UPDATE", (spring.id,))
            sender.start()
            wait_for_lock_wait(watch)
            proc.send_signal(signal.SIGTERM)
            time.sleep(1.0)  # uvicorn is now shutting down, waiting for the request
            assert proc.poll() is None, "the server exited with a request in flight"
            assert "status" not in answer
            locker.rollback()  # release the lock: the webhook's write proceeds
        sender.join(30)
        assert answer.get("status") == 200, answer
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        if sender.is_alive():
            sender.join(30)
    assert raised(pg_engine, "spring") == (2500, 1)
