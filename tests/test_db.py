"""Migrations: the models and the Alembic scripts describe the same schema on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine
from sqlmodel import SQLModel

from fundgoal import db, models  # noqa: F401


def test_migrations_match_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert diff == [], f"models and migrations differ; write a migration: {diff}"


def test_schema_is_current_and_upgrade_is_idempotent(engine: Engine) -> None:
    assert db.pending_migrations(engine) == []
    db.upgrade(engine)
    assert db.pending_migrations(engine) == []
    db.ping(engine)


def test_empty_database_has_everything_pending(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = db.make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    pending = db.pending_migrations(engine)
    assert pending
    assert pending[0] == "0001"
    engine.dispose()
