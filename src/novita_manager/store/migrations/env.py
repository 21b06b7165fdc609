"""Alembic environment: always online, on the connection that `store.migrate` passes in."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from novita_manager.store.models import Base

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("run migrations through novita_manager.store.migrate.upgrade")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
