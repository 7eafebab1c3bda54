"""Pump configurations: versions per facility and model, the pump's active version, configuration deployments.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from smartpump.server.db.types import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_DEPLOYMENT_FK = "fk_deployments_configuration_id_configuration_versions"


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "configuration_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("facility_id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("settings", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("released_by", sa.Integer(), nullable=True),
        sa.Column("released_at", UTCDateTime(), nullable=True),
        sa.Column("signed_document", sa.Text(), nullable=True),
        sa.Column("key_id", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["facility_id"], ["facilities.id"], name=op.f("fk_configuration_versions_facility_id_facilities")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_configuration_versions_created_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["released_by"], ["users.id"], name=op.f("fk_configuration_versions_released_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_configuration_versions")),
        sa.UniqueConstraint(
            "facility_id",
            "model",
            "version",
            name=op.f("uq_configuration_versions_facility_id_model_version"),
        ),
    )
    with op.batch_alter_table("configuration_versions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_configuration_versions_facility_id"), ["facility_id"], unique=False
        )
    op.add_column("pumps", sa.Column("configuration_version", sa.Integer(), nullable=True))
    reference = sa.ForeignKey("configuration_versions.id", name=op.f(_DEPLOYMENT_FK))
    if op.get_bind().dialect.name == "sqlite":
        # SQLite cannot add a constraint to an existing table, and a copy-and-move of ``deployments``
        # would cascade deletes into its targets: the reference is declared with the column instead
        # (ALTER TABLE ... ADD COLUMN ... REFERENCES), and SQLite drops such a column in place.
        op.add_column(
            "deployments",
            sa.Column("configuration_id", sa.Integer(), reference, nullable=True),
            inline_references=True,
        )
    else:
        op.add_column("deployments", sa.Column("configuration_id", sa.Integer(), nullable=True))
        op.create_foreign_key(
            op.f(_DEPLOYMENT_FK), "deployments", "configuration_versions", ["configuration_id"], ["id"]
        )


def downgrade() -> None:
    """Revert this revision."""
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(op.f(_DEPLOYMENT_FK), "deployments", type_="foreignkey")
    op.drop_column("deployments", "configuration_id")
    op.drop_column("pumps", "configuration_version")
    with op.batch_alter_table("configuration_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_configuration_versions_facility_id"))
    op.drop_table("configuration_versions")
