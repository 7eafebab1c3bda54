"""Library governance: a release policy per facility (how many approvers, in which roles), the role each
approval was given in, and change requests with a severity and the draft that resolves them.

Approvals stored before this revision were all given by pharmacy approvers, so they keep that role.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from smartpump.server.db.types import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "release_policies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("facility_id", sa.Integer(), nullable=False),
        sa.Column("min_approvers", sa.Integer(), nullable=False),
        sa.Column("required_roles", sa.String(length=256), nullable=False),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["facility_id"], ["facilities.id"]),
        sa.ForeignKeyConstraint(["updated_by"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("facility_id"),
    )
    with op.batch_alter_table("library_approvals") as table:
        table.add_column(
            sa.Column("role", sa.String(length=32), nullable=False, server_default="pharmacy_approver")
        )
    with op.batch_alter_table("change_requests") as table:
        table.add_column(sa.Column("severity", sa.String(length=16), nullable=False, server_default="medium"))
        table.add_column(sa.Column("resolved_by_id", sa.Integer(), nullable=True))
        table.create_foreign_key(
            "fk_change_requests_resolved_by_id", "library_versions", ["resolved_by_id"], ["id"]
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("change_requests") as table:
        table.drop_constraint("fk_change_requests_resolved_by_id", type_="foreignkey")
        table.drop_column("resolved_by_id")
        table.drop_column("severity")
    with op.batch_alter_table("library_approvals") as table:
        table.drop_column("role")
    op.drop_table("release_policies")
