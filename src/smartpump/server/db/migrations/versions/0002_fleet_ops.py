"""Connected fleet: pump link state, seq gaps, signed commands, software packages, deployments.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from smartpump.server.db.types import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "software_packages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("signed", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_software_packages")),
        sa.UniqueConstraint("model", "version", name=op.f("uq_software_packages_model_version")),
    )
    op.create_table(
        "deployments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("facility_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("library_version_id", sa.Integer(), nullable=True),
        sa.Column("package_id", sa.Integer(), nullable=True),
        sa.Column("target_kind", sa.String(length=16), nullable=False),
        sa.Column("target_value", sa.String(length=64), nullable=True),
        sa.Column("waves", sa.Text(), nullable=False),
        sa.Column("pause_s", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("current_wave", sa.Integer(), nullable=False),
        sa.Column("next_wave_at", UTCDateTime(), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["facility_id"], ["facilities.id"], name=op.f("fk_deployments_facility_id_facilities")
        ),
        sa.ForeignKeyConstraint(
            ["library_version_id"],
            ["library_versions.id"],
            name=op.f("fk_deployments_library_version_id_library_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["package_id"], ["software_packages.id"], name=op.f("fk_deployments_package_id_software_packages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deployments")),
    )
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_deployments_facility_id"), ["facility_id"], unique=False)

    op.create_table(
        "pump_links",
        sa.Column("pump_id", sa.Integer(), nullable=False),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.Column("status_changed_at", UTCDateTime(), nullable=True),
        sa.Column("max_seq", sa.BigInteger(), nullable=False),
        sa.Column("skewed_events", sa.Integer(), nullable=False),
        sa.Column("last_hello_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["pump_id"], ["pumps.id"], name=op.f("fk_pump_links_pump_id_pumps"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("pump_id", name=op.f("pk_pump_links")),
    )
    op.create_table(
        "seq_gaps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pump_id", sa.Integer(), nullable=False),
        sa.Column("first_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("missing", sa.BigInteger(), nullable=False),
        sa.Column("explained", sa.Boolean(), nullable=False),
        sa.Column("detected_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pump_id"], ["pumps.id"], name=op.f("fk_seq_gaps_pump_id_pumps"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_seq_gaps")),
        sa.UniqueConstraint("pump_id", "first_seq", name=op.f("uq_seq_gaps_pump_id_first_seq")),
    )
    with op.batch_alter_table("seq_gaps", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_seq_gaps_pump_id"), ["pump_id"], unique=False)

    op.create_table(
        "deployment_targets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("pump_id", sa.Integer(), nullable=False),
        sa.Column("wave", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name=op.f("fk_deployment_targets_deployment_id_deployments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["pump_id"], ["pumps.id"], name=op.f("fk_deployment_targets_pump_id_pumps"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deployment_targets")),
        sa.UniqueConstraint(
            "deployment_id", "pump_id", name=op.f("uq_deployment_targets_deployment_id_pump_id")
        ),
    )
    with op.batch_alter_table("deployment_targets", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_deployment_targets_deployment_id"), ["deployment_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_deployment_targets_pump_id"), ["pump_id"], unique=False)

    op.create_table(
        "pump_commands",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pump_id", sa.Integer(), nullable=False),
        sa.Column("counter", sa.BigInteger(), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("command", sa.String(length=64), nullable=False),
        sa.Column("signed", sa.Text(), nullable=False),
        sa.Column("issued_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("issued_by", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.Column("result_at", UTCDateTime(), nullable=True),
        sa.Column("result_code", sa.String(length=64), nullable=True),
        sa.Column("result_reason", sa.Text(), nullable=True),
        sa.Column("deployment_target_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["deployment_target_id"],
            ["deployment_targets.id"],
            name=op.f("fk_pump_commands_deployment_target_id_deployment_targets"),
        ),
        sa.ForeignKeyConstraint(
            ["pump_id"], ["pumps.id"], name=op.f("fk_pump_commands_pump_id_pumps"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pump_commands")),
        sa.UniqueConstraint("nonce", name=op.f("uq_pump_commands_nonce")),
        sa.UniqueConstraint("pump_id", "counter", name=op.f("uq_pump_commands_pump_id_counter")),
    )
    with op.batch_alter_table("pump_commands", schema=None) as batch_op:
        batch_op.create_index("ix_pump_commands_status", ["status"], unique=False)


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("pump_commands", schema=None) as batch_op:
        batch_op.drop_index("ix_pump_commands_status")

    op.drop_table("pump_commands")
    with op.batch_alter_table("deployment_targets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deployment_targets_pump_id"))
        batch_op.drop_index(batch_op.f("ix_deployment_targets_deployment_id"))

    op.drop_table("deployment_targets")
    with op.batch_alter_table("seq_gaps", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_seq_gaps_pump_id"))

    op.drop_table("seq_gaps")
    op.drop_table("pump_links")
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deployments_facility_id"))

    op.drop_table("deployments")
    op.drop_table("software_packages")
