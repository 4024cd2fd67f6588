"""Bounded waits, configured: the settings and their defaults, what each engine is given, how a
database failure is classified (503 or a bug), and `serve` starting while PostgreSQL is away."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from fundgoal import cli, db, watchdog
from fundgoal.config import ConfigError, DatabaseTimeouts, Settings, load_settings

PG = "postgresql+psycopg://fundgoal:s3cr3t-pw@db.internal:6432/fundgoal"


def test_every_wait_has_a_documented_default() -> None:
    limits = load_settings({}).db_timeouts
    assert limits == DatabaseTimeouts()
    assert (limits.connect, limits.pool, limits.statement, limits.lock) == (5, 5, 10, 5)
    assert (limits.idle_in_transaction, limits.call, limits.keepalive) == (10, 12, 10)
    # The server's own statement timeout answers first; the call limit is the fallback.
    assert limits.call is not None
    assert limits.call > limits.statement
    assert limits.step == 22  # the README's figure for one database step


def test_each_wait_is_configurable() -> None:
    limits = load_settings(
        {
            "FUNDGOAL_DB_CONNECT_TIMEOUT": "3",
            "FUNDGOAL_DB_POOL_TIMEOUT": "1.5",
            "FUNDGOAL_DB_STATEMENT_TIMEOUT": "0",
            "FUNDGOAL_DB_LOCK_TIMEOUT": "2",
            "FUNDGOAL_DB_IDLE_IN_TRANSACTION_TIMEOUT": "30",
            "FUNDGOAL_DB_CALL_TIMEOUT": "0",
            "FUNDGOAL_DB_KEEPALIVE_SECONDS": "20",
        }
    ).db_timeouts
    assert limits == DatabaseTimeouts(
        connect=3, pool=1.5, statement=0, lock=2, idle_in_transaction=30, call=None, keepalive=20
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("FUNDGOAL_DB_CONNECT_TIMEOUT", "1"),  # libpq waits at least 2 s anyway
        ("FUNDGOAL_DB_POOL_TIMEOUT", "0"),
        ("FUNDGOAL_DB_STATEMENT_TIMEOUT", "-1"),
        ("FUNDGOAL_DB_LOCK_TIMEOUT", "soon"),
        ("FUNDGOAL_DB_CALL_TIMEOUT", "nan"),
        ("FUNDGOAL_DB_IDLE_IN_TRANSACTION_TIMEOUT", "inf"),
        ("FUNDGOAL_DB_KEEPALIVE_SECONDS", "0"),
        ("FUNDGOAL_SNAPSHOT_MAX_AGE_SECONDS", "0"),
    ],
)
def test_a_bad_value_names_its_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings({name: value})


def test_the_snapshot_file_lives_with_the_installation(tmp_path: Path) -> None:
    sqlite = load_settings({"FUNDGOAL_DATABASE_URL": f"sqlite:///{tmp_path}/x/fundgoal.db"})
    assert sqlite.snapshot_path() == tmp_path / "x" / "fundgoal-snapshot.json"
    pg = load_settings({"FUNDGOAL_DATABASE_URL": PG, "XDG_STATE_HOME": str(tmp_path)})
    path = pg.snapshot_path()
    assert path is not None
    assert path.parent == tmp_path / "fundgoal"
    assert "s3cr3t" not in str(path)
    other = load_settings({"FUNDGOAL_DATABASE_URL": PG.replace("/fundgoal", "/other")})
    assert other.snapshot_path() != path  # two installations never share one
    systemd = load_settings({"FUNDGOAL_DATABASE_URL": PG, "STATE_DIRECTORY": "/var/lib/fg"})
    assert str(systemd.snapshot_path()).startswith("/var/lib/fg/")
    assert load_settings({"FUNDGOAL_SNAPSHOT_FILE": "off"}).snapshot_path() is None
    assert Settings(database_url=PG).snapshot_path() is None  # built by hand: only if asked


def test_postgres_connections_get_every_bound_and_the_url_wins() -> None:
    args = db._postgres_args(DatabaseTimeouts(), {})
    assert args["connect_timeout"] == 5
    assert (args["keepalives"], args["keepalives_idle"], args["tcp_user_timeout"]) == (1, 10, 20000)
    assert "-c statement_timeout=10000" in args["options"]
    assert "-c lock_timeout=5000" in args["options"]
    assert "-c idle_in_transaction_session_timeout=10000" in args["options"]
    mine = db._postgres_args(
        DatabaseTimeouts(), {"connect_timeout": "30", "options": "-c lock_timeout=0"}
    )
    assert "connect_timeout" not in mine  # the URL's own value stays
    assert mine["options"].endswith("-c lock_timeout=0")  # applied last, so it wins


def test_sqlite_waits_for_a_writer_no_longer_than_the_lock_timeout(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path}/t.db", timeouts=DatabaseTimeouts(lock=1.5))
    try:
        with engine.connect() as connection:
            assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 1500
    finally:
        engine.dispose()


def test_unavailability_is_told_apart_from_bugs() -> None:
    orig = Exception("boom")
    assert db.unavailable(watchdog.DatabaseTimeout("the database did not answer within 2 s"))
    assert db.unavailable(sa_exc.TimeoutError("QueuePool limit reached"))
    assert db.unavailable(sa_exc.OperationalError("SELECT 1", {}, orig))
    lost = sa_exc.DBAPIError("SELECT 1", {}, orig, connection_invalidated=True)
    assert db.unavailable(lost)
    assert db.unavailable(sa_exc.IntegrityError("INSERT", {}, orig)) is None
    assert db.unavailable(sa_exc.ProgrammingError("SELEC", {}, orig)) is None
    assert db.unavailable(ValueError("x")) is None


def test_serve_starts_degraded_when_postgresql_is_away(capsys: pytest.CaptureFixture[str]) -> None:
    url = "postgresql+psycopg://nobody@127.0.0.1:1/none"
    settings = Settings(database_url=url)
    engine = cli._engine(settings, attended=False)
    try:
        assert cli.startup_problems(settings, engine) == []
    finally:
        engine.dispose()
    assert "starting degraded" in capsys.readouterr().err


def test_serve_still_refuses_an_unreadable_sqlite_file(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path}/no/such/dir/fundgoal.db")
    engine = cli._engine(settings, attended=False)
    try:
        problems = cli.startup_problems(settings, engine)
    finally:
        engine.dispose()
    assert any("unreachable" in problem for problem in problems)
