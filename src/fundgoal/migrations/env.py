"""Alembic environment: runs on the connection db.upgrade() hands over, or on the URL."""

from alembic import context
from sqlalchemy import create_engine
from sqlmodel import SQLModel

from fundgoal import models  # noqa: F401  (registers the tables on SQLModel.metadata)

config = context.config
target_metadata = SQLModel.metadata


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(
            connection=connection, target_metadata=target_metadata, render_as_batch=True
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as conn:
        # render_as_batch: SQLite can only ALTER a table by copying it; Alembic's batch mode
        # does that for us and is a no-op difference on PostgreSQL.
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        conn.commit()


run()
