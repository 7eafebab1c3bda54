"""Quarantine decisions: a held pump a biomed rejects stays held and off the list waiting for a decision
(``rejected_at``, ``rejected_by``); nothing it sends is stored or acked.

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from smartpump.server.db.types import UTCDateTime

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("quarantined_pumps") as table:
        table.add_column(sa.Column("rejected_at", UTCDateTime(), nullable=True))
        table.add_column(sa.Column("rejected_by", sa.String(64), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("quarantined_pumps") as table:
        table.drop_column("rejected_by")
        table.drop_column("rejected_at")
