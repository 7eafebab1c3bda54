"""Fleet view: ``pump_views`` (each pump's heartbeat status), ``active_alarms`` (what each pump shows now)
and the volume and time left a heartbeat reports per channel.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from smartpump.server.db.types import UTCDateTime

revision = "0010"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "pump_views",
        sa.Column("pump_id", sa.Integer(), nullable=False),
        sa.Column("applied_seq", sa.BigInteger(), nullable=False),
        sa.Column("heartbeat_at", UTCDateTime(), nullable=True),
        sa.Column("pump_clock", UTCDateTime(), nullable=True),
        sa.Column("skew_s", sa.Numeric(precision=14, scale=3), nullable=True),
        sa.Column("interval_s", sa.Integer(), nullable=True),
        sa.Column("battery_percent", sa.Integer(), nullable=True),
        sa.Column("on_ac", sa.Boolean(), nullable=True),
        sa.Column("library_version", sa.BigInteger(), nullable=True),
        sa.Column("library_sha256", sa.String(length=64), nullable=True),
        sa.Column("configuration_version", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["pump_id"], ["pumps.id"], name=op.f("fk_pump_views_pump_id_pumps"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("pump_id", name=op.f("pk_pump_views")),
    )
    op.create_table(
        "active_alarms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pump_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("alarm", sa.String(length=64), nullable=False),
        sa.Column("priority", sa.String(length=8), nullable=False),
        sa.Column("since", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pump_id"], ["pumps.id"], name=op.f("fk_active_alarms_pump_id_pumps"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_active_alarms")),
        sa.UniqueConstraint(
            "pump_id", "channel", "alarm", name=op.f("uq_active_alarms_pump_id_channel_alarm")
        ),
    )
    with op.batch_alter_table("active_alarms", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_active_alarms_pump_id"), ["pump_id"], unique=False)
    with op.batch_alter_table("channel_states") as table:
        table.add_column(sa.Column("remaining_ml", sa.Numeric(precision=12, scale=4), nullable=True))
        table.add_column(sa.Column("remaining_min", sa.Numeric(precision=12, scale=4), nullable=True))
        table.add_column(sa.Column("reported_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("channel_states") as table:
        table.drop_column("reported_at")
        table.drop_column("remaining_min")
        table.drop_column("remaining_ml")
    with op.batch_alter_table("active_alarms", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_active_alarms_pump_id"))
    op.drop_table("active_alarms")
    op.drop_table("pump_views")
