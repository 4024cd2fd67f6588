"""Serve an ASGI app with uvicorn on 127.0.0.1 in a background thread, for real browsers.

Generic on purpose: the loader's tests serve small fixture apps with it today, and the browser
tests of the real fundgoal app will serve `create_app(settings)` the same way.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

START_TIMEOUT = 10.0  # seconds; uvicorn starts in well under one on a loaded CI machine


@contextmanager
def serve_app(
    app: Any, *, lifespan: str = "auto", host: str = "127.0.0.1", **options: Any
) -> Iterator[str]:
    """Run `app` until the block exits; yields its base URL, e.g. `http://127.0.0.1:54321`.

    `host` may be any loopback address (127.0.0.2 is another site to a browser than 127.0.0.1).

    The socket is bound here, before the thread starts, so the port is known and free (no
    race between picking a port and binding it). `options` go to uvicorn.Config (`http="h11"`). `ws="none"`: nothing here uses websockets,
    and importing them would only add deprecation warnings to a `-W error` run.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, ws="none", lifespan=lifespan, **options
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"uvicorn-{port}", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError(f"uvicorn did not start on port {port}")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(START_TIMEOUT)
        sock.close()
        if thread.is_alive():  # pragma: no cover - a hung server is a bug worth failing on
            raise RuntimeError(f"uvicorn on port {port} did not stop")
