"""Initial schema: facilities, users and grants, tokens, audit chain, fleet, events, maintenance, libraries.

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from smartpump.server.db.types import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    op.create_table(
        "audit_records",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("ts", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("object_type", sa.String(length=32), nullable=False),
        sa.Column("object_id", sa.String(length=128), nullable=True),
        sa.Column("facility_id", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_records")),
        sa.UniqueConstraint("seq", name=op.f("uq_audit_records_seq")),
    )
    with op.batch_alter_table("audit_records", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_records_action"), ["action"], unique=False)

    op.create_table(
        "facilities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_facilities")),
        sa.UniqueConstraint("code", name=op.f("uq_facilities_code")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("full_name", sa.String(length=255), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "access_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_access_tokens_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_tokens")),
        sa.UniqueConstraint("token_digest", name=op.f("uq_access_tokens_token_digest")),
    )
    with op.batch_alter_table("access_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_access_tokens_user_id"), ["user_id"], unique=False)

    op.create_table(
        "library_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("facility_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("based_on_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("submitted_at", UTCDateTime(), nullable=True),
        sa.Column("released_at", UTCDateTime(), nullable=True),
        sa.Column("released_by", sa.Integer(), nullable=True),
        sa.Column("retired_at", UTCDateTime(), nullable=True),
        sa.Column("signed_document", sa.Text(), nullable=True),
        sa.Column("key_id", sa.String(length=64), nullable=True),
        sa.Column("is_emergency", sa.Boolean(), nullable=False),
        sa.Column("emergency_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["author_id"], ["users.id"], name=op.f("fk_library_versions_author_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["based_on_id"],
            ["library_versions.id"],
            name=op.f("fk_library_versions_based_on_id_library_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["facility_id"], ["facilities.id"], name=op.f("fk_library_versions_facility_id_facilities")
        ),
        sa.ForeignKeyConstraint(
            ["released_by"], ["users.id"], name=op.f("fk_library_versions_released_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_library_versions")),
        sa.UniqueConstraint("facility_id", "version", name=op.f("uq_library_versions_facility_id_version")),
    )
    with op.batch_alter_table("library_versions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_library_versions_facility_id"), ["facility_id"], unique=False)

    op.create_table(
        "maintenance_schedules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("facility_id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("interval_days", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["facility_id"], ["facilities.id"], name=op.f("fk_maintenance_schedules_facility_id_facilities")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_maintenance_schedules")),
        sa.UniqueConstraint(
            "facility_id", "model", "kind", name=op.f("uq_maintenance_schedules_facility_id_model_kind")
        ),
    )
    op.create_table(
        "pumps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("facility_id", sa.Integer(), nullable=False),
        sa.Column("serial", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("firmware", sa.String(length=64), nullable=False),
        sa.Column("installed_library_version", sa.Integer(), nullable=True),
        sa.Column("care_area", sa.String(length=64), nullable=True),
        sa.Column("location", sa.String(length=128), nullable=True),
        sa.Column("last_seen", UTCDateTime(), nullable=True),
        sa.Column("battery_percent", sa.Integer(), nullable=True),
        sa.Column("battery_health_percent", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("inspection_reason", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["facility_id"], ["facilities.id"], name=op.f("fk_pumps_facility_id_facilities")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pumps")),
        sa.UniqueConstraint("serial", name=op.f("uq_pumps_serial")),
    )
    with op.batch_alter_table("pumps", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pumps_facility_id"), ["facility_id"], unique=False)

    op.create_table(
        "recalls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("firmware", sa.String(length=64), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("issued_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=op.f("fk_recalls_created_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recalls")),
        sa.UniqueConstraint("reference", name=op.f("uq_recalls_reference")),
    )
    op.create_table(
        "role_grants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("facility_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("granted_by", sa.Integer(), nullable=True),
        sa.Column("confirmed_by", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["confirmed_by"], ["users.id"], name=op.f("fk_role_grants_confirmed_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["facility_id"], ["facilities.id"], name=op.f("fk_role_grants_facility_id_facilities")
        ),
        sa.ForeignKeyConstraint(["granted_by"], ["users.id"], name=op.f("fk_role_grants_granted_by_users")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_role_grants_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_role_grants")),
    )
    with op.batch_alter_table("role_grants", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_role_grants_user_id"), ["user_id"], unique=False)

    op.create_table(
        "change_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("facility_id", sa.Integer(), nullable=False),
        sa.Column("library_version_id", sa.Integer(), nullable=True),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("requested_by", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["decided_by"], ["users.id"], name=op.f("fk_change_requests_decided_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["facility_id"], ["facilities.id"], name=op.f("fk_change_requests_facility_id_facilities")
        ),
        sa.ForeignKeyConstraint(
            ["library_version_id"],
            ["library_versions.id"],
            name=op.f("fk_change_requests_library_version_id_library_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["requested_by"], ["users.id"], name=op.f("fk_change_requests_requested_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_change_requests")),
    )
    with op.batch_alter_table("change_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_change_requests_facility_id"), ["facility_id"], unique=False)

    op.create_table(
        "channel_states",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pump_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("drug", sa.String(length=128), nullable=True),
        sa.Column("rate_ml_per_h", sa.Numeric(precision=12, scale=4), nullable=True),
        sa.Column("volume_infused_ml", sa.Numeric(precision=12, scale=4), nullable=True),
        sa.Column("vtbi_ml", sa.Numeric(precision=12, scale=4), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pump_id"], ["pumps.id"], name=op.f("fk_channel_states_pump_id_pumps"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channel_states")),
        sa.UniqueConstraint("pump_id", "channel", name=op.f("uq_channel_states_pump_id_channel")),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("pump_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("ts", UTCDateTime(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=True),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=True),
        sa.Column("order_id", sa.String(length=64), nullable=True),
        sa.Column("data", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["pump_id"], ["pumps.id"], name=op.f("fk_events_pump_id_pumps")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.UniqueConstraint("pump_id", "seq", name=op.f("uq_events_pump_id_seq")),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_events_order_id"), ["order_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_events_patient_id"), ["patient_id"], unique=False)
        batch_op.create_index("ix_events_pump_ts", ["pump_id", "ts"], unique=False)
        batch_op.create_index(batch_op.f("ix_events_ts"), ["ts"], unique=False)
        batch_op.create_index(batch_op.f("ix_events_type"), ["type"], unique=False)

    op.create_table(
        "fault_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pump_id", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reported_by", sa.Integer(), nullable=True),
        sa.Column("reported_at", UTCDateTime(), nullable=False),
        sa.Column("resolved_by", sa.Integer(), nullable=True),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["pump_id"], ["pumps.id"], name=op.f("fk_fault_reports_pump_id_pumps")),
        sa.ForeignKeyConstraint(
            ["reported_by"], ["users.id"], name=op.f("fk_fault_reports_reported_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["resolved_by"], ["users.id"], name=op.f("fk_fault_reports_resolved_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fault_reports")),
    )
    with op.batch_alter_table("fault_reports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fault_reports_pump_id"), ["pump_id"], unique=False)

    op.create_table(
        "library_approvals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("library_version_id", sa.Integer(), nullable=False),
        sa.Column("approver_id", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("approved_at", UTCDateTime(), nullable=False),
        sa.Column("is_emergency", sa.Boolean(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["approver_id"], ["users.id"], name=op.f("fk_library_approvals_approver_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["library_version_id"],
            ["library_versions.id"],
            name=op.f("fk_library_approvals_library_version_id_library_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_library_approvals")),
        sa.UniqueConstraint(
            "library_version_id",
            "approver_id",
            "content_hash",
            name=op.f("uq_library_approvals_library_version_id_approver_id_content_hash"),
        ),
    )
    with op.batch_alter_table("library_approvals", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_library_approvals_library_version_id"), ["library_version_id"], unique=False
        )

    op.create_table(
        "library_contributors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("library_version_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["library_version_id"],
            ["library_versions.id"],
            name=op.f("fk_library_contributors_library_version_id_library_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_library_contributors_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_library_contributors")),
        sa.UniqueConstraint(
            "library_version_id", "user_id", name=op.f("uq_library_contributors_library_version_id_user_id")
        ),
    )
    op.create_table(
        "maintenance_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pump_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("performed_at", UTCDateTime(), nullable=False),
        sa.Column("performed_by", sa.Integer(), nullable=True),
        sa.Column("result", sa.String(length=16), nullable=False),
        sa.Column("battery_health_percent", sa.Integer(), nullable=True),
        sa.Column("from_version", sa.String(length=64), nullable=True),
        sa.Column("to_version", sa.String(length=64), nullable=True),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["performed_by"], ["users.id"], name=op.f("fk_maintenance_records_performed_by_users")
        ),
        sa.ForeignKeyConstraint(["pump_id"], ["pumps.id"], name=op.f("fk_maintenance_records_pump_id_pumps")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_maintenance_records")),
    )
    with op.batch_alter_table("maintenance_records", schema=None) as batch_op:
        batch_op.create_index(
            "ix_maintenance_records_pump_kind", ["pump_id", "kind", "performed_at"], unique=False
        )

    op.create_table(
        "recall_actions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recall_id", sa.Integer(), nullable=False),
        sa.Column("pump_id", sa.Integer(), nullable=False),
        sa.Column("completed_at", UTCDateTime(), nullable=False),
        sa.Column("completed_by", sa.Integer(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["completed_by"], ["users.id"], name=op.f("fk_recall_actions_completed_by_users")
        ),
        sa.ForeignKeyConstraint(["pump_id"], ["pumps.id"], name=op.f("fk_recall_actions_pump_id_pumps")),
        sa.ForeignKeyConstraint(
            ["recall_id"], ["recalls.id"], name=op.f("fk_recall_actions_recall_id_recalls")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recall_actions")),
        sa.UniqueConstraint("recall_id", "pump_id", name=op.f("uq_recall_actions_recall_id_pump_id")),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("recall_actions")
    with op.batch_alter_table("maintenance_records", schema=None) as batch_op:
        batch_op.drop_index("ix_maintenance_records_pump_kind")

    op.drop_table("maintenance_records")
    op.drop_table("library_contributors")
    with op.batch_alter_table("library_approvals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_library_approvals_library_version_id"))

    op.drop_table("library_approvals")
    with op.batch_alter_table("fault_reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fault_reports_pump_id"))

    op.drop_table("fault_reports")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_events_type"))
        batch_op.drop_index(batch_op.f("ix_events_ts"))
        batch_op.drop_index("ix_events_pump_ts")
        batch_op.drop_index(batch_op.f("ix_events_patient_id"))
        batch_op.drop_index(batch_op.f("ix_events_order_id"))

    op.drop_table("events")
    op.drop_table("channel_states")
    with op.batch_alter_table("change_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_change_requests_facility_id"))

    op.drop_table("change_requests")
    with op.batch_alter_table("role_grants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_role_grants_user_id"))

    op.drop_table("role_grants")
    op.drop_table("recalls")
    with op.batch_alter_table("pumps", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pumps_facility_id"))

    op.drop_table("pumps")
    op.drop_table("maintenance_schedules")
    with op.batch_alter_table("library_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_library_versions_facility_id"))

    op.drop_table("library_versions")
    with op.batch_alter_table("access_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_access_tokens_user_id"))

    op.drop_table("access_tokens")
    op.drop_table("users")
    op.drop_table("facilities")
    with op.batch_alter_table("audit_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_records_action"))

    op.drop_table("audit_records")
    op.drop_table("audit_head")
