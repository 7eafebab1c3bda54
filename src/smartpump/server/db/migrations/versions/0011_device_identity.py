"""Device identity: ``quarantined_pumps`` (pumps that spoke without being admitted) and ``seq_conflicts``
(events whose seq the store holds with other content).

Revision ID: 0011
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from smartpump.server.db.types import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "quarantined_pumps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("serial", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("first_seen_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=False),
        sa.Column("messages", sa.BigInteger(), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
        sa.Column("admitted_at", UTCDateTime(), nullable=True),
        sa.Column("admitted_by", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quarantined_pumps")),
        sa.UniqueConstraint("serial", name=op.f("uq_quarantined_pumps_serial")),
    )
    op.create_table(
        "seq_conflicts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pump_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("record", sa.Text(), nullable=False),
        sa.Column("detected_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pump_id"], ["pumps.id"], name=op.f("fk_seq_conflicts_pump_id_pumps"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_seq_conflicts")),
        sa.UniqueConstraint("pump_id", "seq", "digest", name=op.f("uq_seq_conflicts_pump_id_seq_digest")),
    )
    with op.batch_alter_table("seq_conflicts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_seq_conflicts_pump_id"), ["pump_id"], unique=False)


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("seq_conflicts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_seq_conflicts_pump_id"))
    op.drop_table("seq_conflicts")
    op.drop_table("quarantined_pumps")
