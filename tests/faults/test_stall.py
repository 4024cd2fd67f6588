"""The path to PostgreSQL freezes without closing (a hung server or middlebox: packets taken,
nothing answered, no reset), under a real `fundgoal serve --workers 2`.

Keepalives see nothing and the server never receives a statement to time out, so only the
application's own bounds can help (README, "Bounded waits"): the bars keep answering from
memory, /readyz turns 503, webhooks and admin pages answer 503 within one database step
(pool + connect + call timeouts), SIGTERM completes within its documented bound, and once the
path forwards again everything heals on new connections."""

from __future__ import annotations

import re
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import Engine

from tests.fakestripe import FakeStripeServer
from tests.faults.proxy import FaultProxy
from tests.faults.serving import SIGTERM_BOUND, SLACK, STEP, Answer, Serve, until
from tests.faults.test_killed_worker import paid_session_event, state
from tests.stripe_support import campaign, sign
from tests.web.admin.conftest import EMAIL, PASSWORD, csrf_of, make_admin

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def servers() -> Iterator[list[Serve]]:
    started: list[Serve] = []
    yield started
    for server in started:
        server.kill()


def gift(campaign_id: int, n: int, amount: int) -> dict[str, Any]:
    event = paid_session_event(campaign_id)
    event["id"] = f"evt_stall_{n}"
    session = event["data"]["object"]
    session.update(id=f"cs_test_stall_{n}", payment_intent=f"pi_stall_{n}", amount_total=amount)
    return event


def shows(server: Serve, raised: int) -> None:
    """Until ten answers in a row (new connections: both workers) show `raised`."""

    def check() -> bool:
        for _ in range(10):
            answer = server.get("/api/campaigns/spring")
            if answer.status != 200 or answer.json()["raised"] != raised:
                return False
        return True

    until(check, f"every worker to show {raised}", timeout=30)


class Readers:
    """Article pages reading the bar the whole time, each answer within a bound."""

    def __init__(self, server: Serve) -> None:
        self.server = server
        self.answers: list[Answer] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                answer = self.server.get("/api/campaigns/spring", timeout=5)
            except OSError as exc:  # a reader's browser giving up counts as a failure
                self.failures.append(repr(exc))
                continue
            if answer.status != 200:
                self.failures.append(f"{answer.status} {answer.body[:200]!r}")
            self.answers.append(answer)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def signed_in(server: Serve) -> requests.Session:
    browser = requests.Session()
    base = f"http://127.0.0.1:{server.port}"
    page = browser.get(f"{base}/admin/login", timeout=10)
    answer = browser.post(
        f"{base}/admin/login",
        data={"email": EMAIL, "password": PASSWORD, "csrf": csrf_of(page.text)},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 303, answer.text
    return browser


def test_a_frozen_database_path_is_answered_within_bounds_and_heals(
    direct: Engine,
    proxy: FaultProxy,
    proxied_url: str,
    fake_stripe_server: FakeStripeServer,
    tmp_path: Path,
    servers: list[Serve],
) -> None:
    spring = campaign(direct, "spring")
    assert spring.id is not None
    make_admin(direct)
    server = Serve(proxied_url, fake_stripe_server.base_url, tmp_path / "snapshot.json")
    servers.append(server)
    server.ready()
    first = server.deliver(gift(spring.id, 1, 4200))
    assert first.status == 200, first.body
    shows(server, 4200)
    browser = signed_in(server)
    base = f"http://127.0.0.1:{server.port}"
    assert browser.get(f"{base}/admin/donations", timeout=10).status_code == 200

    readers = Readers(server)
    until(lambda: len(readers.answers) >= 20, "readers to be reading", timeout=30)
    proxy.blackhole()

    # Readiness turns 503 on every worker, saying why, within the stale bound plus one step.
    server.every_worker(
        "/readyz", lambda a: a.status == 503 and bool(a.json()["reasons"]), "/readyz 503"
    )
    assert server.get("/livez").status == 200  # alive: do not restart what still serves

    # A webhook: 503 within one database step, so Stripe retries; nothing written.
    answer = server.deliver(gift(spring.id, 2, 1800))
    assert answer.status == 503, answer.body
    assert answer.seconds < STEP + SLACK
    assert answer.json()["error"] == "unavailable"
    # An admin page: 503, within one step too.
    started = time.monotonic()
    page = browser.get(f"{base}/admin/donations", timeout=STEP + SLACK)
    assert page.status_code == 503, page.text[:500]
    assert time.monotonic() - started < STEP + SLACK
    assert "Traceback" not in page.text

    readers.stop()
    assert readers.failures == []
    bodies = {a.json()["raised"] for a in readers.answers}
    assert bodies == {4200}, "the bar must keep the last known total"

    # Forwarding again: new connections are used, every worker becomes ready, and Stripe's
    # retry of the refused event applies once.
    proxy.restore()
    server.ready()
    again = server.deliver(gift(spring.id, 2, 1800))
    assert again.status == 200, again.body
    assert again.json()["status"] == "processed"
    assert server.deliver(gift(spring.id, 2, 1800)).json()["status"] == "duplicate"
    assert state(direct) == (2, 2, 6000)
    shows(server, 6000)
    assert browser.get(f"{base}/admin/donations", timeout=10).status_code == 200


def test_sigterm_completes_within_its_bound_while_the_database_is_frozen(
    direct: Engine,
    proxy: FaultProxy,
    proxied_url: str,
    fake_stripe_server: FakeStripeServer,
    tmp_path: Path,
    servers: list[Serve],
) -> None:
    spring = campaign(direct, "spring")
    assert spring.id is not None
    server = Serve(proxied_url, fake_stripe_server.base_url, tmp_path / "snapshot.json")
    servers.append(server)
    server.ready()
    proxy.blackhole()
    server.every_worker("/readyz", lambda a: a.status == 503, "/readyz 503")

    # A webhook is in flight when the orchestrator stops us: its handler is running (it asked
    # for the body: "100 Continue" came back) when SIGTERM is sent, and the body then leads it
    # into the frozen database.
    body, header = sign(gift(spring.id, 3, 500))
    stripe = socket.create_connection(("127.0.0.1", server.port), timeout=SIGTERM_BOUND + SLACK)
    with stripe:
        stripe.sendall(
            b"POST /webhooks/stripe HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            + f"Stripe-Signature: {header}\r\nContent-Length: {len(body)}\r\n".encode()
            + b"Expect: 100-continue\r\n\r\n"
        )
        assert stripe.recv(64).startswith(b"HTTP/1.1 100 Continue")
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        stripe.sendall(body)
        answer = stripe.makefile("rb").read()
        code = server.proc.wait(timeout=SIGTERM_BOUND + SLACK)
    seconds = time.monotonic() - started
    assert code == 0, server.output()
    # Answered, not cut off: 503, so Stripe retries it later.
    assert answer.startswith(b"HTTP/1.1 503"), answer[:300]
    assert seconds < SIGTERM_BOUND, f"SIGTERM took {seconds:.1f} s"
    assert state(direct) == (0, 0, 0)


def test_a_worker_started_during_an_outage_serves_the_saved_snapshot(
    direct: Engine,
    proxy: FaultProxy,
    proxied_url: str,
    fake_stripe_server: FakeStripeServer,
    tmp_path: Path,
    servers: list[Serve],
) -> None:
    spring = campaign(direct, "spring")
    assert spring.id is not None
    saved = tmp_path / "snapshot.json"
    first = Serve(proxied_url, fake_stripe_server.base_url, saved)
    servers.append(first)
    first.ready()
    assert first.deliver(gift(spring.id, 4, 2500)).status == 200
    until(
        lambda: saved.exists() and '"raised": 2500' in saved.read_text(),
        "the snapshot with the gift to be saved",
        timeout=30,
    )
    first.sigterm()

    # The database path freezes; the service is restarted (a deploy, a crashed host).
    proxy.blackhole()
    second = Serve(proxied_url, fake_stripe_server.base_url, saved)
    servers.append(second)
    second.every_worker(
        "/livez", lambda a: a.status == 200 and a.json()["serving_widget"], "/livez 200"
    )
    for _ in range(10):
        answer = second.get("/api/campaigns/spring")
        assert answer.status == 200, answer.body
        assert answer.json()["raised"] == 2500
    assert second.get("/embed/spring").status == 200
    ready = second.get("/readyz")
    assert ready.status == 503
    assert any("saved on disk" in reason for reason in ready.json()["reasons"])
    assert re.search(r"starting degraded", second.output()), second.output()

    # The database answers again: the schema is checked and every worker becomes ready.
    proxy.restore()
    second.ready()
    assert second.deliver(gift(spring.id, 5, 500)).status == 200
    shows(server=second, raised=3000)
