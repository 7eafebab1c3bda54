"""Events: the patient and order indexes hold only the events that carry one (most events carry neither,
and every index an event enters costs ingest time).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_KEYS = ("patient_id", "order_id")


def upgrade() -> None:
    """Apply this revision."""
    for column in _KEYS:
        op.drop_index(f"ix_events_{column}", table_name="events")
        where = sa.text(f"{column} IS NOT NULL")
        op.create_index(f"ix_events_{column}", "events", [column], postgresql_where=where, sqlite_where=where)


def downgrade() -> None:
    """Revert this revision."""
    for column in _KEYS:
        op.drop_index(f"ix_events_{column}", table_name="events")
        op.create_index(f"ix_events_{column}", "events", [column])
