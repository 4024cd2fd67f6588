"""The call limit (fundgoal/watchdog.py) against a path that freezes without closing: a round
trip ends within the limit, the thread, the pool slot and the socket are all given back, and
once the path forwards again new connections are used. Also the per-connection settings the
server is given, and that nothing waits on the database under the snapshot's lock."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, make_url, text
from sqlalchemy.exc import SQLAlchemyError

from fundgoal import db, watchdog
from fundgoal.config import DatabaseTimeouts, Settings
from fundgoal.services.snapshots import SnapshotKeeper
from fundgoal.web.context import AppContext
from tests.faults.proxy import FaultProxy
from tests.faults.serving import SLACK, until
from tests.stripe_support import campaign

pytestmark = pytest.mark.postgres

LIMITS = DatabaseTimeouts(connect=2, pool=2, call=1.5)


@pytest.fixture
def engine(proxied_url: str) -> Iterator[Engine]:
    engine = db.make_engine(proxied_url, timeouts=LIMITS)
    yield engine
    engine.dispose()


def one(engine: Engine, sql: str = "SELECT 1") -> object:
    with engine.connect() as connection:
        return connection.execute(text(sql)).scalar()


def open_watches() -> int:
    return len(watchdog.WATCHDOG._watches)


def test_a_statement_into_a_frozen_path_ends_at_the_call_limit_and_leaks_nothing(
    engine: Engine, proxy: FaultProxy
) -> None:
    assert one(engine) == 1
    watches = open_watches()
    fired = watchdog.WATCHDOG.fired
    with engine.connect() as connection:
        proxy.blackhole()
        started = time.monotonic()
        with pytest.raises(watchdog.DatabaseTimeout):
            connection.execute(text("SELECT 2"))
        seconds = time.monotonic() - started
    assert LIMITS.call is not None
    assert LIMITS.call <= seconds < LIMITS.call + SLACK
    assert watchdog.WATCHDOG.fired == fired + 1
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    assert open_watches() == watches - 1  # the cut connection and its socket are gone

    proxy.restore()
    assert one(engine, "SELECT 3") == 3  # a new connection, through the healed path


def test_a_pooled_connection_is_pinged_under_the_limit_before_use(
    engine: Engine, proxy: FaultProxy
) -> None:
    assert one(engine) == 1  # one connection now idle in the pool
    proxy.blackhole()
    started = time.monotonic()
    # The ping into the frozen path ends at the call limit; the pool then tries one new
    # connection, which the frozen path never answers either (connect timeout).
    with pytest.raises(SQLAlchemyError) as caught:
        one(engine)
    assert db.unavailable(caught.value) is not None
    assert time.monotonic() - started < (LIMITS.call or 0) + LIMITS.connect + SLACK
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    proxy.restore()
    assert one(engine, "SELECT 4") == 4


def test_a_commit_into_a_frozen_path_ends_at_the_call_limit(
    engine: Engine, proxy: FaultProxy, direct: Engine
) -> None:
    campaign(direct, "spring")

    def update_then_freeze_before_commit() -> None:
        with engine.begin() as connection:
            connection.execute(text("UPDATE campaign SET title = 'frozen' WHERE slug = 'spring'"))
            proxy.blackhole()

    with pytest.raises(watchdog.DatabaseTimeout):
        update_then_freeze_before_commit()
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    proxy.restore()
    assert one(direct, "SELECT title FROM campaign WHERE slug = 'spring'") != "frozen"


def test_a_reader_session_holds_no_transaction_and_is_bounded_too(
    engine: Engine, proxy: FaultProxy
) -> None:
    with db.reader(engine) as session:
        assert session.execute(text("SELECT 1")).scalar() == 1
        # Each read commits at once: nothing stays open while the caller waits on Stripe.
        status = session.connection().connection.dbapi_connection.info.transaction_status  # type: ignore[union-attr]
        assert status.name == "IDLE"
        proxy.blackhole()
        with pytest.raises(watchdog.DatabaseTimeout):
            session.execute(text("SELECT 2"))
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]


def test_each_connection_carries_the_server_side_timeouts_and_the_url_wins(
    proxied_url: str,
) -> None:
    limits = DatabaseTimeouts(statement=7, lock=3, idle_in_transaction=11, keepalive=20)
    engine = db.make_engine(proxied_url, timeouts=limits)
    try:
        assert one(engine, "SHOW statement_timeout") == "7s"
        assert one(engine, "SHOW lock_timeout") == "3s"
        assert one(engine, "SHOW idle_in_transaction_session_timeout") == "11s"
        assert one(engine, "SHOW tcp_keepalives_idle") in {"20", "20s"}
    finally:
        engine.dispose()
    # The operator's own options in the URL are applied after ours.
    url = make_url(proxied_url).update_query_dict({"options": "-c lock_timeout=9000"})
    engine = db.make_engine(url.render_as_string(hide_password=False), timeouts=limits)
    try:
        assert one(engine, "SHOW lock_timeout") == "9s"
        assert one(engine, "SHOW statement_timeout") == "7s"
    finally:
        engine.dispose()


def test_migrations_run_without_the_statement_timeout_or_call_limit(engine: Engine) -> None:
    with engine.begin() as connection, watchdog.unbounded(connection):
        connection.exec_driver_sql("SET LOCAL statement_timeout = 0")
        # Longer than the call limit: it would be cut without unbounded().
        connection.execute(text("SELECT pg_sleep(:s)"), {"s": (LIMITS.call or 0) + 0.5})
    db.upgrade(engine)  # and upgrade() does both itself
    assert one(engine, "SHOW statement_timeout") == "10s"  # the next user has it again


def test_nothing_waits_on_the_database_under_the_snapshot_lock(
    proxied_url: str, engine: Engine, proxy: FaultProxy, direct: Engine, tmp_path: Path
) -> None:
    campaign(direct, "spring")
    settings = Settings(database_url=proxied_url, snapshot_file=str(tmp_path / "s.json"))
    keeper: SnapshotKeeper = AppContext.build(settings, engine).snapshots
    assert keeper.refresh() is True
    proxy.blackhole()
    refreshing = threading.Thread(target=keeper.refresh, kwargs={"force": True})
    refreshing.start()
    until(lambda: proxy.swallowed > 0, "the refresh to be waiting on the frozen path", 10)
    # While it waits: readers, the readiness probe and shutdown all go on at once.
    assert keeper.current is not None
    assert keeper.current.json("spring", "en") is not None
    assert keeper.status().loaded
    keeper.close()
    assert refreshing.is_alive(), "close() waited for the refresh"
    refreshing.join(timeout=(LIMITS.call or 0) + LIMITS.connect + SLACK)
    assert not refreshing.is_alive()
    assert keeper.status().error is not None
