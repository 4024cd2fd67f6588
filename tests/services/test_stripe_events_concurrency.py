"""On PostgreSQL, many workers receiving the same events at once still count each gift once."""

from __future__ import annotations

import random
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest
import uvicorn
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.testclient import TestClient

from fundgoal.config import Settings
from fundgoal.payments.stripe import StripeGateway
from fundgoal.web.app import create_app
from tests.conftest import clean_postgres
from tests.fakestripe import FakeStripeServer
from tests.services.test_stripe_events import forget_payments, one_donation
from tests.stripe_support import campaign, raised, sign


@pytest.fixture(params=[pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """PostgreSQL only: concurrent delivery to several workers is its production case."""
    pg_engine: Engine = request.getfixturevalue("pg_engine")
    clean_postgres(pg_engine)
    return pg_engine.url.render_as_string(hide_password=False)


@contextmanager
def serve(app: Starlette) -> Iterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_config=None, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the app did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def _post(url: str, body: bytes, header: str) -> int:
    request = urllib.request.Request(
        url + "/webhooks/stripe",
        data=body,
        headers={"stripe-signature": header, "content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        return int(answer.status)


def test_twenty_concurrent_deliveries_count_once(
    stripe_client: TestClient,
    stripe_settings: Settings,
    engine: Engine,
    gateway: StripeGateway,
    fake_stripe: FakeStripeServer,
) -> None:
    campaign(engine)
    events = one_donation(stripe_client, fake_stripe)
    signed = [sign(e) for e in events]
    app = create_app(stripe_settings, engine=engine, payments=gateway)
    with serve(app) as url:

        def worker(seed: int) -> list[int]:
            mine = signed[:]
            random.Random(seed).shuffle(mine)
            return [_post(url, body, header) for body, header in mine]

        # A few rounds from an empty ledger: each interleaving is a new chance for a race.
        for round_ in range(3):
            forget_payments(engine)
            with ThreadPoolExecutor(20) as pool:
                results = list(pool.map(worker, range(round_ * 20, round_ * 20 + 20)))
            assert all(status == 200 for statuses in results for status in statuses)
            assert raised(engine, "spring") == (4000, 1)
