"""Spot life: regions, price cap, reclaim policy and the recovery under way on each instance.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

Every new column is nullable or has a server default that means today's behaviour (`on_reclaim`
"none", no price cap, no other regions), so existing rows are unaffected by the upgrade.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def columns() -> list[sa.Column[object]]:
    """The new columns (fresh objects: a Column belongs to one table)."""
    return [
        sa.Column("regions", sa.JSON(), nullable=True),
        sa.Column("max_price_per_hour", sa.Float(), nullable=True),
        sa.Column("fallback_to_on_demand", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("requested_billing_mode", sa.String(length=20), nullable=True),
        sa.Column("cluster_name", sa.String(length=100), nullable=True),
        sa.Column("on_reclaim", sa.String(length=20), server_default="none", nullable=False),
        sa.Column("max_recoveries", sa.Integer(), server_default="3", nullable=False),
        sa.Column("recoveries", sa.Integer(), server_default="0", nullable=False),
        sa.Column("recovery", sa.String(length=20), nullable=True),
        sa.Column("last_recovery_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("replaces_novita_id", sa.String(length=64), nullable=True),
        sa.Column("spot_status", sa.String(length=20), nullable=True),
        sa.Column("reclaim_at", sa.DateTime(timezone=True), nullable=True),
    ]


def upgrade() -> None:
    with op.batch_alter_table("instances") as batch:
        for column in columns():
            batch.add_column(column)


def downgrade() -> None:
    with op.batch_alter_table("instances") as batch:
        for column in reversed(columns()):
            batch.drop_column(column.name)
