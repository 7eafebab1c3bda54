"""Pump configuration versions per facility and model."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from smartpump.server.db.models_fleet_ops import ConfigurationVersion
from smartpump.server.vocabulary import ConfigurationStatus


def version_by_id(session: Session, configuration_id: int) -> ConfigurationVersion | None:
    """The configuration version with this id, if any."""
    return session.get(ConfigurationVersion, configuration_id)


def highest_version(session: Session, facility_id: int, model: str) -> int:
    """The highest version number used for a model in a facility (0, the factory default, when none)."""
    return int(
        session.scalar(
            select(func.max(ConfigurationVersion.version)).where(
                ConfigurationVersion.facility_id == facility_id, ConfigurationVersion.model == model
            )
        )
        or 0
    )


def latest_released(
    session: Session, *, facility_ids: frozenset[int] | None
) -> dict[tuple[int, str], ConfigurationVersion]:
    """The newest released version per (facility, model) of the allowed facilities."""
    query = select(ConfigurationVersion).where(
        ConfigurationVersion.status == ConfigurationStatus.RELEASED.value
    )
    if facility_ids is not None:
        query = query.where(ConfigurationVersion.facility_id.in_(facility_ids))
    latest: dict[tuple[int, str], ConfigurationVersion] = {}
    for row in session.scalars(query.order_by(ConfigurationVersion.version)):
        latest[(row.facility_id, row.model)] = row
    return latest


def list_versions(
    session: Session,
    *,
    facility_ids: frozenset[int] | None,
    facility_id: int | None,
    model: str | None,
    status: str | None,
    limit: int,
    offset: int,
) -> tuple[Sequence[ConfigurationVersion], int]:
    """Configuration versions, per facility and model, newest first; page and total."""
    query = select(ConfigurationVersion)
    if facility_ids is not None:
        query = query.where(ConfigurationVersion.facility_id.in_(facility_ids))
    if facility_id is not None:
        query = query.where(ConfigurationVersion.facility_id == facility_id)
    if model is not None:
        query = query.where(ConfigurationVersion.model == model)
    if status is not None:
        query = query.where(ConfigurationVersion.status == status)
    total = int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    rows = session.scalars(
        query.order_by(
            ConfigurationVersion.facility_id, ConfigurationVersion.model, ConfigurationVersion.version.desc()
        )
        .limit(limit)
        .offset(offset)
    ).all()
    return rows, total
