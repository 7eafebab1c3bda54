"""Every status column holds one member of its StrEnum: an unknown status is refused before it is stored,
the stored text is the member's value (no migration), and a read gives back the member."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

import pytest
from sqlalchemy import Engine, Enum, Table, func, select, text
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session

from smartpump.server.db.models import Facility, Pump
from smartpump.server.db.schema import METADATA
from smartpump.server.vocabulary import PumpStatus

STATUS_TABLES = sorted((t for t in METADATA.tables.values() if "status" in t.c), key=lambda t: t.name)
NOW = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def test_the_status_columns_are_the_ones_expected() -> None:
    assert [t.name for t in STATUS_TABLES] == [
        "change_requests",
        "configuration_versions",
        "deployments",
        "ehr_orders",
        "fault_reports",
        "library_versions",
        "pump_commands",
        "pumps",
        "role_grants",
        "software_packages",
    ]


@pytest.mark.parametrize("table", STATUS_TABLES, ids=lambda t: t.name)
def test_each_status_column_is_a_validated_str_enum(table: Table) -> None:
    column_type = table.c.status.type
    assert isinstance(column_type, Enum)
    assert column_type.enum_class is not None and issubclass(column_type.enum_class, StrEnum)
    assert column_type.validate_strings and not column_type.native_enum
    assert column_type.enums == [member.value for member in column_type.enum_class]


def _add_pump(session: Session, status: str) -> None:
    facility = Facility(code="north", name="North", created_at=NOW)
    session.add(facility)
    session.flush()
    pump = Pump(
        facility_id=facility.id, serial="SP-1", model="SP-100", firmware="1.0", status=status, created_at=NOW
    )
    session.add(pump)


def test_an_unknown_status_is_refused_and_nothing_is_stored(engine: Engine) -> None:
    with Session(engine) as session:
        _add_pump(session, "on_holiday")
        with pytest.raises(StatementError, match="on_holiday") as refused:
            session.flush()
        assert isinstance(refused.value.orig, LookupError)
        session.rollback()
        assert session.scalar(select(func.count()).select_from(Pump)) == 0


def test_a_status_is_stored_as_its_value_and_read_back_as_the_member(engine: Engine) -> None:
    with Session(engine) as session:
        _add_pump(session, "needs_inspection")
        session.flush()
        stored = session.scalar(text("SELECT status FROM pumps"))
        read = session.scalar(select(Pump.status))
        session.rollback()
    assert stored == "needs_inspection"
    assert read is PumpStatus.NEEDS_INSPECTION


def test_a_query_for_an_unknown_status_is_refused(engine: Engine) -> None:
    with Session(engine) as session, pytest.raises(StatementError, match="retird"):
        session.scalars(select(Pump).where(Pump.status == "retird")).all()
