"""Pump configurations: drafts, restore defaults, release (sign), and configuration currency per model."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response, status

from smartpump.server.api.deps import (
    MAX_ID,
    ClockDep,
    JsonBody,
    PageDep,
    SessionDep,
    StateDep,
    body_schema,
    parse_body,
    require_roles,
)
from smartpump.server.api.schemas import (
    ConfigurationCreate,
    ConfigurationCurrencyOut,
    ConfigurationDefaults,
    ConfigurationOut,
    ErrorResponse,
)
from smartpump.server.auth import ALL_ROLES, Access, Role
from smartpump.server.db.models_fleet_ops import ConfigurationVersion
from smartpump.server.services import configurations as service
from smartpump.server.vocabulary import ConfigurationStatus

router = APIRouter(tags=["configurations"])
Reader = Annotated[Access, require_roles(*ALL_ROLES)]
Biomed = Annotated[Access, require_roles(Role.BIOMED)]
ConfigurationId = Annotated[int, Path(ge=1, le=MAX_ID)]
REFUSALS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorResponse} for code in (403, 404, 409, 422)}


def _out(row: ConfigurationVersion) -> ConfigurationOut:
    return ConfigurationOut(
        id=row.id,
        facility_id=row.facility_id,
        model=row.model,
        version=row.version,
        name=row.name,
        status=ConfigurationStatus(row.status),
        settings=service.settings_of(row),
        content_sha256=row.content_sha256,
        created_by=row.created_by,
        created_at=row.created_at,
        released_by=row.released_by,
        released_at=row.released_at,
        key_id=row.key_id,
    )


@router.get("/configurations")
def list_configurations(
    access: Reader,
    session: SessionDep,
    page: PageDep,
    response: Response,
    facility_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    model: Annotated[str | None, Query(max_length=64)] = None,
    status: ConfigurationStatus | None = None,
) -> list[ConfigurationOut]:
    """Configuration versions of the caller's facilities, per facility and model, newest first."""
    rows, total = service.list_versions(
        session,
        access,
        facility_id=facility_id,
        model=model,
        status=status,
        limit=page.limit,
        offset=page.offset,
    )
    page.headers(response, total)
    return [_out(r) for r in rows]


@router.post(
    "/configurations",
    status_code=status.HTTP_201_CREATED,
    responses=REFUSALS,
    openapi_extra=body_schema(ConfigurationCreate),
)
def create_configuration(
    access: Biomed, raw: JsonBody, session: SessionDep, clock: ClockDep
) -> ConfigurationOut:
    """Draft a configuration for one model (the server numbers it); each bad setting is a 422 detail."""
    body = parse_body(ConfigurationCreate, raw)
    return _out(
        service.create_draft(
            session,
            clock,
            access,
            facility_id=body.facility_id,
            model=body.model,
            name=body.name,
            settings=body.settings,
        )
    )


@router.post("/configurations/restore-defaults", status_code=status.HTTP_201_CREATED, responses=REFUSALS)
def restore_defaults(
    body: ConfigurationDefaults, access: Biomed, session: SessionDep, clock: ClockDep
) -> ConfigurationOut:
    """Draft the model's factory settings as the next version (SEC-CFG-05); release and deploy it as usual."""
    return _out(
        service.restore_defaults(
            session, clock, access, facility_id=body.facility_id, model=body.model, name=body.name
        )
    )


@router.get("/configurations/{configuration_id}", responses=REFUSALS)
def get_configuration(
    configuration_id: ConfigurationId, access: Reader, session: SessionDep
) -> ConfigurationOut:
    """One configuration version with its settings."""
    return _out(service.get_version(session, access, configuration_id))


@router.post("/configurations/{configuration_id}/release", responses=REFUSALS)
def release_configuration(
    configuration_id: ConfigurationId, access: Biomed, session: SessionDep, state: StateDep
) -> ConfigurationOut:
    """Sign a draft with the server key (not by its author); it is then immutable and deployable."""
    return _out(service.release(session, state.clock, state.keys, access, configuration_id))


@router.get("/fleet/configuration-currency")
def configuration_currency(access: Reader, session: SessionDep) -> list[ConfigurationCurrencyOut]:
    """Per facility and model: the newest released configuration and the pumps not yet on it."""
    return [
        ConfigurationCurrencyOut(
            facility_id=c.facility_id,
            model=c.model,
            released_version=c.released_version,
            pumps_by_version=c.pumps_by_version,
            current=c.current,
            outdated_serials=list(c.outdated_serials),
        )
        for c in service.configuration_currency(session, access)
    ]
