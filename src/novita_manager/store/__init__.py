"""Durable state: SQLAlchemy models, the database handle and migrations."""
