"""Bench tests: one IEC 60601-2-24 flow-accuracy result per performance-check maintenance record.

Revision ID: 0014
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from smartpump.server.db.types import UTCDateTime

revision = "0014"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "bench_tests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("pump_id", sa.Integer(), nullable=False),
        sa.Column("performed_at", UTCDateTime(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("set_name", sa.String(length=64), nullable=False),
        sa.Column("rate_ml_per_h", sa.Float(), nullable=False),
        sa.Column("tolerance_percent", sa.Float(), nullable=False),
        sa.Column("mean_error_percent", sa.Float(), nullable=False),
        sa.Column("short_window_spread_percent", sa.Float(), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("report", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["maintenance_records.id"],
            name=op.f("fk_bench_tests_record_id_maintenance_records"),
        ),
        sa.ForeignKeyConstraint(["pump_id"], ["pumps.id"], name=op.f("fk_bench_tests_pump_id_pumps")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bench_tests")),
        sa.UniqueConstraint("record_id", name=op.f("uq_bench_tests_record_id")),
    )
    op.create_index("ix_bench_tests_pump_performed", "bench_tests", ["pump_id", "performed_at"])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_bench_tests_pump_performed", table_name="bench_tests")
    op.drop_table("bench_tests")
