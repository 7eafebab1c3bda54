"""Software packages: the size of the uploaded artefact whose SHA-256 the server computed, who uploaded it,
and the second person's approval; a package is signed only once approved (``status``: ``pending`` or
``approved``). Packages registered before this revision had a typed hash: they wait for approval.

Revision ID: 0016
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from smartpump.server.db.types import UTCDateTime

revision = "0016"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("software_packages") as table:
        table.add_column(sa.Column("size_bytes", sa.BigInteger(), nullable=True))
        table.add_column(sa.Column("status", sa.String(16), nullable=False, server_default="pending"))
        table.add_column(sa.Column("approved_by", sa.String(64), nullable=True))
        table.add_column(sa.Column("approved_at", UTCDateTime(), nullable=True))
        table.alter_column("signed", existing_type=sa.Text(), nullable=True)


def downgrade() -> None:
    """Revert this revision."""
    op.execute("DELETE FROM software_packages WHERE signed IS NULL")
    with op.batch_alter_table("software_packages") as table:
        table.alter_column("signed", existing_type=sa.Text(), nullable=False)
        table.drop_column("approved_at")
        table.drop_column("approved_by")
        table.drop_column("status")
        table.drop_column("size_bytes")
