"""What the origin sees: a relay between nginx and `fundgoal serve` that records every request
nginx sends upstream (method, target, headers) with the status the origin answered.

The app keeps no access log (README: the proxy keeps them), and its /metrics counts by route
family only; the relay counts per URL, and it records a request before nginx has its answer,
so a test that got its response can read the count without waiting. It can also play an origin
that went away (`cut`: stop listening and drop every connection) and came back (`restore`).
Listens on 127.0.0.1 only; one asyncio loop in a background thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from .http1 import read_request, read_response

CALL_TIMEOUT = 10.0


@dataclass(frozen=True)
class Exchange:
    method: str
    target: str
    headers: dict[str, str]
    status: int


class OriginTap:
    def __init__(self, origin_port: int) -> None:
        self.origin_port = origin_port
        self._exchanges: list[Exchange] = []
        self._lock = threading.Lock()
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="origin-tap")
        self._thread.daemon = True
        self._thread.start()
        self.port = 0
        self._call(self._listen())

    # -- what the tests read ----------------------------------------------------------------

    def exchanges(self, target: str | None = None) -> list[Exchange]:
        with self._lock:
            seen = list(self._exchanges)
        return [e for e in seen if target is None or e.target == target]

    def count(self, target: str) -> int:
        return len(self.exchanges(target))

    def reset(self) -> None:
        with self._lock:
            self._exchanges.clear()

    # -- faults ---------------------------------------------------------------------------

    def cut(self) -> None:
        """The origin is gone: connections refused, open ones dropped."""
        self._call(self._cut())

    def restore(self) -> None:
        self._call(self._listen())

    def close(self) -> None:
        self._call(self._cut())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(CALL_TIMEOUT)
        self._loop.close()

    # -- plumbing -------------------------------------------------------------------------

    def _call(self, coroutine: object) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(CALL_TIMEOUT)  # type: ignore[arg-type]

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    async def _relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self._writers.add(client_w)
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            while True:
                request = await read_request(client_r)
                if request is None:
                    break
                if upstream is None:
                    upstream = await asyncio.open_connection("127.0.0.1", self.origin_port)
                    self._writers.add(upstream[1])
                up_r, up_w = upstream
                up_w.write(request.head + request.wire_body)
                await up_w.drain()
                response = await read_response(up_r, request.method)
                with self._lock:
                    self._exchanges.append(
                        Exchange(request.method, request.target, request.headers, response.status)
                    )
                client_w.write(response.head + response.wire_body)
                await client_w.drain()
                if response.headers.get("connection", "").lower() == "close":
                    break
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            pass  # a dropped connection (or a cut) ends the relay; nginx sees the close
        finally:
            for writer in (client_w, upstream[1] if upstream else None):
                if writer is not None:
                    self._writers.discard(writer)
                    writer.close()
                    with contextlib.suppress(Exception):
                        await writer.wait_closed()


@contextlib.contextmanager
def running_tap(origin_port: int) -> Iterator[OriginTap]:
    tap = OriginTap(origin_port)
    try:
        yield tap
    finally:
        tap.close()
