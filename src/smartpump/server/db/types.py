"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import DateTime, Dialect, Enum
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime stored as naive UTC (microseconds kept on both databases)."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Refuse naive datetimes; store UTC without tzinfo."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Give back an aware UTC datetime."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


def _values(members: type[StrEnum]) -> list[str]:
    return [member.value for member in members]


def enum_column(members: type[StrEnum], length: int) -> Enum:
    """A VARCHAR(length) holding one of ``members`` by value: an unknown value is refused before it is sent,
    and a read gives back the member."""
    return Enum(
        members,
        native_enum=False,
        create_constraint=False,
        validate_strings=True,
        values_callable=_values,
        length=length,
    )
