"""`fundgoal serve --workers 2` on PostgreSQL: every worker answers from its own snapshot, and a
gift committed elsewhere shows in every worker's answers within one second."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine

from fundgoal import db
from fundgoal.money import Money
from fundgoal.services import gifts
from fundgoal.services.demo import seed_demo
from fundgoal.stores import campaigns

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(port: int, path: str) -> tuple[int, dict[str, object]]:
    # A new connection each time, so the kernel spreads requests over the workers.
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path, headers={"connection": "close"})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


@pytest.fixture
def served(pg_engine: Engine, pg_url: str) -> Iterator[int]:
    from tests.conftest import clean_postgres

    clean_postgres(pg_engine)
    with db.transaction(pg_engine) as s:
        seed_demo(s)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FUNDGOAL_", "STRIPE_"))}
    env.update(FUNDGOAL_DATABASE_URL=pg_url, FUNDGOAL_PUBLIC_URL=f"http://127.0.0.1:{port}")
    proc = subprocess.Popen(
        [sys.executable, "-m", "fundgoal", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if get(port, "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("fundgoal serve --workers 2 did not start")
            time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def burst(port: int, path: str, count: int) -> list[dict[str, object]]:
    """Concurrent requests: an idle kernel hands every accept to one worker, a busy one spreads."""
    with ThreadPoolExecutor(16) as pool:
        return [body for _status, body in pool.map(lambda _: get(port, path), range(count))]


def test_two_workers_converge_within_a_second(served: int, pg_engine: Engine) -> None:
    port = served
    # The second worker may still be starting: keep asking (bounded) until both have answered.
    workers: set[object] = set()
    deadline = time.monotonic() + 30
    while len(workers) < 2 and time.monotonic() < deadline:
        workers |= {body["worker"] for body in burst(port, "/healthz", 100)}
    assert len(workers) == 2, "requests never reached a second worker"
    assert {body["raised"] for body in burst(port, "/api/campaigns/demo", 100)} == {146_000}

    with db.transaction(pg_engine) as s:
        demo = campaigns.by_slug(s, "demo")
        assert demo is not None
        gifts.record_offline_gift(s, demo, Money.from_major(100, "USD"), actor="test")
    committed = time.monotonic()
    time.sleep(1.0)
    # One second after the commit, every answer from every worker shows the gift.
    answers = [body["raised"] for body in burst(port, "/api/campaigns/demo", 200)]
    assert time.monotonic() - committed < 5
    assert set(answers) == {156_000}
