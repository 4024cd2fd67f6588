"""Shared fixtures: real SQLite and real PostgreSQL, each migrated with the real migrations.

`engine` runs a test once per database. PostgreSQL is the machine's server (127.0.0.1:5432,
user postgres); each test run makes its own database and drops it at the end. When the server is
unreachable the PostgreSQL half is skipped with the reason, except in CI (CI=true), where that
is a failure: CI must prove both databases.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session

from fundgoal import db
from fundgoal.config import Secret, Settings
from fundgoal.payments import testmode
from tests.logcheck import register

# The payment tests' fixtures (the fake Stripe server, an app pointed at it).
# And the session-wide check that no configured secret reaches a log line or captured output.
pytest_plugins = ["tests.logcheck", "tests.stripe_support"]

PG_SERVER = os.environ.get("FUNDGOAL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI") == "true"
# FUNDGOAL_SECRET_KEY of the tests' settings: distinctive, so a hit in a log is a leak.
TEST_SECRET_KEY = "fgsk-tests-4f1d9c2ab7e8350d6b1a9e77c3f2d840"
register(TEST_SECRET_KEY, testmode.webhook_secret(TEST_SECRET_KEY))
TABLES = (
    "audit_log, login_attempt, processed_event, ledger_entry, donation_attempt, admin, campaign"
)


def _pg_unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"PostgreSQL is required in CI but {reason}")
    pytest.skip(f"PostgreSQL not reachable at {PG_SERVER}: {reason}")


@pytest.fixture(scope="session", autouse=True)
def state_directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """`fundgoal serve` on PostgreSQL keeps its widget snapshot in the state directory
    (config.default_snapshot_file): the servers tests start use a throw-away one."""
    path = tmp_path_factory.mktemp("state")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_STATE_HOME", str(path))
        patch.delenv("STATE_DIRECTORY", raising=False)
        yield path


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test run."""
    name = f"fundgoal_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(PG_SERVER, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        _pg_unavailable(str(exc).splitlines()[0])
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_SERVER.rsplit("/", 1)[0]
    url = f"{base.replace('postgresql://', 'postgresql+psycopg://', 1)}/{name}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    engine.dispose()
    yield url
    with psycopg.connect(PG_SERVER, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_engine(pg_url: str) -> Iterator[Engine]:
    engine = db.make_engine(pg_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file; each test copies it instead of migrating again."""
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    engine = db.make_engine(f"sqlite:///{path}")
    db.upgrade(engine)
    engine.dispose()
    return path


def clean_postgres(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """A migrated, empty database URL: once a SQLite file, once the PostgreSQL test database."""
    if request.param == "sqlite":
        path = tmp_path / "fundgoal.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite:///{path}"
    pg_engine: Engine = request.getfixturevalue("pg_engine")
    clean_postgres(pg_engine)
    return pg_engine.url.render_as_string(hide_password=False)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = db.make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with db.transaction(engine) as s:
        yield s


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        env="test",
        public_url="http://testserver",
        secret_key=Secret(TEST_SECRET_KEY),
    )
