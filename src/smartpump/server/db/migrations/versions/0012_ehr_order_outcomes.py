"""EHR orders: the outcome at the pump of every accepted order (declined, refused, expired besides started),
the offer command it travelled in, the newest event stored when it was offered, the pump's code, when it
ended and when the EHR was told.

Revision ID: 0012
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from smartpump.server.db.types import UTCDateTime

revision = "0012"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("ehr_orders") as table:
        table.add_column(sa.Column("command_nonce", sa.String(64), nullable=True))
        table.add_column(sa.Column("offer_event_id", sa.BigInteger(), nullable=True))
        table.add_column(sa.Column("outcome_code", sa.String(64), nullable=False, server_default=""))
        table.add_column(sa.Column("outcome_at", UTCDateTime(), nullable=True))
        table.add_column(sa.Column("outcome_reported_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("ehr_orders") as table:
        table.drop_column("outcome_reported_at")
        table.drop_column("outcome_at")
        table.drop_column("outcome_code")
        table.drop_column("offer_event_id")
        table.drop_column("command_nonce")
