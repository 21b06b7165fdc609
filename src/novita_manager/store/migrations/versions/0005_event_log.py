"""The events log: one ordered number over status changes and webhook events (issue 18).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

`event_log` rows are written by triggers on the inserts of `instance_events` (status changes)
and `webhook_deliveries` (webhook events), so every writer feeds the log in its own transaction.
`seq` orders them as clients see them, in commit order: the SQLite trigger gives it at once
(one writer at a time); on PostgreSQL it is given after commit by `store.events.sequence`, so
writers never wait for each other (store/events.py says why). Existing history and deliveries
are copied into the log in their order of creation, so a client can replay the past.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

POSTGRESQL_FUNCTION = """
CREATE FUNCTION event_log_append() RETURNS trigger AS $$
BEGIN
    IF TG_TABLE_NAME = 'instance_events' THEN
        INSERT INTO event_log (instance_id, history_id) VALUES (NEW.instance_id, NEW.id);
    ELSE
        INSERT INTO event_log (instance_id, delivery_id) VALUES (NEW.instance_id, NEW.id);
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql
"""
POSTGRESQL_TRIGGER = (
    "CREATE TRIGGER event_log_from_{table} AFTER INSERT ON {table} "
    "FOR EACH ROW EXECUTE FUNCTION event_log_append()"
)
# One writer at a time on SQLite: the next number is given in the writer's transaction.
SQLITE_TRIGGER = (
    "CREATE TRIGGER event_log_from_{table} AFTER INSERT ON {table} BEGIN "
    "INSERT INTO event_log (instance_id, {column}, seq) VALUES (NEW.instance_id, NEW.id, "
    "(SELECT COALESCE(MAX(seq), 0) + 1 FROM event_log)); END"
)
SOURCES = {"instance_events": "history_id", "webhook_deliveries": "delivery_id"}


def upgrade() -> None:
    op.create_table(
        "event_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("instance_id", sa.String(length=40), nullable=False),
        sa.Column("history_id", sa.Integer(), nullable=True),
        sa.Column("delivery_id", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["webhook_deliveries.id"],
            name=op.f("fk_event_log_delivery_id_webhook_deliveries"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["history_id"],
            ["instance_events.id"],
            name=op.f("fk_event_log_history_id_instance_events"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["instances.id"],
            name=op.f("fk_event_log_instance_id_instances"),
            ondelete="CASCADE",
        ),
        sa.Column("seq", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_log")),
        sa.UniqueConstraint("seq", name=op.f("uq_event_log_seq")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_event_log_instance_id"), "event_log", ["instance_id"])
    # The past, in order of creation (a status change before the webhook it fired).
    op.execute(
        "INSERT INTO event_log (instance_id, history_id, delivery_id) "
        "SELECT instance_id, history_id, delivery_id FROM ("
        " SELECT instance_id, id AS history_id, NULL AS delivery_id, at AS at, 0 AS kind"
        " FROM instance_events"
        " UNION ALL"
        " SELECT instance_id, NULL, id, created_at, 1 FROM webhook_deliveries"
        ") AS past ORDER BY at, kind"
    )
    op.execute("UPDATE event_log SET seq = id")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POSTGRESQL_FUNCTION)
        for table in SOURCES:
            op.execute(POSTGRESQL_TRIGGER.format(table=table))
    else:
        for table, column in SOURCES.items():
            op.execute(SQLITE_TRIGGER.format(table=table, column=column))


def downgrade() -> None:
    for table in SOURCES:
        op.execute(
            f"DROP TRIGGER IF EXISTS event_log_from_{table}"
            + (f" ON {table}" if op.get_bind().dialect.name == "postgresql" else "")
        )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS event_log_append()")
    op.drop_index(op.f("ix_event_log_instance_id"), table_name="event_log")
    op.drop_table("event_log")
