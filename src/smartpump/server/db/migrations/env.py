"""Alembic environment: runs our migrations online against the configured URL."""

from __future__ import annotations

from alembic import context

from smartpump.server.db.engine import make_engine
from smartpump.server.db.schema import METADATA

config = context.config
engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=METADATA, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
