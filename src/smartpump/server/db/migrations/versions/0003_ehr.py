"""EHR interoperability: inbound message de-duplication, orders, outbound HL7 queue, worker cursors.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from smartpump.server.db.types import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "ehr_inbound",
        sa.Column("id", _BIG_ID, nullable=False),
        sa.Column("sender", sa.String(length=227), nullable=False),
        sa.Column("control_id", sa.String(length=199), nullable=False),
        sa.Column("message_type", sa.String(length=32), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("ack_code", sa.String(length=2), nullable=False),
        sa.Column("reply", sa.Text(), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ehr_inbound")),
        sa.UniqueConstraint("sender", "control_id", name=op.f("uq_ehr_inbound_sender_control_id")),
    )
    op.create_table(
        "ehr_orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("facility_id", sa.Integer(), nullable=True),
        sa.Column("pump_id", sa.Integer(), nullable=True),
        sa.Column("pump_serial", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("parent_order_id", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("sender", sa.String(length=227), nullable=False),
        sa.Column("control_id", sa.String(length=199), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("piv_code", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("drug", sa.String(length=128), nullable=False),
        sa.Column("drug_code", sa.String(length=64), nullable=False),
        sa.Column("program", sa.Text(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("start_event_id", sa.BigInteger(), nullable=True),
        sa.Column("end_event_id", sa.BigInteger(), nullable=True),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["facility_id"], ["facilities.id"], name=op.f("fk_ehr_orders_facility_id_facilities")
        ),
        sa.ForeignKeyConstraint(["pump_id"], ["pumps.id"], name=op.f("fk_ehr_orders_pump_id_pumps")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ehr_orders")),
        sa.UniqueConstraint("start_event_id", name=op.f("uq_ehr_orders_start_event_id")),
    )
    with op.batch_alter_table("ehr_orders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ehr_orders_facility_id"), ["facility_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_ehr_orders_order_id"), ["order_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_ehr_orders_patient_id"), ["patient_id"], unique=False)
        batch_op.create_index(
            "ix_ehr_orders_pump_channel_status", ["pump_id", "channel", "status"], unique=False
        )
    op.create_table(
        "ehr_outbound",
        sa.Column("id", _BIG_ID, nullable=False),
        sa.Column("destination", sa.String(length=128), nullable=False),
        sa.Column("control_id", sa.String(length=64), nullable=False),
        sa.Column("message_type", sa.String(length=16), nullable=False),
        sa.Column("source_key", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("enqueued_at", UTCDateTime(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("ack_code", sa.String(length=2), nullable=False),
        sa.Column("done_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ehr_outbound")),
        sa.UniqueConstraint("destination", "control_id", name=op.f("uq_ehr_outbound_destination_control_id")),
        sa.UniqueConstraint("source_key", name=op.f("uq_ehr_outbound_source_key")),
    )
    with op.batch_alter_table("ehr_outbound", schema=None) as batch_op:
        batch_op.create_index(
            "ix_ehr_outbound_destination_state", ["destination", "state", "id"], unique=False
        )
    op.create_table(
        "ehr_cursors",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("last_event_id", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_ehr_cursors")),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("ehr_cursors")
    with op.batch_alter_table("ehr_outbound", schema=None) as batch_op:
        batch_op.drop_index("ix_ehr_outbound_destination_state")
    op.drop_table("ehr_outbound")
    with op.batch_alter_table("ehr_orders", schema=None) as batch_op:
        batch_op.drop_index("ix_ehr_orders_pump_channel_status")
        batch_op.drop_index(batch_op.f("ix_ehr_orders_patient_id"))
        batch_op.drop_index(batch_op.f("ix_ehr_orders_order_id"))
        batch_op.drop_index(batch_op.f("ix_ehr_orders_facility_id"))
    op.drop_table("ehr_orders")
    op.drop_table("ehr_inbound")
