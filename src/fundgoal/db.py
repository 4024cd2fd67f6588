"""Engine, sessions and migrations (Alembic, scripts under fundgoal/migrations/).

One transaction per request or per event: callers open `transaction(engine)`, services and
stores only use the session they are given and never commit.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.pool import ConnectionPoolEntry
from sqlmodel import Session

from . import watchdog
from .config import DatabaseTimeouts

MIGRATIONS = Path(__file__).parent / "migrations"
DEFAULT_TIMEOUTS = DatabaseTimeouts()


def make_engine(
    url: str,
    *,
    pool_size: int = 5,
    max_overflow: int = 10,
    timeouts: DatabaseTimeouts = DEFAULT_TIMEOUTS,
) -> Engine:
    """An engine whose every wait ends (README, "Bounded waits"): see DatabaseTimeouts."""
    if url.startswith("sqlite"):
        if url.startswith("sqlite:///:memory:") or url == "sqlite://":
            raise ValueError("use a file database: the app and its workers need to share it")
        # The busy timeout is SQLite's lock timeout: wait that long for another writer (another
        # worker, the CLI), then fail (503) instead of queueing without end.
        busy = timeouts.lock if timeouts.lock > 0 else 30.0
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": busy})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    parsed = make_url(url)
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=timeouts.pool,
        # Pre-ping is done by watchdog.guard, armed: a restarted PostgreSQL costs one failed
        # ping, not a 500, and a frozen one costs at most one call limit.
        pool_pre_ping=False,
        pool_recycle=1800,
        connect_args=_postgres_args(timeouts, dict(parsed.query)),
    )
    watchdog.guard(engine, timeouts.call)
    return engine


def _postgres_args(timeouts: DatabaseTimeouts, query: dict[str, Any]) -> dict[str, Any]:
    """libpq parameters for bounded waits. What the URL already says wins: connect_args would
    override the URL's query string, so ours are only defaults."""

    def ms(seconds: float) -> int:
        return round(seconds * 1000)

    keepalive = timeouts.keepalive
    interval = max(1, keepalive // 2)
    server = {
        "statement_timeout": ms(timeouts.statement),
        "lock_timeout": ms(timeouts.lock),
        "idle_in_transaction_session_timeout": ms(timeouts.idle_in_transaction),
        # The server's side of keepalive: a backend whose client vanished ends too.
        "tcp_keepalives_idle": keepalive,
        "tcp_keepalives_interval": interval,
        "tcp_keepalives_count": 3,
    }
    options = " ".join(f"-c {name}={value}" for name, value in server.items())
    if query.get("options"):
        options = f"{options} {query['options']}"  # later -c settings win
    ours: dict[str, Any] = {
        "connect_timeout": max(2, math.ceil(timeouts.connect)),  # libpq: whole seconds, >= 2
        "keepalives": 1,
        "keepalives_idle": keepalive,
        "keepalives_interval": interval,
        "keepalives_count": 3,
        # Data sent but not acknowledged for this long ends the connection (Linux).
        "tcp_user_timeout": keepalive * 2000,
    }
    args = {key: value for key, value in ours.items() if key not in query}
    args["options"] = options
    return args


def _sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers (the widget's version check) run beside one writer, across processes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """A session whose work commits on success and rolls back on any exception."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def reader(engine: Engine) -> Session:
    """A session for reads interleaved with slow work that is not the database's (Stripe calls,
    a CSV export streamed to a slow client): each read commits at once, so no transaction is
    left open, idle, holding a snapshot and its locks while we wait on something else
    (PostgreSQL would end it after idle_in_transaction_session_timeout)."""
    return Session(engine.execution_options(isolation_level="AUTOCOMMIT"))


def unavailable(exc: BaseException) -> str | None:
    """Why the database could not do this just now (answer 503: retrying later can work), or
    None when the error is not about availability (a bug: 500)."""
    if isinstance(exc, watchdog.DatabaseTimeout):
        return str(exc)
    if isinstance(exc, sa_exc.TimeoutError):
        return "no database connection became free in time"
    if isinstance(exc, sa_exc.DBAPIError):
        code = getattr(exc.orig, "sqlstate", None)
        if code == "55P03":
            return "a record stayed locked longer than the lock timeout"
        if code == "57014":
            return "a query ran longer than the statement timeout"
        if exc.connection_invalidated or isinstance(exc, sa_exc.OperationalError):
            # Lost or refused connections, server shutdown, SQLite busy past its timeout.
            return "the database is unreachable or busy"
    return None


def _alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # ConfigParser interpolation would eat a '%' in a password.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(engine: Engine) -> None:
    """Apply every pending migration (idempotent).

    Without the statement timeout or call limit (an index build may take minutes), but with
    the lock timeout: a migration queued behind a long transaction would otherwise stall every
    webhook queued behind it; it gives up instead, and is simply run again."""
    config = _alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection, watchdog.unbounded(connection):
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("SET LOCAL statement_timeout = 0")
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


@cache
def _script() -> ScriptDirectory:
    # Read once per process: every worker asks when the database first answers.
    return ScriptDirectory.from_config(_alembic_config("sqlite://"))


def pending_migrations(engine: Engine) -> list[str]:
    """Revisions not yet applied, oldest first; empty when the schema is current."""
    script = _script()
    with engine.connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
    heads = set(script.get_heads())
    if current == heads:
        return []
    pending = []
    for revision in script.walk_revisions():
        if revision.revision in current:
            break
        pending.append(revision.revision)
    return list(reversed(pending))


def ping(engine: Engine) -> None:
    """Raise if the database cannot answer a trivial query."""
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
