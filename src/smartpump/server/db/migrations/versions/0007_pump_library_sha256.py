"""Pumps: the content hash (SHA-256 of the canonical bytes) of the library each pump reports active, its
identity beside the version number (a pump is current only when the hash matches the release).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("pumps") as table:
        table.add_column(sa.Column("library_sha256", sa.String(length=64), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("pumps") as table:
        table.drop_column("library_sha256")
