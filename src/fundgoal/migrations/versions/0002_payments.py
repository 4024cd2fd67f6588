"""payments: event outcomes, subscriptions on donation attempts

Revision ID: 0002_payments
Revises: 0001
Create Date: 2026-11-24 17:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0002_payments"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("processed_event", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True)
        )
        batch_op.add_column(
            sa.Column("detail", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True)
        )
    with op.batch_alter_table("donation_attempt", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "subscription_id", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True
            )
        )
        batch_op.add_column(sa.Column("ended_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_donation_attempt_subscription_id"), ["subscription_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("donation_attempt", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_donation_attempt_subscription_id"))
        batch_op.drop_column("ended_at")
        batch_op.drop_column("subscription_id")
    with op.batch_alter_table("processed_event", schema=None) as batch_op:
        batch_op.drop_column("detail")
        batch_op.drop_column("outcome")
