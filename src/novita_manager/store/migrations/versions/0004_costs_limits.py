"""Costs and limits: billed periods, the open period and the limits of each instance, and the
cause of each operation request.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02

Existing rows get no limits and no billed time: cost to date counts from the upgrade on (an
instance running at the upgrade opens its period at the first status sync after it).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def columns() -> list[sa.Column[object]]:
    """The new instance columns (fresh objects: a Column belongs to one table)."""
    return [
        sa.Column("billing_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("billing_rate", sa.Float(), nullable=True),
        sa.Column("billed_seconds", sa.Float(), server_default="0", nullable=False),
        sa.Column("billed_cost", sa.Float(), server_default="0", nullable=False),
        sa.Column("auto_stop_after", sa.Float(), nullable=True),
        sa.Column("auto_delete_after", sa.Float(), nullable=True),
        sa.Column("idle_stop_after", sa.Float(), nullable=True),
        sa.Column("max_cost", sa.Float(), nullable=True),
        sa.Column("idle_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("gpu_utilization", sa.Float(), nullable=True),
        sa.Column("limit_fired", sa.String(length=100), nullable=True),
        sa.Column("expiry_warned", sa.String(length=100), nullable=True),
        sa.Column("operation_cause", sa.String(length=20), nullable=True),
    ]


def upgrade() -> None:
    op.create_table(
        "billing_periods",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("instance_id", sa.String(length=40), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rate", sa.Float(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("cost", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["instances.id"],
            name=op.f("fk_billing_periods_instance_id_instances"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_periods")),
        sa.UniqueConstraint(
            "instance_id", "started_at", name=op.f("uq_billing_periods_instance_id")
        ),
    )
    op.create_index(
        op.f("ix_billing_periods_ended_at"), "billing_periods", ["ended_at"], unique=False
    )
    with op.batch_alter_table("instances") as batch:
        for column in columns():
            batch.add_column(column)
    with op.batch_alter_table("operation_requests") as batch:
        batch.add_column(sa.Column("cause", sa.String(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("operation_requests") as batch:
        batch.drop_column("cause")
    with op.batch_alter_table("instances") as batch:
        for column in reversed(columns()):
            batch.drop_column(column.name)
    op.drop_index(op.f("ix_billing_periods_ended_at"), table_name="billing_periods")
    op.drop_table("billing_periods")
