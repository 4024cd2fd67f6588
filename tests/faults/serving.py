"""A real `fundgoal serve` for fault tests: a subprocess on the database URL it is given (in
these tests, PostgreSQL through a FaultProxy), with HTTP helpers that never wait without end."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import TEST_SECRET_KEY
from tests.stripe_support import API_KEY, WEBHOOK_SECRET, sign
from tests.test_workers import free_port

# The bounds under test, small so that the suite is quick; each is what an operator would set.
FAST_DB = {
    "FUNDGOAL_DB_CONNECT_TIMEOUT": "2",
    "FUNDGOAL_DB_POOL_TIMEOUT": "2",
    "FUNDGOAL_DB_STATEMENT_TIMEOUT": "2",
    "FUNDGOAL_DB_CALL_TIMEOUT": "2.5",
    "FUNDGOAL_DB_LOCK_TIMEOUT": "1",
    "FUNDGOAL_DB_IDLE_IN_TRANSACTION_TIMEOUT": "3",
    "FUNDGOAL_SNAPSHOT_MAX_AGE_SECONDS": "2",
}
# One database step of a request ends within pool + connect + call (README, Bounded waits).
STEP = 2 + 2 + 2.5
# uvicorn's graceful window (cli._run_server) plus one step: the documented SIGTERM bound.
SIGTERM_BOUND = 30 + STEP
# What a busy 2-core machine may add to a bound before we call it a hang.
SLACK = 10.0


@dataclass
class Answer:
    status: int
    body: bytes
    seconds: float

    def json(self) -> Any:
        return json.loads(self.body)


def until(check: Callable[[], bool], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


class Serve:
    def __init__(
        self,
        database_url: str,
        stripe_base: str,
        snapshot_file: Path,
        *,
        workers: int = 2,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FUNDGOAL_", "STRIPE_"))}
        env.update(
            FUNDGOAL_DATABASE_URL=database_url,
            FUNDGOAL_PUBLIC_URL=f"http://127.0.0.1:{self.port}",
            FUNDGOAL_SECRET_KEY=TEST_SECRET_KEY,
            FUNDGOAL_SNAPSHOT_FILE=str(snapshot_file),
            STRIPE_SECRET_KEY=API_KEY,
            STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
            STRIPE_API_BASE=stripe_base,
            **FAST_DB,
            **(extra or {}),
        )
        self.log = snapshot_file.with_name(f"serve-{self.port}.log")
        command = [sys.executable, "-m", "fundgoal", "serve", "--port", str(self.port)]
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [*command, "--workers", str(workers)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.workers = workers

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = STEP + SLACK,
    ) -> Answer:
        # A new connection each time, so the kernel spreads requests over the workers.
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        started = time.monotonic()
        try:
            conn.request(
                method, path, body=body, headers={"connection": "close", **(headers or {})}
            )
            response = conn.getresponse()
            return Answer(response.status, response.read(), time.monotonic() - started)
        finally:
            conn.close()

    def get(self, path: str, timeout: float = STEP + SLACK) -> Answer:
        return self.request("GET", path, timeout=timeout)

    def deliver(self, event: dict[str, Any], timeout: float = STEP + SLACK) -> Answer:
        body, header = sign(event)
        return self.request(
            "POST",
            "/webhooks/stripe",
            body=body,
            headers={"stripe-signature": header, "content-type": "application/json"},
            timeout=timeout,
        )

    def every_worker(self, path: str, want: Callable[[Answer], bool], what: str) -> None:
        """Until each worker (told apart by the pid in the body) has answered as wanted."""
        seen: set[int] = set()

        def check() -> bool:
            assert self.proc.poll() is None, f"serve exited: {self.output()}"
            try:
                answer = self.get(path, timeout=5)
            except OSError:
                return False
            if want(answer):
                seen.add(int(answer.json()["worker"]))
            return len(seen) >= self.workers

        until(check, f"{what} from {self.workers} workers", timeout=60)

    def ready(self) -> None:
        self.every_worker("/readyz", lambda a: a.status == 200, "/readyz 200")

    def sigterm(self) -> float:
        """Stop as an orchestrator does; the seconds until the process was gone."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=SIGTERM_BOUND + SLACK)
        assert code == 0, f"serve exited {code}: {self.output()}"
        return time.monotonic() - started

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
