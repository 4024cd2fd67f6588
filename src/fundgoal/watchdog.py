"""The application's own time limit on each database round trip (PostgreSQL).

The server's timeouts (statement, lock, idle in transaction) and TCP keepalives end most waits,
but not this one: a server, or something on the path, that still acknowledges packets and answers
nothing. The server then never sees a statement to time out, keepalives see a living peer, and
a thread waits in recv() for ever, holding its pool slot, its request and, on SIGTERM, the
process. So each round trip through a guarded engine is armed with a deadline: a statement
(before_cursor_execute until after_cursor_execute or the error), a commit or rollback and the
pool's reset-on-return (until the connection is checked in), and the pool's pre-ping. A daemon
thread looks at the armed connections ten times a second and shuts down the socket of one past
its deadline. The driver's blocked read returns at once ("server closed the connection"),
SQLAlchemy discards the connection (and the pool's older ones), and the caller gets
DatabaseTimeout, which the web layer answers with 503. No thread, pool slot or request is left
waiting, and the next checkout opens a new connection.

The socket is shut down through a duplicate of its descriptor taken when the connection was
made, never by number: the driver closes its own descriptor when the server goes away, and a
number reused by another socket (a reader's request, say) must never be hit.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import weakref
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, Engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.pool import ConnectionPoolEntry

TICK = 0.1  # seconds between looks: the limit is honoured to within this
KEY = "fundgoal.watch"
FRESH = "fundgoal.fresh"
NOT_ARMED = float("inf")


class DatabaseTimeout(sa_exc.TimeoutError):
    """The database did not answer within the call limit; the connection was discarded."""


class Watch:
    """One pooled connection: our duplicate of its socket and, while a round trip is under
    way, that round trip's deadline."""

    __slots__ = ("__weakref__", "deadline", "fired", "limit", "sock")

    def __init__(self, sock: socket.socket, limit: float | None) -> None:
        self.sock = sock
        self.limit = limit
        self.deadline = NOT_ARMED
        self.fired = False

    def arm(self) -> None:
        # A plain attribute store: atomic under the GIL, cheap enough for every statement.
        if self.limit is not None:
            self.deadline = time.monotonic() + self.limit

    def disarm(self) -> None:
        self.deadline = NOT_ARMED


class Watchdog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watches: set[Watch] = set()
        self._thread: threading.Thread | None = None
        self.fired = 0  # connections cut since start (a test and /metrics can ask)

    def add(self, fileno: int, limit: float | None) -> Watch:
        watch = Watch(socket.socket(fileno=os.dup(fileno)), limit)
        with self._lock:
            self._watches.add(watch)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="fundgoal-db-watchdog", daemon=True
                )
                self._thread.start()
        return watch

    def remove(self, watch: Watch) -> None:
        with self._lock:
            self._watches.discard(watch)
            watch.disarm()
            with contextlib.suppress(OSError):
                watch.sock.close()

    def _run(self) -> None:
        while True:
            time.sleep(TICK)
            now = time.monotonic()
            with self._lock:  # remove() cannot close a socket we are about to shut down
                for watch in self._watches:
                    if watch.deadline <= now and not watch.fired:
                        watch.fired = True
                        self.fired += 1
                        with contextlib.suppress(OSError):
                            watch.sock.shutdown(socket.SHUT_RDWR)


WATCHDOG = Watchdog()


def _watch(info: dict[Any, Any] | None) -> Watch | None:
    found = info.get(KEY) if info is not None else None
    return found if isinstance(found, Watch) else None


def _of(conn: Connection) -> Watch | None:
    if conn.closed or conn.invalidated:
        return None  # asking for .info would try to reconnect
    return _watch(conn.info)


def guard(engine: Engine, limit: float | None) -> None:
    """Bound every round trip on `engine` (a PostgreSQL one) to `limit` seconds, and ping each
    pooled connection before it is handed out, under the same limit."""
    dialect = engine.dialect
    dbapi_error = dialect.loaded_dbapi.Error

    def connected(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        watch = WATCHDOG.add(dbapi_connection.fileno(), limit)
        record.info[KEY] = watch
        record.info[FRESH] = True
        # Whatever path the connection leaves by, our duplicate socket goes with it.
        weakref.finalize(dbapi_connection, WATCHDOG.remove, watch)

    def gone(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        watch = _watch(record.info) if record is not None else None
        if watch is not None:
            WATCHDOG.remove(watch)

    def invalidated(dbapi_connection: Any, record: ConnectionPoolEntry, _exc: Any) -> None:
        gone(dbapi_connection, record)

    def checkout(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        """The pool's pre-ping, done here rather than by pool_pre_ping=True so that it runs
        armed: a ping into a frozen path must end too."""
        if record.info.pop(FRESH, False):
            return  # just connected: nothing to ask
        watch = _watch(record.info)
        if watch is not None:
            watch.arm()
        try:
            dialect.do_ping(dbapi_connection)
        except dbapi_error as exc:
            # Discard it and every older pooled connection, then try once with a new one.
            raise sa_exc.InvalidatePoolError(f"pre-ping failed: {exc}") from exc
        finally:
            if watch is not None:
                watch.disarm()

    def checkin(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        watch = _watch(record.info) if record is not None else None
        if watch is not None:
            watch.disarm()

    def reset(_dbapi_connection: Any, record: ConnectionPoolEntry, _state: Any) -> None:
        watch = _watch(record.info) if record is not None else None
        if watch is not None:
            watch.arm()  # the rollback on return; disarmed at checkin

    def statement(conn: Connection, *_: Any) -> None:
        watch = _of(conn)
        if watch is not None:
            watch.arm()

    def done(conn: Connection, *_: Any) -> None:
        watch = _of(conn)
        if watch is not None:
            watch.disarm()

    def failed(context: ExceptionContext) -> BaseException | None:
        watch = _of(context.connection) if context.connection is not None else None
        if watch is None:
            return None
        watch.disarm()
        if not watch.fired:
            return None
        context.is_disconnect = True  # discard it, and the pool's older connections
        return DatabaseTimeout(f"the database did not answer within {limit:g} s")

    event.listen(engine, "connect", connected)
    event.listen(engine, "checkout", checkout)
    event.listen(engine, "checkin", checkin)
    event.listen(engine, "reset", reset)
    event.listen(engine, "invalidate", invalidated)  # before the driver closes it
    event.listen(engine, "close", gone)
    event.listen(engine, "detach", gone)
    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "after_cursor_execute", done)
    event.listen(engine, "commit", statement)  # disarmed at checkin
    event.listen(engine, "rollback", statement)
    event.listen(engine, "handle_error", failed)


@contextlib.contextmanager
def unbounded(conn: Connection) -> Iterator[None]:
    """No call limit on `conn` for a while (migrations: an index build may take minutes)."""
    watch = _of(conn)
    if watch is None:
        yield
        return
    limit, watch.limit = watch.limit, None
    watch.disarm()
    try:
        yield
    finally:
        watch.limit = limit
