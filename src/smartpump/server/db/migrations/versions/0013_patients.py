"""Patient association: ``pump_patients`` (who each pump is for, over time) and ``ehr_order_patients``
(the PID-3 authority/type and PID-5 name an EHR order carried).

Revision ID: 0013
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from smartpump.server.db.types import UTCDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "pump_patients",
        sa.Column("id", _BIG_ID, nullable=False),
        sa.Column("pump_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("authority", sa.String(length=64), nullable=False),
        sa.Column("id_type", sa.String(length=8), nullable=False),
        sa.Column("family_name", sa.String(length=64), nullable=False),
        sa.Column("given_name", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["pump_id"], ["pumps.id"], name=op.f("fk_pump_patients_pump_id_pumps")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pump_patients")),
        sa.UniqueConstraint("event_id", name=op.f("uq_pump_patients_event_id")),
    )
    op.create_index(op.f("ix_pump_patients_patient_id"), "pump_patients", ["patient_id"])
    op.create_index("ix_pump_patients_pump_recorded", "pump_patients", ["pump_id", "recorded_at", "id"])
    op.create_table(
        "ehr_order_patients",
        sa.Column("order_row_id", sa.Integer(), nullable=False),
        sa.Column("authority", sa.String(length=64), nullable=False),
        sa.Column("id_type", sa.String(length=8), nullable=False),
        sa.Column("family_name", sa.String(length=64), nullable=False),
        sa.Column("given_name", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_row_id"], ["ehr_orders.id"], name=op.f("fk_ehr_order_patients_order_row_id_ehr_orders")
        ),
        sa.PrimaryKeyConstraint("order_row_id", name=op.f("pk_ehr_order_patients")),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("ehr_order_patients")
    op.drop_index("ix_pump_patients_pump_recorded", table_name="pump_patients")
    op.drop_index(op.f("ix_pump_patients_patient_id"), table_name="pump_patients")
    op.drop_table("pump_patients")
