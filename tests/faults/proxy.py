"""A small TCP proxy for fault tests: the app talks to PostgreSQL through it, and a test can
- `cut()` every connection at a chosen moment (a reset: both ends see it at once) and refuse
  new ones until `restore()`;
- `blackhole()` the path: every connection, open or new, stays open but nothing is forwarded
  in either direction. Bytes sent are taken (so the sender's kernel sees them acknowledged)
  and dropped; a close at one end is not passed on either. That is a frozen server or a hung
  middlebox: keepalives see a living peer and the server never receives a statement to time
  out. `restore()` makes new connections forward again; a connection that lived through the
  blackhole stays dead (its byte stream lost data), as it would for real.

The machine's PostgreSQL server is shared with other test runs, so it is never stopped: the
fault lives here, between one app and the server. Bounded (at most MAX_CONNECTIONS at once,
each two pump threads), listening on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

MAX_CONNECTIONS = 64


class Pair:
    """One proxied connection: the app's end (client) and ours to the server (upstream)."""

    def __init__(self, client: socket.socket, upstream: socket.socket | None, holed: bool):
        self.client = client
        self.upstream = upstream
        self.holed = holed  # swallowing everything, for the rest of its life

    def sockets(self) -> list[socket.socket]:
        return [self.client] if self.upstream is None else [self.client, self.upstream]


class FaultProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._pairs: set[Pair] = set()
        self._down = False
        self._holed = False
        self._closing = False
        self.accepted = 0
        self.refused = 0
        self.swallowed = 0  # bytes taken and dropped while blackholed
        self._thread = threading.Thread(target=self._accept_loop, name="fault-proxy", daemon=True)
        self._thread.start()

    # -- control --------------------------------------------------------------------------

    def cut(self) -> None:
        """Drop every open connection at once and refuse new ones until restore()."""
        with self._lock:
            self._down = True
            pairs = list(self._pairs)
            self._pairs.clear()
        for pair in pairs:
            _close(pair.sockets())

    def blackhole(self) -> None:
        """Forward nothing, on every open connection and on new ones, until restore()."""
        with self._lock:
            self._holed = True
            for pair in self._pairs:
                pair.holed = True

    def restore(self) -> None:
        with self._lock:
            self._down = False
            self._holed = False

    @property
    def down(self) -> bool:
        return self._down

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._pairs)

    def close(self) -> None:
        self._closing = True
        self.cut()
        self._thread.join(timeout=5)
        self._listener.close()

    # -- plumbing ---------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._closing:
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                refuse = self._down or len(self._pairs) >= MAX_CONNECTIONS
                holed = self._holed
            if refuse:
                self.refused += 1
                client.close()
                continue
            upstream = None
            if not holed:
                try:
                    upstream = socket.create_connection(self.target, timeout=3)
                except OSError:
                    client.close()
                    continue
                upstream.settimeout(None)
            pair = Pair(client, upstream, holed)
            with self._lock:
                if self._down or self._closing:
                    _close(pair.sockets())
                    continue
                self._pairs.add(pair)
                self.accepted += 1
            # A new connection into the blackhole is accepted (the kernel would) and then
            # hears nothing: only its client end is pumped, into the void.
            threading.Thread(target=self._pump, args=(client, upstream, pair), daemon=True).start()
            if upstream is not None:
                threading.Thread(
                    target=self._pump, args=(upstream, client, pair), daemon=True
                ).start()

    def _pump(self, src: socket.socket, dst: socket.socket | None, pair: Pair) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if pair.holed or dst is None:
                    self.swallowed += len(data)
                    continue
                dst.sendall(data)
        except OSError:
            pass
        if pair.holed:
            # A frozen path passes no close on: only this end goes. The other stays open, as
            # the server's backend would (idle, or idle in a transaction holding its locks).
            _close([src])
            with self._lock:
                if all(_closed(s) for s in pair.sockets()):
                    self._pairs.discard(pair)
            return
        with self._lock:
            self._pairs.discard(pair)
        _close(pair.sockets())


def _closed(sock: socket.socket) -> bool:
    return sock.fileno() == -1


def _close(sockets: list[socket.socket]) -> None:
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            sock.close()


@contextlib.contextmanager
def running_proxy(host: str, port: int) -> Iterator[FaultProxy]:
    proxy = FaultProxy(host, port)
    try:
        yield proxy
    finally:
        proxy.close()
