"""Operation requests as rows: a per-instance request log replaces the single requested slot.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02

A request the API had recorded in `requested_operation` before the upgrade becomes request #1,
pending, so an upgrade in the middle of work loses nothing.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "operation_requests",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("instance_id", sa.String(length=40), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("operation", sa.String(length=20), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("joins_seq", sa.Integer(), nullable=True),
        sa.Column("webhook_url", sa.Text(), nullable=True),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["instances.id"],
            name=op.f("fk_operation_requests_instance_id_instances"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operation_requests")),
        sa.UniqueConstraint("instance_id", "seq", name=op.f("uq_operation_requests_instance_id")),
    )
    with op.batch_alter_table("instances") as batch:
        batch.add_column(sa.Column("request_seq", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(
            sa.Column("consumed_seq", sa.Integer(), server_default="0", nullable=False)
        )
    op.execute(
        "INSERT INTO operation_requests "
        "(instance_id, seq, operation, state, webhook_url, requested_at) "
        "SELECT id, 1, requested_operation, 'pending', requested_webhook_url, updated_at "
        "FROM instances WHERE requested_operation IS NOT NULL"
    )
    op.execute("UPDATE instances SET request_seq = 1 WHERE requested_operation IS NOT NULL")
    with op.batch_alter_table("instances") as batch:
        batch.drop_column("requested_operation")
        batch.drop_column("requested_webhook_url")


def downgrade() -> None:
    with op.batch_alter_table("instances") as batch:
        batch.add_column(sa.Column("requested_operation", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("requested_webhook_url", sa.Text(), nullable=True))
    with op.batch_alter_table("instances") as batch:
        batch.drop_column("consumed_seq")
        batch.drop_column("request_seq")
    op.drop_table("operation_requests")
