"""Channel state: the dose the channel runs at, beside its drug and rate (the dashboard shows it), kept
as the exact decimal text the pump sent.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("channel_states") as table:
        table.add_column(sa.Column("dose", sa.String(length=40), nullable=True))
        table.add_column(sa.Column("dose_unit", sa.String(length=32), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("channel_states") as table:
        table.drop_column("dose_unit")
        table.drop_column("dose")
