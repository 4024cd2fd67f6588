"""Serve the fake Stripe over real HTTP on 127.0.0.1, in a background thread."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import stripe
import uvicorn

from .server import create_app
from .state import FakeStripe

START_TIMEOUT = 10.0  # seconds; a healthy start takes a few milliseconds


@dataclass(frozen=True)
class FakeStripeServer:
    state: FakeStripe
    host: str
    port: int

    @property
    def base_url(self) -> str:
        """What `STRIPE_API_BASE` / `base_addresses={"api": ...}` should be."""
        return f"http://{self.host}:{self.port}"


@contextmanager
def run_fake_stripe(state: FakeStripe | None = None) -> Iterator[FakeStripeServer]:
    """Start the server on a free port, wait until it answers, stop and join it on exit."""
    state = state if state is not None else FakeStripe()
    app = create_app(state)
    # Binding port 0 ourselves gives a free port with no race between choosing and binding.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_config=None,  # leave the test process's logging alone
        log_level="warning",
        access_log=False,
        lifespan="off",
        loop="asyncio",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="fakestripe", daemon=True
    )
    thread.start()
    try:
        _wait_until_answering(server, thread, port)
        yield FakeStripeServer(state, "127.0.0.1", port)
    finally:
        app.state.stopping.set()  # cut injected delays short
        server.should_exit = True
        thread.join(START_TIMEOUT)
        sock.close()
        if thread.is_alive():  # pragma: no cover - a hung server is a bug to see
            raise RuntimeError("fake Stripe server did not stop")


def _wait_until_answering(server: uvicorn.Server, thread: threading.Thread, port: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if not thread.is_alive():
            raise RuntimeError("fake Stripe server failed to start")
        if server.started:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            try:
                connection.request("GET", "/healthz")
                if connection.getresponse().status == 200:
                    return
            except OSError:
                pass
            finally:
                connection.close()
        time.sleep(0.005)
    raise RuntimeError("fake Stripe server did not answer in time")


@contextmanager
def stripe_client(
    server: FakeStripeServer | str,
    api_key: str = "sk_test_fakestripe",
    *,
    timeout: float = 5.0,
    max_network_retries: int = 0,
) -> Iterator[stripe.StripeClient]:
    """A real `stripe.StripeClient` pointed at the fake, its HTTP session closed on exit.

    It uses the library's default synchronous client (`RequestsClient`). Retries default to
    0 so a test sees each failure; pass `max_network_retries` to test the library's retries.
    """
    # The library otherwise writes a telemetry id under ~/.config/stripe: not from tests.
    stripe.enable_telemetry = False
    base_url = server if isinstance(server, str) else server.base_url
    http_client = stripe.RequestsClient(timeout=timeout)
    try:
        yield stripe.StripeClient(
            api_key,
            base_addresses={"api": base_url},
            http_client=http_client,
            max_network_retries=max_network_retries,
        )
    finally:
        http_client.close()  # type: ignore[no-untyped-call]  # untyped in stripe 16
