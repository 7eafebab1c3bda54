"""EHR orders keep their prescriber: the ordering provider's ID and name (ORC-12, FHIR requester), empty
for orders stored before this revision and for orders that name none.

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("ehr_orders") as table:
        table.add_column(sa.Column("prescriber_id", sa.String(64), nullable=False, server_default=""))
        table.add_column(sa.Column("prescriber_name", sa.String(128), nullable=False, server_default=""))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("ehr_orders") as table:
        table.drop_column("prescriber_name")
        table.drop_column("prescriber_id")
